--[[
  release: deletes a lock if it is held with the given token (compare-and-delete) and wakes
  the lock's waiters. Used when the function threw and nothing is written.

  Input:
    KEYS[1]     lock key      {prefix}:lock:{name}:{argsHash}

    ARGV[1]     lock token    the token the lock was taken with
    ARGV[2]     channel       pub/sub channel of lock releases, {prefix}:unlock

  Output:
    integer 1: released (KEYS[1] published on ARGV[2]);
    integer 0: the lock was absent or held with another token, left alone.
    No error replies of its own.
]]

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], KEYS[1])
return 1
