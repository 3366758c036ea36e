"""The Lua scripts of budget leasing (redis_lease.py): LEASE acquires blocks of budget
windows, UNLEASE returns holdings or charges excesses, LEASE_RENEW renews a replica's leases.
A flat table of scripts, apart so the bookkeeping that calls them reads on its own; their
numbers are pairs as in lua.py (lows below LOW).
"""

from __future__ import annotations

from runtime.limits.lua import _ARGS, CALENDAR, FOREVER, LOW

_PAIRS_RAW = r"""
local function less(ah, al, bh, bl) return ah < bh or (ah == bh and al < bl) end
local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= __LOW__ then h = h + 1; l = l - __LOW__ end
  return h, l
end
local function sub(ah, al, bh, bl)
  local h, l = ah - bh, al - bl
  if l < 0 then h = h - 1; l = l + __LOW__ end
  return h, l
end
local function entry(s)
  if not s then return 0, 0, -1 end
  return struct.unpack('<ddd', s)
end
"""
_PAIRS = _PAIRS_RAW.replace("__LOW__", str(LOW))  # pairs as in lua.py: lows below LOW

# Acquire blocks. Numbers: ng, accept_loss, ttl ms, fixed N (0: the registry's), tag length;
# per budget: need h l, full amount h l (the need when the window is corrected), block h l,
# limit h l, window start and end (unix s; end -1 when none), alert h l (-1 when none),
# period kind, N of <N>d, epoch day. KEYS: per budget its key and its lease hash, then the
# generation marker, the registry of counter keys, the registry of replicas. ARGV: numbers,
# replica id, generation. Replies: {0, grants (h, l per budget), crossed alerts, corrected
# windows (j, label, end s), vanished keys accepted, server seconds}; {2, j, granted h, l};
# {4, 'generation', marker} or {4, 'key', key}.
_LEASE_BODY = r"""
local t = redis.call('TIME')
local secs = tonumber(t[1])
local ms = secs * 1000 + math.floor(tonumber(t[2]) / 1000)
local ng, accept, ttl, fixed, taglen = V[1], V[2], V[3], V[4], V[5]
local marker, registry, replicas = KEYS[2 * ng + 1], KEYS[2 * ng + 2], KEYS[2 * ng + 3]
local g = redis.call('GET', marker)
if g ~= ARGV[3] then return {4, 'generation', g} end
redis.call('ZREMRANGEBYSCORE', replicas, '-inf', ms)
redis.call('ZADD', replicas, ms + ttl, rid)
local n = fixed
if n <= 0 then n = redis.call('ZCARD', replicas) end
local a = 6
local writes, grants, out, fresh, lost, crossed, corrected = {}, {}, {}, {}, {}, {}, {}
for j = 1, ng do
  local nh, nl, eh, el = V[a], V[a + 1], V[a + 2], V[a + 3]
  local bh, bl, lh, ll = V[a + 4], V[a + 5], V[a + 6], V[a + 7]
  local first, last = V[a + 8], V[a + 9]
  local xh, xl = V[a + 10], V[a + 11]
  local key, hkey = KEYS[2 * j - 1], KEYS[2 * j]
  if secs < first or (last >= 0 and secs >= last) then
    local label
    __CALENDAR__
    key, label, last = span(V[a + 12], V[a + 13], V[a + 14], key, secs)
    hkey = string.sub(key, 1, taglen) .. ':l' .. string.sub(key, taglen + 3)  -- as _hkey
    corrected[#corrected + 1] = j
    corrected[#corrected + 1] = label
    corrected[#corrected + 1] = last
    nh, nl = eh, el  -- another window: this replica holds nothing there
  end
  a = a + 15
  local s = redis.call('GET', key)
  if not s then
    local score = redis.call('ZSCORE', registry, key)
    if score and tonumber(score) > secs then
      if accept == 0 then return {4, 'key', key} end
      lost[#lost + 1] = key
    end
    fresh[#fresh + 1] = {key, last >= 0 and last + 86400 or __FOREVER__}
  end
  -- leases not renewed in time (dead replicas) are forfeited: dropped, never subtracted
  local entries = redis.call('HGETALL', hkey)
  for e = 1, #entries, 2 do
    if entries[e] ~= '~forfeited' then
      local h, l, exp = entry(entries[e + 1])
      if exp < ms then
        redis.call('HDEL', hkey, entries[e])
        local fh, fl = pair(redis.call('HGET', hkey, '~forfeited'))
        fh, fl = add(fh, fl, h, l)
        redis.call('HSET', hkey, '~forfeited', fmt(fh, fl))
      end
    end
  end
  local gh, gl = pair(s)
  local rh, rl = sub(lh, ll, gh, gl)
  if less(rh, rl, nh, nl) then
    return {2, j, string.format('%.0f', gh), string.format('%.0f', gl)}
  end
  local ch, cl = bh, bl
  local share = math.floor(rh / (2 * n))
  if less(share, 0, ch, cl) then ch, cl = share, 0 end
  if less(ch, cl, nh, nl) then ch, cl = nh, nl end
  local th, tl = add(gh, gl, ch, cl)
  if xh >= 0 and less(gh, gl, xh, xl) and not less(th, tl, xh, xl) then
    crossed[#crossed + 1] = j  -- an alert threshold crossed by this grant
  end
  writes[#writes + 1] = key
  writes[#writes + 1] = fmt(th, tl)
  grants[#grants + 1] = {hkey, ch, cl, last}
  out[#out + 1] = string.format('%.0f', ch)
  out[#out + 1] = string.format('%.0f', cl)
end
redis.call('MSET', unpack(writes))
for _, gr in ipairs(grants) do
  local h, l = entry(redis.call('HGET', gr[1], rid))
  h, l = add(h, l, gr[2], gr[3])
  redis.call('HSET', gr[1], rid, struct.pack('<ddd', h, l, ms + ttl))
  if gr[4] >= 0 then redis.call('EXPIREAT', gr[1], gr[4] + 86400) end
end
if #fresh > 0 then
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
return {0, out, crossed, corrected, lost, t[1]}
"""
LEASE = (
    _ARGS
    + _PAIRS
    + _LEASE_BODY.replace("__FOREVER__", str(FOREVER)).replace("__CALENDAR__", CALENDAR)
)

