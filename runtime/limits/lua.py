"""The Lua scripts of the Redis store: one admission, one settlement, each atomic.

Redis Lua numbers are doubles, exact only below 2^53, so nothing large is multiplied in Lua:
- time is microseconds since 2020-01-01 (about 2^48 today), from the server's clock;
- a GCRA bucket is one pair (q, r): its arrival time is `q + r/limit` microseconds; the
  client computes each increment `units * per / limit` as (q, r) with Python integers;
- a budget is one pair (h, l): usd is (micro-USD, remainder below LOW = 10^10 units of
  1e-16 USD), tokens and requests use `h` only. Each stays far below 2^53 (money.py and
  spec.py say why); a sum or difference of two normalised lows is below 2 * 10^10 in
  magnitude, so one carry or borrow normalises it exactly.
A pair is stored as 16 bytes, two little-endian doubles (struct '<dd'): exact for integers
below 2^53; a budget window is two pairs, 32 bytes: what it was charged, then what admitted,
unsettled requests hold of that (their reservations, for `usage()`; a 16-byte value from an
older store or from leasing holds no second pair). Packing doubles is several times
cheaper in Redis's Lua than formatting or parsing text (which was the larger part of the
script's time). State is read
and written with one MGET and one MSET, to keep the script short: it runs on every request.
Counter keys carry no TTL (a SET or MSET would drop it on every write): the registry below
says when a budget window's key may go, a day after the window ends, and the admission that
opens a new window deletes up to 64 keys whose time has come. No reset job, and keys without
a TTL are never evicted by a volatile-* policy.

All numbers travel as ONE argument of packed little-endian doubles (ARGV[1], unpacked by
Redis's `struct` library in one C call) and the request id as ARGV[2]: parsing numbers from
text in Lua (gmatch, tonumber) cost more than the whole rest of the script. Every number is
an integer below 2^53, so a double carries it exactly.

Budget windows come from the server's clock. The client sends its guess of each window
(key, first and last second, from its own clock); the script only compares the server's
`TIME` with those two seconds, and computes the window itself (the calendar in Lua below,
the same as periods.py) when the guess is wrong: a skewed client, or a request racing
midnight. Corrected windows go back in the reply, so settlement charges the same keys.

Lost counters are detected, not reset: every admission compares the namespace's
generation marker with the store's (a FLUSHALL, a failover to an empty replica or an
eviction removes it), and every counter key is recorded, when created, in a registry
sorted set scored by the second it may be deleted; a key missing while its registry entry
says it should exist has vanished. The scripts report it; the store applies its fail policy.

Admission numbers: nb, ng, nl, accept_loss, lease_ttl_us; per bucket: limit, iq, ir, cq,
cr; per budget: limit h, limit l, amount h, amount l, window start and end (unix s; end -1
when none), alert h, alert l (-1 when none), period kind, N of <N>d, epoch day; per lease:
limit. KEYS: buckets, budgets, leases, the request's state, the generation, the registry.
ARGV: numbers, request id, generation, settled TTL (s), this call's nonce.
Replies: 0 (admitted), or {0, crossed alerts, corrected windows (j, key label, end s),
vanished keys accepted (fail-open), server seconds}; {1, bucket, q, r, now}; {2, budget, h, l};
{3, lease}; {4, 'generation', marker} or {4, 'key', key}: counters lost;
{5, state}: the request id is live ('a') or settled ('s'); {6}: admitted already by this very
call (the nonce matches: a client library resent it after a lost reply).
A live request's state is 'a' followed by its admission's nonce, so a settlement that voids
an admission whose reply was lost (ARGV[5] = that nonce) applies only if it ran.
"""

FOREVER = 2**52  # registry score (unix s) of keys that never expire: buckets, `none` budgets
LOW = 10**10  # units of 1e-16 USD per micro-USD: the base of a usd pair's low part

