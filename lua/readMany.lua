--[[
  readMany: N cache reads in one call, each exactly what read.lua does for one entry (tag
  versions, creating the missing ones; the tag hash; the entry; on a miss or a stale hit the
  entry's lock), atomically. The batch read of `wrapped.many(argsList)`: on one server every
  entry of a batch in one request; on a cluster the caller sends one call per slot. It writes
  the tag versions it is missing, creating the missing ones (SET of their tag keys), and the
  locks taken (SET NX PX of the lock keys), nothing else.

  Key count: variable, 2 × N entries + the distinct tag keys of the batch.

  Input:
    KEYS[1..]   keys of entries, locks and tags: for the i-th of the N entries, KEYS[2i-1] its entry
                key {prefix}:entry:{name}:{argsHash} and KEYS[2i] its lock key
                {prefix}:lock:{name}:{argsHash}; after these 2N keys, each distinct tag key
                {prefix}:tag:{tag} of the batch, once

    ARGV[1]     entry count   N, integer >= 1
    ARGV[2]     version seed  a fresh unique string; the n-th tag this call creates gets the
                              version seed .. '.' .. n (no TTL), so each is distinct
    ARGV[3]     tracked       '1' when the connection has CLIENT TRACKING on (a near-cache):
                              each lock this call takes is read back with PTTL (as read.lua's
                              ARGV[6]); '' not
    ARGV[4..]   per entry     for each entry in order, 5 + T values: its lock token (taken on
                              a miss with SET NX PX; '' reads without locking), its lock TTL
                              (milliseconds, integer >= 1, ignored when the token is ''), its
                              early-refresh beta and random number (as read.lua's ARGV[4] and
                              ARGV[5]; '' and '' for none), T the number of its tags, then T
                              positions (1-based, among the tag keys after the 2N entry keys)
                              in the order the tag hash uses

  Output:
    an array of N replies, the i-th for the i-th entry, each shaped as read.lua's reply:
    fresh hit: a bulk string, the stored entry bytes (header + payload). Its header's tag
          hash, bytes 5..20, equals the tags' current hash, and its fresh-until time,
          bytes 21..33 (milliseconds since the epoch), is after the server's TIME;
    miss: an array of 3: [1] tag hash (bulk string, 16 hex digits; 'da39a3ee5e6b4b0d' for
          no tags), [2] locked (integer, 1 if this call took the lock with the entry's token,
          else 0), [3] lock TTL (integer, PTTL of the lock key: -2 no lock, -1 no expiry;
          when this call took the lock, its TTL, read back with PTTL when ARGV[3] is '1');
    stale hit: an array of 4, the miss' three fields then [4] the stored entry bytes;
    early refresh: an array of 5, [hash, 1, lock TTL, the fresh entry bytes, 1], decided and
          shaped exactly as read.lua's: on a fresh hit of a version 2 entry (byte 2 is '2',
          bytes 47..53 its compute time in ms) whose beta and random number are given, with a
          lock token, when now - computeMs * beta * ln(random) >= freshUntil (now: the server's
          TIME), the lock then taken with the entry's token.
    A miss is an entry that is absent, shorter than 33 bytes, or whose header tag hash differs.
    A tag read by several entries is read (or created) once: every entry of the call sees the
    same version. No error replies of its own.
]]

local count = tonumber(ARGV[1])
local tagBase = 2 * count
local versionOf = {}
local created = 0
local hashOf = {}

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- The TTL of a lock this call has just taken: as read.lua's takenTtl().
local function takenTtl(lockIndex, lockTtl)
  if ARGV[3] == '1' then
    return redis.call('PTTL', KEYS[lockIndex])
  end
  return tonumber(lockTtl)
end

local replies = {}
local arg = 4
for i = 1, count do
  local token = ARGV[arg]
  local lockTtl = ARGV[arg + 1]
  local beta = tonumber(ARGV[arg + 2])
  local random = tonumber(ARGV[arg + 3])
  local tagCount = tonumber(ARGV[arg + 4])
  arg = arg + 5

  local hash
  if tagCount == 0 then
    hash = 'da39a3ee5e6b4b0d'
  else
    local positions = {}
    for t = 1, tagCount do
      positions[t] = ARGV[arg]
      arg = arg + 1
    end
    local list = table.concat(positions, ',')
    hash = hashOf[list]
    if not hash then
      local versions = {}
      for t = 1, tagCount do
        local version = versionOf[positions[t]]
        if not version then
          local tagIndex = tagBase + tonumber(positions[t])
          version = redis.call('GET', KEYS[tagIndex])
          if not version then
            created = created + 1
            version = ARGV[2] .. '.' .. created
            redis.call('SET', KEYS[tagIndex], version)
          end
          versionOf[positions[t]] = version
        end
        versions[t] = version
      end
      hash = string.sub(redis.sha1hex(table.concat(versions, ',')), 1, 16)
      hashOf[list] = hash
    end
  end

  local entryIndex = 2 * i - 1
  local lockIndex = 2 * i
  local entry = redis.call('GET', KEYS[entryIndex])
  local stale = false
  local reply = nil
  if entry and string.len(entry) >= 33 and string.sub(entry, 5, 20) == hash then
    local freshUntil = tonumber(string.sub(entry, 21, 33))
    if freshUntil == nil or freshUntil > now then
      reply = entry
      -- Early refresh (XFetch), as in read.lua: one caller across the fleet takes the lock.
      if freshUntil ~= nil and beta ~= nil and beta > 0 and token ~= '' and random ~= nil and random > 0 and random <= 1 then
        if string.sub(entry, 2, 2) ~= '2' or string.len(entry) < 53 then
          reply = entry -- a format 1 entry: no compute time, never refreshed early
        else
          local computeMs = tonumber(string.sub(entry, 47, 53))
          if computeMs ~= nil and computeMs > 0 and now - computeMs * beta * math.log(random) >= freshUntil
              and redis.call('SET', KEYS[lockIndex], token, 'NX', 'PX', lockTtl) then
            reply = {hash, 1, takenTtl(lockIndex, lockTtl), entry, 1}
          end
        end
      end
    else
      stale = true
    end
  end

  if reply == nil then
    if token ~= '' and redis.call('SET', KEYS[lockIndex], token, 'NX', 'PX', lockTtl) then
      reply = {hash, 1, takenTtl(lockIndex, lockTtl)}
    else
      reply = {hash, 0, redis.call('PTTL', KEYS[lockIndex])}
    end
    if stale then
      reply[4] = entry
    end
  end
  replies[i] = reply
end
return replies
