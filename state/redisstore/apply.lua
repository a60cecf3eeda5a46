-- One event's atomic step: remember the event, save the account, queue its outbound
-- events. No money arithmetic happens here; the state is decided in Go and passed whole.
--
-- KEYS[1] account hash   KEYS[2] idempotency record   KEYS[3] outbox stream
-- ARGV[1] version the decision was made on ("0" for a new account)
-- ARGV[2] version to store   ARGV[3] account JSON, "" when the event changed nothing
-- ARGV[4] idempotency retention in seconds
-- ARGV[5...] outbound events as (id, subject, body) triples
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'DUPLICATE'
end
local current = redis.call('HGET', KEYS[1], 'v') or '0'
if current ~= ARGV[1] then
  return 'CONFLICT'
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
for i = 5, #ARGV, 3 do
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[i], 'subject', ARGV[i + 1], 'body', ARGV[i + 2])
end
return 'APPLIED'
