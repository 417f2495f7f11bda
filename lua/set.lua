--[[
  set: a direct write (wrapped.set), atomically: tag versions (creating the missing ones), the
  tag hash stamped into the entry's header, the entry stored, and the entry's lock deleted
  whoever holds it, so that a computation in flight drops its write (see write-2.lua), its
  waiters woken.

  Key count: variable, 2 + the number of tags (no "-N" suffix in the file name for that reason).

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash}
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}
    KEYS[3..]   tag keys      {prefix}:tag:{tag}, in the order the tag hash uses (may be none)

    ARGV[1]     entry bytes   header + payload, as the codec encodes them (binary); the
                              header's tag hash, bytes 5..20, is replaced by the tags' hash
    ARGV[2]     entry TTL     milliseconds, integer >= 1
    ARGV[3]     version seed  a fresh unique string; the n-th tag this call creates gets
                              the version seed .. '.' .. n (no TTL), as in read.lua
    ARGV[4]     wake mode     'n' on one server, 's' on a cluster: how the release wakes the lock's
                              waiters, on the lock's channel (named as KEYS[2]) and only if
                              somebody listens (see wake() below)

  Output:
    bulk string: the tag hash stamped, 16 hex digits (computed as read.lua does). When the
    lock existed it was deleted and KEYS[2] published on KEYS[2] if its waiters listen.
    No error replies of its own.
]]

-- Wakes the waiters of the lock whose key is KEYS[lock], on the lock's own channel
-- (named as its key), only if somebody listens: one server, PUBSUB NUMSUB then PUBLISH; a
-- cluster, the shard's SHARDNUMSUB then SPUBLISH, so that the message stays on the shard.
-- Where the count is refused (a server without sharded pub/sub, before Redis 7, or an ACL
-- without pubsub|numsub or pubsub|shardnumsub), a classic PUBLISH, always: the subscribers
-- are then classic too.
local function wake(mode, lock)
  if mode == 's' then
    local listening = redis.pcall('PUBSUB', 'SHARDNUMSUB', KEYS[lock])
    if listening.err then
      redis.call('PUBLISH', KEYS[lock], KEYS[lock])
    elseif listening[2] > 0 then
      redis.call('SPUBLISH', KEYS[lock], KEYS[lock])
    end
  else
    local listening = redis.pcall('PUBSUB', 'NUMSUB', KEYS[lock])
    if listening.err or listening[2] > 0 then
      redis.call('PUBLISH', KEYS[lock], KEYS[lock])
    end
  end
end

local versions = {}
local created = 0
for i = 3, #KEYS do
  local version = redis.call('GET', KEYS[i])
  if not version then
    created = created + 1
    version = ARGV[3] .. '.' .. created
    redis.call('SET', KEYS[i], version)
  end
  versions[#versions + 1] = version
end

local hash
if #versions == 0 then
  hash = 'da39a3ee5e6b4b0d'
else
  hash = string.sub(redis.sha1hex(table.concat(versions, ',')), 1, 16)
end

local entry = ARGV[1]
redis.call('SET', KEYS[1], string.sub(entry, 1, 4) .. hash .. string.sub(entry, 21), 'PX', ARGV[2])
if redis.call('DEL', KEYS[2]) == 1 then
  wake(ARGV[4], 2)
end
return hash
