--[[
  invalidate: deletes one entry and its lock, waking the lock's waiters. Deleting the lock
  also voids the write of a computation that is running meanwhile (see write-2.lua).

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash}
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}

    ARGV[1]     wake mode     'n' on one server, 's' on a cluster: how the release wakes the lock's
                              waiters, on the lock's channel (named as KEYS[2]) and only if
                              somebody listens (see wake() below)

  Output:
    integer: the number of keys deleted, 0 to 2. When the lock existed, KEYS[2] was
    published on KEYS[2] if its waiters listen.
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

local deleted = redis.call('UNLINK', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then
  wake(ARGV[1], 2)
  deleted = deleted + 1
end
return deleted