_ARGS_RAW = r"""
local V = {struct.unpack('<' .. string.rep('d', #ARGV[1] / 8), ARGV[1])}
local rid = ARGV[2]
local function pair(s)
  if not s then return 0, 0 end
  local a, b = struct.unpack('<dd', s)
  return a, b
end
local function fmt(a, b) return struct.pack('<dd', a, b) end
-- a budget window carries a second pair: what admitted, unsettled requests hold of it
local function held(s)
  if s and #s >= 32 then
    local _, _, c, d = struct.unpack('<dddd', s)
    return c, d
  end
  return 0, 0
end
local function fmt4(a, b, c, d)
  if d >= __LOW__ then c = c + 1; d = d - __LOW__ elseif d < 0 then c = c - 1; d = d + __LOW__ end
  if c < 0 then c = 0; d = 0 end
  return struct.pack('<dddd', a, b, c, d)
end
"""
_ARGS = _ARGS_RAW.replace("__LOW__", str(LOW))

# Days since 1970 <-> civil dates (H. Hinnant's algorithms), and the window of a period at
# a second: (key with its window label, the label, end in unix seconds).
CALENDAR = r"""
local floor = math.floor
local function civil(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end
local function days(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + floor((153 * mp + 2) / 5) + d - 1
  return era * 146097 + doe - 719468
end
local function span(kind, n, start, key, secs)
  local day = floor(secs / 86400)
  local head = string.match(key, '^(.*|)')  -- the key up to its window label
  local label, last
  if kind == 1 then
    local y, m, d = civil(day)
    label, last = string.format('%04d-%02d-%02d', y, m, d), day + 1
  elseif kind == 2 then
    local wd = (day + 3) % 7 + 1
    local th = day - wd + 4  -- the Thursday of the ISO week names its year
    local y = civil(th)
    label = string.format('%d-W%02d', y, floor((th - days(y, 1, 1)) / 7) + 1)
    last = day + 8 - wd
  elseif kind == 3 then
    local y, m = civil(day)
    label = string.format('%d-%02d', y, m)
    if m == 12 then last = days(y + 1, 1, 1) else last = days(y, m + 1, 1) end
  else
    local index = floor((day - start) / n)
    local stem = string.match(string.sub(key, #head + 1), '^(.*#)')  -- '<N>d@<epoch>#'
    label, last = stem .. string.format('%d', index), start + (index + 1) * n
  end
  return head .. label, label, last * 86400
end
"""

