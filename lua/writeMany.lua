--[[
  writeMany: N writes in one call, each exactly what write-2.lua does for one entry: stores the
  entry (SET of the entry keys) and, with a lock token, only while the entry's lock still holds
  that token, releasing the lock in the same step (DEL of the lock keys). The writes of
  concurrent misses that finish in the same tick go to Redis together in one call (on a
  cluster, one call per slot).

  Key count: variable, 2 × N.

  Input:
    KEYS[1..]   keys of entries and locks: for the i-th of the N entries, KEYS[2i-1] its
                entry key {prefix}:entry:{name}:{argsHash} and KEYS[2i] its lock key
                {prefix}:lock:{name}:{argsHash}

    ARGV[1]     wake mode     'n' on one server, 's' on a cluster: how a release wakes the
                              lock's waiters, on the lock's channel (named as its key) and only
                              if somebody listens (see wakeAll() below)
    ARGV[2..]   per entry     for each entry in order, 3 values: its entry bytes (header +
                              payload, as the codec encodes them, binary), its entry TTL
                              (milliseconds, integer >= 1) and its lock token ('' writes
                              unconditionally and leaves the lock alone; otherwise the entry is
                              stored only while its lock key still holds this token)

  Output:
    an array of N integers, the i-th for the i-th entry, as write-2.lua's reply: 1 stored
    (and, with a token, the lock deleted and KEYS[2 * i] published on KEYS[2 * i] if its
    waiters listen); 0 not stored, the lock is no longer held with the token.
    No error replies of its own.
]]

-- Wakes the waiters of the locks KEYS[index] for each index of `locks` (the locks this call
-- released), each on its own channel (named as its key), only those somebody listens to: one
-- PUBSUB NUMSUB for all of them then PUBLISH, on a cluster one SHARDNUMSUB then SPUBLISH (the
-- messages stay on the shard). Where the count is refused (a server without sharded pub/sub,
-- before Redis 7, or an ACL without pubsub|numsub or pubsub|shardnumsub), a classic PUBLISH for
-- each, always: the subscribers are then classic too. (write-2.lua's wake(), for many locks.)
local function wakeAll(mode, locks)
  local channels = {}
  for j = 1, #locks do
    channels[j] = KEYS[locks[j]]
  end
  local listening = redis.pcall('PUBSUB', mode == 's' and 'SHARDNUMSUB' or 'NUMSUB', unpack(channels))
  for j = 1, #locks do
    local lock = locks[j]
    if listening.err then
      redis.call('PUBLISH', KEYS[lock], KEYS[lock])
    elseif listening[2 * j] > 0 then
      if mode == 's' then
        redis.call('SPUBLISH', KEYS[lock], KEYS[lock])
      else
        redis.call('PUBLISH', KEYS[lock], KEYS[lock])
      end
    end
  end
end

local replies = {}
local released = {}
for i = 1, #KEYS / 2 do
  local at = 3 * i - 1
  local token = ARGV[at + 2]
  if token == '' then
    redis.call('SET', KEYS[2 * i - 1], ARGV[at], 'PX', ARGV[at + 1])
    replies[i] = 1
  elseif redis.call('GET', KEYS[2 * i]) ~= token then
    replies[i] = 0
  else
    redis.call('SET', KEYS[2 * i - 1], ARGV[at], 'PX', ARGV[at + 1])
    redis.call('DEL', KEYS[2 * i])
    released[#released + 1] = 2 * i
    replies[i] = 1
  end
end
if #released > 0 then
  wakeAll(ARGV[1], released)
end
return replies