# Return holdings, or charge excesses. Numbers: items, leaving (1: drop the replica from the
# registry); per item: kind (1 an excess; else a return: 0 of held, 2 of a refund paying an
# excess back), h, l. KEYS: marker, registry of replicas,
# then per item the budget key and its lease hash. ARGV: numbers, replica id, generation.
# Reply: -1 (the generation changed: nothing done), or per item 1 (done) or 0 (a return of a
# lease that expired: forfeited, not returned).
_UNLEASE_BODY = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return -1 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, V[1] do
  local key, hkey = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local kind, dh, dl = V[3 * i], V[3 * i + 1], V[3 * i + 2]
  local s = redis.call('GET', key)
  out[i] = 0
  if s then
    local gh, gl = pair(s)
    local h, l, exp = entry(redis.call('HGET', hkey, rid))
    if kind == 1 then
      gh, gl = add(gh, gl, dh, dl)  -- spent beyond the estimate and the holding
      redis.call('SET', key, fmt(gh, gl), 'KEEPTTL')
      if exp >= ms then  -- the lease's net grows by it (what it may return, or forfeits)
        h, l = add(h, l, dh, dl)
        redis.call('HSET', hkey, rid, struct.pack('<ddd', h, l, exp))
      end
      out[i] = 1
    else
      if exp >= ms then  -- a live lease returns at most what was granted to it
        if less(h, l, dh, dl) then dh, dl = h, l end
        h, l = sub(h, l, dh, dl)
        redis.call('HSET', hkey, rid, struct.pack('<ddd', h, l, exp))
        gh, gl = sub(gh, gl, dh, dl)
        if gh < 0 then gh, gl = 0, 0 end
        redis.call('SET', key, fmt(gh, gl), 'KEEPTTL')
        out[i] = 1
      end
    end
  end
end
if V[2] == 1 then redis.call('ZREM', KEYS[2], rid) end
return out
"""
UNLEASE = _ARGS + _PAIRS + _UNLEASE_BODY

# Renew this replica's leases. KEYS: marker, registry of replicas, lease hashes. ARGV: replica
# id, generation, ttl ms. Reply: -1 (the generation changed), or the positions (1-based among
# the hashes) of leases that had already expired (forfeited).
LEASE_RENEW = (
    r"""
local rid = ARGV[1]
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return -1 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], ms + ttl, rid)
local gone = {}
"""
    + _PAIRS
    + r"""
for k = 3, #KEYS do
  local h, l, exp = entry(redis.call('HGET', KEYS[k], rid))
  if exp >= ms then
    redis.call('HSET', KEYS[k], rid, struct.pack('<ddd', h, l, ms + ttl))
  else
    gone[#gone + 1] = k - 2
  end
end
return gone
"""
)
