-- One atomic step: remember the event, save the account, keep its next deadline,
-- queue its outbound events. No money arithmetic happens here; the state is decided in
-- Go and passed whole.
--
-- KEYS[1] account hash   KEYS[2] idempotency record   KEYS[3] outbox stream
-- KEYS[4] pending deadlines: each account's earliest timer, any kind (sorted set, score = deadline in unix ms)
-- KEYS[5] claimed deadlines (sorted set, score = claim lease expiry)
-- KEYS[6] fact record: the business fact the event announces (ARGV[8] = "1")
-- KEYS[7] the account's ended cases (hash: case id -> case JSON)
-- KEYS[8] the kind of each account's pending deadline (hash: account id -> kind)
-- KEYS[9] pending deadlines by kind (hash: kind -> count), for the metrics
-- KEYS[10] cases by kind and status (hash: "kind/status" -> count), for the metrics
-- ARGV[1] version the decision was made on ("" for a new account)
-- ARGV[2] version to store
-- ARGV[3] how the account's hash is written: "" not at all (the step changed nothing),
--         "=" the fields that changed, "!" replaced whole (deleted, then every field set)
-- ARGV[4] idempotency retention in seconds; "0" for a timer firing, whose effect is
--         idempotent through the account's own state
-- ARGV[5] the account's next deadline after the step: "" unchanged, "-" none, else unix
--         ms, followed by ":" and its timer kind (a bare unix ms, from an older
--         version, leaves the kind unknown)
-- ARGV[6] "1" when the step fires a claimed deadline: its claim is released
-- ARGV[7] account id (the member in both sorted sets)
-- ARGV[8] the digest of the fact the event announces (a consumption, a bill...), or ""
--         when it announces none
-- ARGV[9] the digest of the event's content, kept as its idempotency record: the same
--         id with another digest is not a repeat but a conflict ("1" on records
--         written before digests were kept matches any)
-- ARGV[10] k, the number of account fields to set
-- ARGV[11] the W3C traceparent the step's outbound events are published with, "" none
-- ARGV[12] its tracestate, "" none
-- ARGV[13] the step's case moves, space-separated "kind/previous>kind/status" ("kind/"
--          alone as the previous status of a case just opened), "" none
-- ARGV[14] n, the number of ended cases to keep
-- ARGV[15] d, the number of account fields to delete
-- ARGV[16 ...] n (case id, case JSON) pairs, then k (field, value) pairs of the account,
--          then d fields to delete from it, then outbound events as (id, subject, body)
--          triples
--
-- An outbox entry has the fields id, subject, body, and traceparent and tracestate
-- only when they are not empty: an entry without them (as every entry written before
-- they were kept) is published without a trace context.
local remember = ARGV[4] ~= '0'
local fact = ARGV[8] ~= ''
-- Both records in one call when the step has both: each call from a script costs.
local seen, counted = false, false
if remember and fact then
  local records = redis.call('MGET', KEYS[2], KEYS[6])
  seen, counted = records[1], records[2]
elseif remember then
  seen = redis.call('GET', KEYS[2])
elseif fact then
  counted = redis.call('GET', KEYS[6])
end
if seen then
  if seen ~= '1' and seen ~= ARGV[9] then
    return 'ID_CONFLICT'
  end
  return 'DUPLICATE'
end
if fact then
  if counted then
    if counted ~= ARGV[8] then
      -- The same fact id with other data: not a repeat, a contradiction.
      return 'FACT_CONFLICT'
    end
    -- The same fact under another event id: counted already. The event id is
    -- remembered so its redeliveries stop here at once.
    redis.call('SET', KEYS[2], ARGV[9], 'EX', ARGV[4])
    return 'DUPLICATE'
  end
end
local current = redis.call('HGET', KEYS[1], 'v') or ''
if current ~= ARGV[1] then
  return 'CONFLICT'
end
local closed, fields, deleted = tonumber(ARGV[14]), tonumber(ARGV[10]), tonumber(ARGV[15])
local first = 16 + 2 * closed
if ARGV[3] ~= '' then
  if ARGV[3] == '!' then
    redis.call('DEL', KEYS[1])
  end
  -- Deleted first: an entry that moved (a top-up whose time changed) is deleted under
  -- its old place and set under its new one, which may be the same field.
  if deleted > 0 then
    redis.call('HDEL', KEYS[1], unpack(ARGV, first + 2 * fields, first + 2 * fields + deleted - 1))
  end
  -- The version with the first fields; the rest in slices, so a large account does
  -- not overflow Lua's stack with one unpack.
  local last = first + 2 * fields - 1
  redis.call('HSET', KEYS[1], 'v', ARGV[2], unpack(ARGV, first, math.min(first + 399, last)))
  for i = first + 400, last, 400 do
    redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 399, last)))
  end
end
if remember then
  redis.call('SET', KEYS[2], ARGV[9], 'EX', ARGV[4])
end
if fact then
  redis.call('SET', KEYS[6], ARGV[8], 'EX', ARGV[4])
end
if ARGV[5] ~= '' then
  local at, kind = string.match(ARGV[5], '^(%d*):?(.*)$')
  if ARGV[5] == '-' then
    redis.call('ZREM', KEYS[4], ARGV[7])
    kind = ''
  else
    redis.call('ZADD', KEYS[4], at, ARGV[7])
  end
  local was = redis.call('HGET', KEYS[8], ARGV[7]) or ''
  if was ~= kind then
    if was ~= '' then
      redis.call('HINCRBY', KEYS[9], was, -1)
      redis.call('HDEL', KEYS[8], ARGV[7])
    end
    if kind ~= '' then
      redis.call('HINCRBY', KEYS[9], kind, 1)
      redis.call('HSET', KEYS[8], ARGV[7], kind)
    end
  end
end
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[5], ARGV[7])
end
for from, to in string.gmatch(ARGV[13], '(%S+)>(%S+)') do
  if string.sub(from, -1) ~= '/' then
    redis.call('HINCRBY', KEYS[10], from, -1)
  end
  redis.call('HINCRBY', KEYS[10], to, 1)
end
for i = 16, 15 + 2 * closed, 2 do
  redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
end
local traceparent, tracestate = ARGV[11], ARGV[12]
for i = first + 2 * fields + deleted, #ARGV, 3 do
  if traceparent == '' then
    redis.call('XADD', KEYS[3], '*', 'id', ARGV[i], 'subject', ARGV[i + 1], 'body', ARGV[i + 2])
  elseif tracestate == '' then
    redis.call('XADD', KEYS[3], '*', 'id', ARGV[i], 'subject', ARGV[i + 1], 'body', ARGV[i + 2],
      'traceparent', traceparent)
  else
    redis.call('XADD', KEYS[3], '*', 'id', ARGV[i], 'subject', ARGV[i + 1], 'body', ARGV[i + 2],
      'traceparent', traceparent, 'tracestate', tracestate)
  end
end
return 'APPLIED'
