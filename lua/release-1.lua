--[[
  release: deletes a lock if it is held with the given token (compare-and-delete) and wakes
  the lock's waiters. Used when the function threw and nothing is written.

  Input:
    KEYS[1]     lock key      {prefix}:lock:{name}:{argsHash}

    ARGV[1]     lock token    the token the lock was taken with
    ARGV[2]     wake mode     'n' on one server, 's' on a cluster: how the release wakes the lock's
                              waiters, on the lock's channel (named as KEYS[1]) and only if
                              somebody listens (see wake() below)

  Output:
    integer 1: released (KEYS[1] published on KEYS[1] if its waiters listen);
    integer 0: the lock was absent or held with another token, left alone.
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

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
wake(ARGV[2], 1)
return 1
