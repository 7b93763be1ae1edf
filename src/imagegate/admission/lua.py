"""The Lua scripts of the Redis backend: one script (one round trip) per admission operation.

Numbers are integers (µs, micro-USD) well below 2^53, exact in Lua's doubles. Numbers given
back to Redis are formatted with ``%.0f``: Redis would otherwise print large ones in
exponent notation. Each script decides everything first and writes only when all checks pass.
"""

# KEYS: per check i, 3 keys: requests tat, images tat, concurrency zset.
# ARGV: now, ticket, lease, concurrency retry (all µs); then per check 5 numbers:
#   requests inc, requests cap, images inc, images cap, concurrent limit (-1: not limited).
# Returns {passed (1/0), failed check, failed dimension (1 requests, 2 images, 3 concurrent),
#          retry after µs, then per check: requests tat, images tat (-1: not limited)}.
ADMIT = """
local now = tonumber(ARGV[1])
local ticket = ARGV[2]
local lease = tonumber(ARGV[3])
local conc_wait = tonumber(ARGV[4])
local n = #KEYS / 3
local found, after = {}, {}
local fail_i, fail_d, fail_w = 0, 0, 0
local function num(x) return string.format('%.0f', x) end
for i = 1, n do
  local a = 4 + (i - 1) * 5
  for d = 1, 2 do
    local inc = tonumber(ARGV[a + d * 2 - 1])
    local cap = tonumber(ARGV[a + d * 2])
    local s = (i - 1) * 2 + d
    if cap < 0 then
      found[s], after[s] = -1, -1
    else
      local tat = tonumber(redis.call('GET', KEYS[(i - 1) * 3 + d]) or '0')
      if tat < now then tat = now end
      local new = tat + inc
      local early = new - now - cap
      found[s], after[s] = tat, new
      if early > 0 and early > fail_w then fail_i, fail_d, fail_w = i, d, early end
    end
  end
  local limit = tonumber(ARGV[a + 5])
  if limit >= 0 then
    local ck = KEYS[i * 3]
    redis.call('ZREMRANGEBYSCORE', ck, '-inf', num(now))
    if redis.call('ZCARD', ck) >= limit and conc_wait > fail_w then
      fail_i, fail_d, fail_w = i, 3, conc_wait
    end
  end
end
local res = {0, fail_i, fail_d, fail_w}
if fail_i > 0 then
  for s = 1, 2 * n do res[4 + s] = found[s] end
  return res
end
res[1] = 1
for i = 1, n do
  for d = 1, 2 do
    local s = (i - 1) * 2 + d
    res[4 + s] = after[s]
    if after[s] > found[s] then
      redis.call('SET', KEYS[(i - 1) * 3 + d], num(after[s]),
                 'PX', num(math.floor((after[s] - now) / 1000) + 1000))
    end
  end
  if tonumber(ARGV[4 + (i - 1) * 5 + 5]) >= 0 then
    local ck = KEYS[i * 3]
    redis.call('ZADD', ck, num(now + lease), ticket)
    local last = redis.call('ZRANGE', ck, -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', ck, num(math.floor((tonumber(last[2]) - now) / 1000) + 1000))
  end
end
return res
"""

# KEYS: the concurrency zsets of a ticket; ARGV[1]: the ticket.
RELEASE = """
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1
"""

# KEYS: budget counters (micro-USD) of one request.
# ARGV: worst (micro-USD), unpriced (1/0), then per budget: limit, ttl ms, seed ('' = unknown).
# Returns {2, missing...} when a counter without a seed does not exist (nothing changed),
#         {0, refusing budget} or {1}. A counter is created from its seed only if absent, so
#         the first replica's seed wins.
RESERVE = """
local worst = tonumber(ARGV[1])
local unpriced = ARGV[2] == '1'
local used, fresh, missing = {}, {}, {}
local function num(x) return string.format('%.0f', x) end
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    used[i] = tonumber(v)
  elseif ARGV[2 + i * 3] ~= '' then
    used[i] = tonumber(ARGV[2 + i * 3])
    fresh[i] = true
  else
    missing[#missing + 1] = i
  end
end
if #missing > 0 then
  local res = {2}
  for _, i in ipairs(missing) do res[#res + 1] = i end
  return res
end
local fail = 0
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i * 3])
  local over
  if unpriced then over = used[i] >= limit else over = used[i] + worst > limit end
  if over then fail = i break end
end
local add = 0
if fail == 0 then add = worst end
for i = 1, #KEYS do
  if fresh[i] then
    redis.call('SET', KEYS[i], num(used[i] + add), 'PX', ARGV[1 + i * 3])
  elseif add ~= 0 then
    redis.call('INCRBY', KEYS[i], num(add))
  end
end
if fail > 0 then return {0, fail} end
return {1}
"""

# KEYS: budget counters; ARGV[1]: actual minus reserved (micro-USD). A counter that expired
# meanwhile is not brought back.
SETTLE = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[1]) end
end
return 1
"""