_ADMIT_BODY = r"""
local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = (secs - 1577836800) * 1000000 + tonumber(t[2])
local nb, ng, nl = V[1], V[2], V[3]
local accept, lease_ttl = V[4], V[5]
local nk = nb + ng
local base = nk + nl
local names = {}
for i = 1, nk do names[i] = KEYS[i] end
names[nk + 1] = KEYS[base + 1]
names[nk + 2] = KEYS[base + 2]
local state = redis.call('MGET', unpack(names))
if state[nk + 2] ~= ARGV[3] then return {4, 'generation', state[nk + 2]} end
if state[nk + 1] then
  if state[nk + 1] == 'a' .. ARGV[5] then return {6} end  -- this very call, sent again
  return {5, string.sub(state[nk + 1], 1, 1)}
end
local registry = KEYS[base + 3]
local function vanished(key)
  local score = redis.call('ZSCORE', registry, key)
  return score and tonumber(score) > secs
end
local a = 6
local writes, fresh, lost = {}, {}, {}
for i = 1, nb do
  local limit, iq, ir = V[a], V[a + 1], V[a + 2]
  local cq, cr = V[a + 3], V[a + 4]
  a = a + 5
  if not state[i] then
    if vanished(KEYS[i]) then
      if accept == 0 then return {4, 'key', KEYS[i]} end
      lost[#lost + 1] = KEYS[i]
    end
    fresh[#fresh + 1] = {KEYS[i], __FOREVER__}
  end
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
local crossed, corrected = {}, {}
for j = 1, ng do
  local lh, ll = V[a], V[a + 1]
  local ah, al = V[a + 2], V[a + 3]
  local first, last = V[a + 4], V[a + 5]
  local xh, xl = V[a + 6], V[a + 7]
  local key, s = KEYS[nb + j], state[nb + j]
  if secs < first or (last >= 0 and secs >= last) then
    -- the client guessed another window than the server's clock says
    local label
    __CALENDAR__
    key, label, last = span(V[a + 8], V[a + 9], V[a + 10], key, secs)
    s = redis.call('GET', key)
    corrected[#corrected + 1] = j
    corrected[#corrected + 1] = label
    corrected[#corrected + 1] = last
  end
  a = a + 11
  if not s then
    if vanished(key) then
      if accept == 0 then return {4, 'key', key} end
      lost[#lost + 1] = key
    end
    fresh[#fresh + 1] = {key, last >= 0 and last + 86400 or __FOREVER__}
  end
  local h, l = pair(s)
  local sh, sl = h + ah, l + al
  if sl >= __LOW__ then sh = sh + 1; sl = sl - __LOW__ end
  if sh > lh or (sh == lh and sl > ll) then
    return {2, j, string.format('%.0f', h), string.format('%.0f', l)}
  end
  if xh >= 0 and (h < xh or (h == xh and l < xl)) and (xh < sh or (xh == sh and xl <= sl)) then
    crossed[#crossed + 1] = j  -- an alert threshold crossed: spent < alert <= spent + amount
  end
  writes[#writes + 1] = key
  local rh, rl = held(s)
  writes[#writes + 1] = fmt4(sh, sl, rh + ah, rl + al)
end
for k = 1, nl do
  local key = KEYS[nk + k]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= V[a] then return {3, k} end
  a = a + 1
end
-- every check passed: charge all
if #writes > 0 then redis.call('MSET', unpack(writes)) end
if #fresh > 0 then
  -- new keys are registered with the second they may be deleted (a budget window: a day
  -- after its end); opening them also deletes a few keys whose time has come
  local old = redis.call('ZRANGEBYSCORE', registry, '-inf', secs, 'LIMIT', 0, 64)
  if #old > 0 then
    redis.call('DEL', unpack(old))
    redis.call('ZREM', registry, unpack(old))
  end
  local scores = {}
  for _, f in ipairs(fresh) do
    scores[#scores + 1] = string.format('%.0f', f[2])
    scores[#scores + 1] = f[1]
  end
  redis.call('ZADD', registry, unpack(scores))
end
redis.call('SET', KEYS[base + 1], 'a' .. ARGV[5], 'EX', ARGV[4])
for k = 1, nl do
  local key = KEYS[nk + k]
  redis.call('ZADD', key, now + lease_ttl, rid)
  redis.call('PEXPIRE', key, math.floor(lease_ttl / 1000) + 60000)
end
if #crossed + #corrected + #lost == 0 then return 0 end  -- the common reply: nothing to add
return {0, crossed, corrected, lost, t[1]}
"""
# the calendar is defined inside the branch that needs it: no closures on the common path
_ADMIT_FULL = _ADMIT_BODY.replace("__FOREVER__", str(FOREVER)).replace("__LOW__", str(LOW))
ADMIT = _ARGS + _ADMIT_FULL.replace("__CALENDAR__", CALENDAR)

