--[[
  read: one cache read, atomically: tag versions (creating the missing ones), the tag hash,
  the entry, and on a miss the entry's lock; on a fresh hit, optionally, the early-refresh
  decision (XFetch, with the server's TIME) and then the lock.

  Key count: variable, 2 + the number of tags (no "-N" suffix in the file name for that reason).

  Input:
    KEYS[1]     entry key     {prefix}:entry:{name}:{argsHash}
    KEYS[2]     lock key      {prefix}:lock:{name}:{argsHash}
    KEYS[3..]   tag keys      {prefix}:tag:{tag}, in the order the tag hash uses (may be none)

    ARGV[1]     lock token    taken on a miss with SET NX PX; '' reads without locking
    ARGV[2]     lock TTL      milliseconds, integer >= 1 (ignored when ARGV[1] is '')
    ARGV[3]     version seed  a fresh unique string; the n-th tag this call creates gets
                              the version seed .. '.' .. n (no TTL), so each is distinct
    ARGV[4]     early beta    early refresh's weight, a number > 0; '' never refreshes early
    ARGV[5]     early random  a number in (0, 1], drawn by the client for this read
                              (ignored without ARGV[4])
    ARGV[6]     tracked       '1' when the connection has CLIENT TRACKING on (a near-cache):
                              the lock this read takes is then read back with PTTL, so that
                              the connection hears when it is released or deleted (an
                              invalidation while its holder computes); '' or absent: not

  Output:
    fresh hit: a bulk string, the stored entry bytes (header + payload). Its header's tag
          hash, bytes 5..20, equals the tags' current hash, and its fresh-until time,
          bytes 21..33 (milliseconds since the epoch), is after the server's TIME.
    miss: an array of 3:
          [1] tag hash   bulk string, 16 hex digits: the first 16 of
                         sha1hex(versions joined by ','), 'da39a3ee5e6b4b0d' for no tags
          [2] locked     integer, 1 if this read took the lock with ARGV[1], else 0
          [3] lock TTL   integer, the milliseconds the lock still lives (PTTL: -2 no lock,
                         -1 no expiry): the other holder's when not locked; when locked,
                         this read's own: ARGV[2], read back with PTTL when ARGV[6] is '1'
                         (which tracks the lock key on the connection)
    stale hit: an array of 4, the miss' three fields then
          [4] entry      bulk string, the stored entry bytes: its tag hash matches but its
                         fresh-until time has passed (kept for grace or
                         stale-while-revalidate); the lock is tried as on a miss
    early refresh: an array of 5, on a fresh hit of a version 2 entry (byte 2 is '2', bytes
          47..53 its compute time in ms) when ARGV[4] is given, ARGV[1] is not '', and
          now - computeMs * ARGV[4] * ln(ARGV[5]) >= freshUntil (now: the server's TIME), and
          this read then took the lock with ARGV[1]:
          [1] tag hash   as on a miss
          [2] locked     integer, 1
          [3] lock TTL   integer, this read's own (as on a miss)
          [4] entry      bulk string, the stored entry bytes (fresh: serve them)
          [5] early      integer, 1: the caller refreshes the entry and writes it with its
                         lock token
          When the decision is made but the lock is held by another caller, the reply is the
          fresh hit's bulk string: that caller refreshes, everyone else keeps getting hits.
    A miss is an entry that is absent, shorter than 33 bytes, or whose header tag hash differs.
    No error replies of its own.
]]

-- The TTL of a lock this read has just taken: its own, read back with PTTL on a tracked
-- connection so that the lock key is tracked there.
local function takenTtl()
  if ARGV[6] == '1' then
    return redis.call('PTTL', KEYS[2])
  end
  return tonumber(ARGV[2])
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

local entry = redis.call('GET', KEYS[1])
local stale = false
if entry and string.len(entry) >= 33 and string.sub(entry, 5, 20) == hash then
  local freshUntil = tonumber(string.sub(entry, 21, 33))
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  if freshUntil == nil or freshUntil > now then
    -- Early refresh (XFetch): decided here, on the server's clock, so that the whole fleet
    -- agrees on one lock holder; every other reader keeps getting the hit.
    local beta = tonumber(ARGV[4])
    if freshUntil == nil or beta == nil or beta <= 0 or ARGV[1] == '' then
      return entry
    end
    if string.sub(entry, 2, 2) ~= '2' or string.len(entry) < 53 then
      return entry
    end
    local computeMs = tonumber(string.sub(entry, 47, 53))
    local random = tonumber(ARGV[5])
    if computeMs == nil or computeMs <= 0 or random == nil or random <= 0 or random > 1 then
      return entry
    end
    if now - computeMs * beta * math.log(random) < freshUntil then
      return entry
    end
    if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
      return entry
    end
    return {hash, 1, takenTtl(), entry, 1}
  end
  stale = true
end

local reply
local token = ARGV[1]
if token ~= '' and redis.call('SET', KEYS[2], token, 'NX', 'PX', ARGV[2]) then
  reply = {hash, 1, takenTtl()}
else
  reply = {hash, 0, redis.call('PTTL', KEYS[2])}
end
if stale then
  reply[4] = entry
end
return reply
