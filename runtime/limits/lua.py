"""The Lua scripts of the Redis store: one admission, one settlement, each atomic.

Redis Lua numbers are doubles, exact only below 2^53, so nothing large is multiplied in Lua:
- time is microseconds since 2020-01-01 (about 2^48 today), from the server's clock;
- a GCRA bucket is one pair (q, r): its arrival time is `q + r/limit` microseconds; the
  client computes each increment `units * per / limit` as (q, r) with Python integers;
- a budget is one pair (h, l): usd is (micro-USD, pico-USD remainder below 10^6), tokens
  and requests use `h` only. Each stays far below 2^53.
A pair is stored as 16 bytes, two little-endian doubles (struct '<dd'): exact for integers
below 2^53, and packing it is several times cheaper in Redis's Lua than formatting or
parsing text (which was the larger part of the script's time). State is read
with one MGET and written with one MSET (a budget window's expiry is set once, when its key
is created; bucket keys are one per limit and need none), to keep the script short: it runs
on every request.

All numbers travel as ONE argument of packed little-endian doubles (ARGV[1], unpacked by
Redis's `struct` library in one C call) and the request id as ARGV[2]: parsing numbers from
text in Lua (gmatch, tonumber) cost more than the whole rest of the script. Every number is
an integer below 2^53, so a double carries it exactly.
Admission numbers: nb, ng, nl, 0, lease_ttl_us; per bucket: limit, iq, ir, cq, cr;
per budget: limit h, limit l, amount h, amount l, window end (unix s, 0 = none),
alert h, alert l (-1 when none); per lease: limit.
"""

_ARGS = r"""
local V = {struct.unpack('<' .. string.rep('d', #ARGV[1] / 8), ARGV[1])}
local rid = ARGV[2]
local function pair(s)
  if not s then return 0, 0 end
  local a, b = struct.unpack('<dd', s)
  return a, b
end
local function fmt(a, b) return struct.pack('<dd', a, b) end
"""

_ADMIT_BODY = r"""
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1577836800) * 1000000 + tonumber(t[2])
local nb, ng, nl = V[1], V[2], V[3]
local lease_ttl = V[5]
local state = {}
if nb + ng > 0 then
  local names = {}
  for i = 1, nb + ng do names[i] = KEYS[i] end
  state = redis.call('MGET', unpack(names))
end
local a = 6
local writes = {}
for i = 1, nb do
  local limit, iq, ir = V[a], V[a + 1], V[a + 2]
  local cq, cr = V[a + 3], V[a + 4]
  a = a + 5
  local q, r = pair(state[i])
  if q < now then q = now; r = 0 end
  local q2, r2 = q + iq, r + ir
  if r2 >= limit then q2 = q2 + 1; r2 = r2 - limit end
  local ahead = q2 - now
  if limit == 0 or ahead > cq or (ahead == cq and r2 > cr) then
    return {1, i, string.format('%.0f', q), string.format('%.0f', r), string.format('%.0f', now)}
  end
  writes[#writes + 1] = KEYS[i]
  writes[#writes + 1] = fmt(q2, r2)
end
local crossed, fresh = {}, {}
for j = 1, ng do
  local lh, ll = V[a], V[a + 1]
  local ah, al = V[a + 2], V[a + 3]
  local xh, xl = V[a + 5], V[a + 6]
  local h, l = pair(state[nb + j])
  local sh, sl = h + ah, l + al
  if sl >= 1000000 then sh = sh + 1; sl = sl - 1000000 end
  if sh > lh or (sh == lh and sl > ll) then
    return {2, j, string.format('%.0f', h), string.format('%.0f', l)}
  end
  if xh >= 0 and (h < xh or (h == xh and l < xl)) and (xh < sh or (xh == sh and xl <= sl)) then
    crossed[#crossed + 1] = j  -- an alert threshold crossed: spent < alert <= spent + amount
  end
  writes[#writes + 1] = KEYS[nb + j]
  writes[#writes + 1] = fmt(sh, sl)
  if not state[nb + j] and V[a + 4] > 0 then
    -- a new window: it expires after its end
    fresh[#fresh + 1] = {KEYS[nb + j], string.format('%.0f', V[a + 4])}
  end
  a = a + 7
end
for k = 1, nl do
  local key = KEYS[nb + ng + k]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= V[a] then return {3, k} end
  a = a + 1
end
-- every check passed: charge all
if #writes > 0 then redis.call('MSET', unpack(writes)) end
for _, f in ipairs(fresh) do redis.call('EXPIREAT', f[1], f[2]) end
for k = 1, nl do
  local key = KEYS[nb + ng + k]
  redis.call('ZADD', key, now + lease_ttl, rid)
  redis.call('PEXPIRE', key, math.floor(lease_ttl / 1000) + 60000)
end
return {0, string.format('%.0f', now), unpack(crossed)}
"""
ADMIT = _ARGS + _ADMIT_BODY

# Settlement numbers: nb, ng, nl, 0, settled_ttl_s; per token bucket: sign, dq, dr, limit;
# per budget: delta h, delta l (same sign).
_SETTLE_BODY = r"""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', string.format('%.0f', V[5])) then return 0 end
local nb, ng, nl = V[1], V[2], V[3]
local a = 6
for i = 1, nb do
  local key = KEYS[1 + i]
  local sign, dq = V[a], V[a + 1]
  local dr, limit = V[a + 2], V[a + 3]
  a = a + 4
  local s = redis.call('GET', key)
  if s then
    local q, r = pair(s)
    if sign > 0 then
      q, r = q + dq, r + dr
      if r >= limit then q = q + 1; r = r - limit end
    else
      q, r = q - dq, r - dr
      if r < 0 then q = q - 1; r = r + limit end
    end
    redis.call('SET', key, fmt(q, r), 'KEEPTTL')
  end
end
for j = 1, ng do
  local key = KEYS[1 + nb + j]
  local s = redis.call('GET', key)
  if s then
    local h, l = pair(s)
    h, l = h + V[a], l + V[a + 1]
    if l >= 1000000 then h = h + 1; l = l - 1000000
    elseif l < 0 then h = h - 1; l = l + 1000000 end
    redis.call('SET', key, fmt(h, l), 'KEEPTTL')
  end
  a = a + 2
end
for k = 1, nl do
  redis.call('ZREM', KEYS[1 + nb + ng + k], rid)
end
return 1
"""
SETTLE = _ARGS + _SETTLE_BODY

RENEW = r"""
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1577836800) * 1000000 + tonumber(t[2])
local renewed = 0
for k = 1, #KEYS do
  renewed = renewed + redis.call('ZADD', KEYS[k], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
end
return renewed
"""