# Settlement numbers: nb, ng, nl, 0, 0; per token bucket: sign, dq, dr, limit, cap (the
# most microseconds ahead of now a bucket may be left); per budget: delta h, delta l (same
# sign), and the reservation it releases, h and l. KEYS: the request's state, the
# generation, the registry, token buckets, budgets, leases. ARGV: numbers, request id, the
# generation it was admitted in, settled TTL (s), and for a void only, the admission's
# nonce (nothing happens unless that admission ran).
# Replies: 0 already settled (or a void of an admission that never ran); 1 done, or {1,
# vanished keys}; 2 the generation changed (the counters it charged were lost: leases
# released, nothing corrected).
_SETTLE_BODY = r"""
local st = redis.call('MGET', KEYS[1], KEYS[2])
if st[1] == 's' then return 0 end
if ARGV[5] and st[1] ~= 'a' .. ARGV[5] then return 0 end  -- a void: only its own admission
-- no admission here: a failover lost it (the new primary never saw it). Nothing it held is
-- held here, so nothing is released or corrected: its budgets are charged what it used
local unknown = not st[1]
redis.call('SET', KEYS[1], 's', 'EX', ARGV[4])
local nb, ng, nl = V[1], V[2], V[3]
for k = 1, nl do
  redis.call('ZREM', KEYS[3 + nb + ng + k], rid)
end
if st[2] ~= ARGV[3] then return 2 end
local secs, now
local function clock()
  if not secs then
    local t = redis.call('TIME')
    secs = tonumber(t[1])
    now = (secs - 1577836800) * 1000000 + tonumber(t[2])
  end
end
local lost = {}
local function vanished(key)
  clock()
  local score = redis.call('ZSCORE', KEYS[3], key)
  if score and tonumber(score) > secs then lost[#lost + 1] = key end
end
local a = 6
for i = 1, nb do
  local key = KEYS[3 + i]
  local sign, dq = V[a], V[a + 1]
  local dr, limit, cap = V[a + 2], V[a + 3], V[a + 4]
  a = a + 5
  local s = not unknown and redis.call('GET', key)
  if s then
    local q, r = pair(s)
    if sign > 0 then
      q, r = q + dq, r + dr
      if r >= limit then q = q + 1; r = r - limit end
      clock()
      if q >= now + cap then q = now + cap; r = 0 end  -- at most one full bucket in debt
    else
      q, r = q - dq, r - dr
      if r < 0 then q = q - 1; r = r + limit end
    end
    redis.call('SET', key, fmt(q, r), 'KEEPTTL')
  elseif not unknown then
    vanished(key)
  end
end
for j = 1, ng do
  local key = KEYS[3 + nb + j]
  local s = redis.call('GET', key)
  if s then
    local h, l = pair(s)
    local rh, rl = held(s)
    if unknown then  -- the usage: the correction plus the reservation it corrects
      h, l = h + V[a] + V[a + 2], l + V[a + 1] + V[a + 3]
    else
      h, l = h + V[a], l + V[a + 1]
      rh, rl = rh - V[a + 2], rl - V[a + 3]
    end
    while l >= __LOW__ do h = h + 1; l = l - __LOW__ end
    if l < 0 then h = h - 1; l = l + __LOW__ end
    if h < 0 then h = 0; l = 0; lost[#lost + 1] = key end  -- never below zero
    redis.call('SET', key, fmt4(h, l, rh, rl), 'KEEPTTL')
  else
    vanished(key)
  end
  a = a + 4
end
local code = unknown and 3 or 1
if #lost == 0 then return code end
return {code, lost}
"""
SETTLE = _ARGS + _SETTLE_BODY.replace("__LOW__", str(LOW))

# Renew leases: KEYS lease sets, ARGV the TTL (us) then, per key, the request id holding a
# lease in it. Only leases still held are renewed (XX: a released one stays released), and
# the set's own TTL (set at admission: the TTL plus a minute) is extended to match.
RENEW = r"""
local t = redis.call('TIME')
local expiry = (tonumber(t[1]) - 1577836800) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
local keep = math.floor(tonumber(ARGV[1]) / 1000) + 60000
local renewed = 0
for k = 1, #KEYS do
  if redis.call('ZADD', KEYS[k], 'XX', 'CH', expiry, ARGV[k + 1]) == 1 then
    renewed = renewed + 1
    if redis.call('PTTL', KEYS[k]) < keep then redis.call('PEXPIRE', KEYS[k], keep) end
  end
end
return renewed
"""

# Join the namespace's generation of counters, creating it when there is none (a new
# namespace, or one whose counters were all lost). KEYS: marker; ARGV: a fresh id.
START = r"""
local g = redis.call('GET', KEYS[1])
if g then return {0, g} end
redis.call('SET', KEYS[1], ARGV[1])
return {1, ARGV[1]}
"""

# Accept lost counters: adopt the current generation (or start one), and forget registered
# keys that vanished so they count afresh. KEYS: marker, registry; ARGV: a fresh id.
RECOVER = r"""
local secs = tonumber(redis.call('TIME')[1])
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[1], g)
end
local forgotten = 0
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. secs, '+inf')) do
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[2], key)
    forgotten = forgotten + 1
  end
end
return {g, forgotten}
"""

# For tests: the window a budget key has at a given second, computed by the scripts' own
# calendar. KEYS: a key guessed for the window; ARGV: kind, N, epoch day, unix seconds.
SPAN = (
    CALENDAR
    + r"""
local key, label, last = span(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), KEYS[1],
                              tonumber(ARGV[4]))
return {key, label, last}
"""
)
