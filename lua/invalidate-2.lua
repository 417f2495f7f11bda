--[[
  invalidate: deletes one entry and its lock, waking the lock's waiters. Deleting the lock
  also voids the write of a computation that is running meanwhile (see write-2.lua).

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash}
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}

    ARGV[1]     channel       pub/sub channel of lock releases, {prefix}:unlock

  Output:
    integer: the number of keys deleted, 0 to 2. When the lock existed, KEYS[2] was
    published on ARGV[1].
    No error replies of its own.
]]

local deleted = redis.call('UNLINK', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PUBLISH', ARGV[1], KEYS[2])
  deleted = deleted + 1
end
return deleted
