-- Claims the deadlines (any timer kind) of one partition that are due, for one instance, so
-- that each is fired by one instance at a time. A claim is a lease: the firing step
-- releases it; if the instance dies first, the lease runs out and the deadline is
-- claimed again (by any instance), so it is never lost.
--
-- KEYS[1] pending deadlines (score = deadline, unix ms)
-- KEYS[2] claimed deadlines (score = lease expiry, unix ms)
-- ARGV[1] the millisecond after now (unix ms): what scores before it are due
-- ARGV[2] lease expiry (unix ms)   ARGV[3] most to claim
--
-- A score's fraction of a millisecond is the deadline's kind (see apply.lua's
-- kindInScore), so a deadline at now scores a little above now: due all the same. The
-- claim's score keeps the fraction, so the step that fires the deadline knows which
-- kind it stops counting.
local function leaseFor(score)
  local fraction = string.match(score, '%.%d+$')
  if fraction then
    return ARGV[2] .. fraction
  end
  return ARGV[2]
end
local claimed = {}
local function claim(found)
  for i = 1, #found, 2 do
    redis.call('ZADD', KEYS[2], leaseFor(found[i + 1]), found[i])
    claimed[#claimed + 1] = found[i]
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
end
claim(due)
claim(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3]))
return claimed
