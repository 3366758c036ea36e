"""The two Lua scripts of the Redis store: one admission, one settlement, each atomic.

Redis Lua numbers are doubles, exact only below 2^53, so nothing large is multiplied in Lua:
- time is microseconds since 2020-01-01 (about 2^48 today), from the server's clock;
- a GCRA bucket's arrival time is `q + r/limit` microseconds, an integer and a remainder;
  the client computes each increment `units * per / limit` as (q, r) with Python integers;
- a usd budget is (micro-USD, pico-USD remainder below 10^6); tokens and requests budgets
  use the first field only. Additions go through HINCRBY with the client's exact strings.
Per budget the client passes 7 values: limit (2), amount (2), window end, alert level (2,
-1 when none); a successful admission returns the budgets whose alert level it crossed.
Integers are written back with string.format('%.0f'), never tostring (which rounds).
"""

ADMIT = r"""
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1577836800) * 1000000 + tonumber(t[2])
local nb, ng, nl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rid, lease_ttl = ARGV[4], tonumber(ARGV[5])
local a = 6
local nq, nr, idle = {}, {}, {}
for i = 1, nb do
  local limit, iq, ir = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cq, cr = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  local st = redis.call('HMGET', KEYS[i], 'q', 'r')
  local q, r = tonumber(st[1]) or 0, tonumber(st[2]) or 0
  if q < now then q = now; r = 0 end
  local q2, r2 = q + iq, r + ir
  if r2 >= limit then q2 = q2 + 1; r2 = r2 - limit end
  local ahead = q2 - now
  if limit == 0 or ahead > cq or (ahead == cq and r2 > cr) then
    return {1, i, string.format('%.0f', q), string.format('%.0f', r), string.format('%.0f', now)}
  end
  nq[i], nr[i], idle[i] = q2, r2, ahead
end
local crossed = {}
for j = 1, ng do
  local key = KEYS[nb + j]
  local lh, ll = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local ah, al = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local xh, xl = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local st = redis.call('HMGET', key, 'h', 'l')
  local h, l = tonumber(st[1]) or 0, tonumber(st[2]) or 0
  local sh, sl = h + ah, l + al
  if sl >= 1000000 then sh = sh + 1; sl = sl - 1000000 end
  if sh > lh or (sh == lh and sl > ll) then
    return {2, j, string.format('%.0f', h), string.format('%.0f', l)}
  end
  -- an alert threshold crossed: spent < alert <= spent + amount
  if xh >= 0 and (h < xh or (h == xh and l < xl)) and (xh < sh or (xh == sh and xl <= sl)) then
    crossed[#crossed + 1] = j
  end
  a = a + 7
end
for k = 1, nl do
  local key = KEYS[nb + ng + k]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[a]) then return {3, k} end
  a = a + 1
end
-- every check passed: charge all
for i = 1, nb do
  redis.call('HSET', KEYS[i], 'q', string.format('%.0f', nq[i]), 'r', string.format('%.0f', nr[i]))
  redis.call('PEXPIRE', KEYS[i], math.floor(idle[i] / 1000) + 60000)
end
a = 6 + 5 * nb
for j = 1, ng do
  local key = KEYS[nb + j]
  redis.call('HINCRBY', key, 'h', ARGV[a + 2])
  local l = redis.call('HINCRBY', key, 'l', ARGV[a + 3])
  if l >= 1000000 then
    redis.call('HINCRBY', key, 'l', -1000000)
    redis.call('HINCRBY', key, 'h', 1)
  end
  if tonumber(ARGV[a + 4]) > 0 then redis.call('EXPIREAT', key, ARGV[a + 4]) end
  a = a + 7
end
for k = 1, nl do
  local key = KEYS[nb + ng + k]
  redis.call('ZADD', key, now + lease_ttl, rid)
  redis.call('PEXPIRE', key, math.floor(lease_ttl / 1000) + 60000)
end
return {0, string.format('%.0f', now), unpack(crossed)}
"""

SETTLE = r"""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 0 end
local nb, ng, nl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rid = ARGV[4]
local a = 6
for i = 1, nb do
  local key = KEYS[1 + i]
  local sign, dq = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local dr, limit = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local st = redis.call('HMGET', key, 'q', 'r')
  if st[1] then
    local q, r = tonumber(st[1]), tonumber(st[2]) or 0
    if sign > 0 then
      q, r = q + dq, r + dr
      if r >= limit then q = q + 1; r = r - limit end
    else
      q, r = q - dq, r - dr
      if r < 0 then q = q - 1; r = r + limit end
    end
    redis.call('HSET', key, 'q', string.format('%.0f', q), 'r', string.format('%.0f', r))
  end
end
for j = 1, ng do
  local key = KEYS[1 + nb + j]
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'h', ARGV[a])
    local l = redis.call('HINCRBY', key, 'l', ARGV[a + 1])
    if l >= 1000000 then
      redis.call('HINCRBY', key, 'l', -1000000)
      redis.call('HINCRBY', key, 'h', 1)
    elseif l < 0 then
      redis.call('HINCRBY', key, 'l', 1000000)
      redis.call('HINCRBY', key, 'h', -1)
    end
  end
  a = a + 2
end
for k = 1, nl do
  redis.call('ZREM', KEYS[1 + nb + ng + k], rid)
end
return 1
"""

RENEW = r"""
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1577836800) * 1000000 + tonumber(t[2])
local renewed = 0
for k = 1, #KEYS do
  renewed = renewed + redis.call('ZADD', KEYS[k], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
end
return renewed
"""
