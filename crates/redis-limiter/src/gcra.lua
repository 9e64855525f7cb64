-- GCRA (generic cell rate algorithm), one key per budget: the key holds the budget's
-- "theoretical arrival time" (TAT) in microseconds; a fresh or expired key is a full burst.
-- KEYS[1]  the budget's key
-- ARGV[1]  emission interval: microseconds per request (1e6 / rate per second)
-- ARGV[2]  burst: requests allowed at once
-- ARGV[3]  optional "now" in microseconds (tests); Redis's own clock otherwise, so every
--          replica decides on one clock
-- Returns {1, 0} when the request is counted, {0, retry_after_us} when it is refused.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
-- The key lives until the budget would be full again, so Redis keeps no idle key.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, 0}
