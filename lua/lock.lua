--[[
  lock: the read of a refresh (wrapped.refresh): tag versions (creating the missing ones), the
  tag hash and the entry's lock, ignoring the stored entry, so that one caller across
  processes recomputes it whatever is cached. Answers as read.lua does on a miss.

  Key count: variable, 2 + the number of tags (no "-N" suffix in the file name for that reason).

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash} (not read: named so that the
                              call's keys are those of read.lua, of one slot on a cluster)
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}
    KEYS[3..]   tag keys      {prefix}:tag:{tag}, in the order the tag hash uses (may be none)

    ARGV[1]     lock token    taken with SET NX PX
    ARGV[2]     lock TTL      milliseconds, integer >= 1
    ARGV[3]     version seed  a fresh unique string; the n-th tag this call creates gets
                              the version seed .. '.' .. n (no TTL), as in read.lua

  Output:
    an array of 3, read.lua's miss reply:
          [1] tag hash   bulk string, 16 hex digits (computed as read.lua does)
          [2] locked     integer, 1 if this call took the lock with ARGV[1], else 0
          [3] lock TTL   integer, PTTL of the lock: the other holder's when not locked
    No error replies of its own.
]]

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

if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {hash, 1, redis.call('PTTL', KEYS[2])}
end
return {hash, 0, redis.call('PTTL', KEYS[2])}
