-- Claims the deadlines (any timer kind) of one partition that are due, for one instance, so
-- that each is fired by one instance at a time. A claim is a lease: the firing step
-- releases it; if the instance dies first, the lease runs out and the deadline is
-- claimed again (by any instance), so it is never lost.
--
-- KEYS[1] pending deadlines (score = deadline, unix ms)
-- KEYS[2] claimed deadlines (score = lease expiry, unix ms)
-- ARGV[1] now (unix ms)   ARGV[2] lease expiry (unix ms)   ARGV[3] most to claim
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, account in ipairs(due) do
  redis.call('ZREM', KEYS[1], account)
  redis.call('ZADD', KEYS[2], ARGV[2], account)
end
local abandoned = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, account in ipairs(abandoned) do
  redis.call('ZADD', KEYS[2], ARGV[2], account)
  due[#due + 1] = account
end
return due
