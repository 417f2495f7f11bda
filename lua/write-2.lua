--[[
  write: stores an entry and, with a lock token, releases the entry's lock in the same call.

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash}
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}

    ARGV[1]     entry bytes   header + payload, as the codec encodes them (binary)
    ARGV[2]     entry TTL     milliseconds, integer >= 1
    ARGV[3]     lock token    '' writes unconditionally and leaves the lock alone; otherwise
                              the entry is stored only while KEYS[2] still holds this token
                              (an invalidation or the lock's expiry voids the write)
    ARGV[4]     wake mode     'n' on one server, 's' on a cluster: how the release wakes the lock's
                              waiters, on the lock's channel (named as KEYS[2]) and only if
                              somebody listens (see wake() below)

  Output:
    integer 1: stored (and, with a token, the lock deleted and KEYS[2] published on KEYS[2]
               if its waiters listen);
    integer 0: not stored, the lock is no longer held with ARGV[3].
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

local token = ARGV[3]
if token ~= '' then
  if redis.call('GET', KEYS[2]) ~= token then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  wake(ARGV[4], 2)
  return 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
