--[[
  read: one cache read, atomically: tag versions (creating the missing ones), the tag hash,
  the entry, and on a miss the entry's lock.

  Key count: variable, 2 + the number of tags (no "-N" suffix in the file name for that reason).

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash}
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}
    KEYS[3..]   tag keys      {prefix}:tag:{tag}, in the order the tag hash uses (may be none)

    ARGV[1]     lock token    taken on a miss with SET NX PX; '' reads without locking
    ARGV[2]     lock TTL      milliseconds, integer >= 1 (ignored when ARGV[1] is '')
    ARGV[3]     version seed  a fresh unique string; the n-th tag this call creates gets
                              the version seed .. '.' .. n (no TTL), so each is distinct

  Output:
    hit:  a bulk string, the stored entry bytes (header + payload). Its header's tag hash,
          bytes 5..20, equals the tags' current hash.
    miss: an array of 3:
          [1] tag hash   bulk string, 16 hex digits: the first 16 of
                         sha1hex(versions joined by ','), 'da39a3ee5e6b4b0d' for no tags
          [2] locked     integer, 1 if this read took the lock with ARGV[1], else 0
          [3] lock TTL   integer, when not locked: the milliseconds the other holder's lock
                         still lives (PTTL: -2 no lock, -1 no expiry); when locked: ARGV[2]
    A miss is an entry that is absent, shorter than 20 bytes, or whose header tag hash differs.
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

local entry = redis.call('GET', KEYS[1])
if entry and string.len(entry) >= 20 and string.sub(entry, 5, 20) == hash then
  return entry
end

local token = ARGV[1]
if token ~= '' then
  if redis.call('SET', KEYS[2], token, 'NX', 'PX', ARGV[2]) then
    return {hash, 1, tonumber(ARGV[2])}
  end
end
return {hash, 0, redis.call('PTTL', KEYS[2])}
