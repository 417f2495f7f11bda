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
    ARGV[4]     channel       pub/sub channel of lock releases, {prefix}:unlock

  Output:
    integer 1: stored (and, with a token, the lock deleted and KEYS[2] published on ARGV[4]);
    integer 0: not stored, the lock is no longer held with ARGV[3].
    No error replies of its own.
]]

local token = ARGV[3]
if token ~= '' then
  if redis.call('GET', KEYS[2]) ~= token then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[4], KEYS[2])
  return 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
