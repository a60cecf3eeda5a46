-- applyStep, at the end, is one atomic step: remember the event, save the account,
-- keep its next deadline, queue its outbound events. No money arithmetic happens here;
-- the state is decided in Go and passed whole. The keys and arguments below are
-- applyStep's; applyBatchLua (store.go) calls it for each step of a batch. A step's
-- arguments stay where the batch call's ARGV holds them: ARGV[k] below is ARGV[o + k]
-- in the code, o being the position of the step's count of arguments, and n that
-- count.
-- What is the same for every step of a batch (BATCH below) comes once, in the batch
-- call's first arguments, and applyStep takes it as its own arguments.
--
-- KEYS[1] account hash   KEYS[2] the account's idempotency records (hash)   KEYS[3] outbox stream
-- KEYS[4] pending deadlines: each account's earliest timer, any kind (sorted set, score = deadline in unix ms,
--         its fraction the timer's kind: see kindInScore)
-- KEYS[5] claimed deadlines (sorted set, score = claim lease expiry)
-- KEYS[6] the event's record in the older layout, a key of its own (only when BATCH layout = "1")
-- KEYS[7] the account's ended cases kept apart (hash: case id -> case), as versions
--         before kept them all: see keepEnded
-- KEYS[8] the kind of each account's pending deadline, as versions before kept it apart
--         (hash: account id -> kind); written while BATCH kindsApart
-- KEYS[9] pending deadlines by kind (hash: kind -> count), for the metrics
-- KEYS[10] cases by kind and status (hash: "kind/status" -> count), for the metrics
-- KEYS[11] the fact's record in the older layout (only when BATCH layout = "1"; KEYS[6]
--          stands in when the event announces no fact)
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
-- ARGV[14] c, the number of ended cases to keep
-- ARGV[15] d, the number of account fields to delete
-- ARGV[16] the event's field in KEYS[2]   ARGV[17] the fact's field there, "" none
-- ARGV[18 ...] c (case id, case) pairs, then k (field, value) pairs of the account,
--          then d fields to delete from it, then outbound events as (id, subject, body)
--          triples
-- BATCH now: unix seconds (a number), when the steps' records are written
-- BATCH layout: "1" while records of the older layout (a key per record) may exist:
--          they are read, and written too, so an instance of the older version still
--          finds what this one applied; "c" when records are written compact, "s"
--          short (see newRecord)
-- BATCH kindsApart: true while an instance of the version before may run: the kinds of
--          deadlines are kept in KEYS[8] too, which it reads
-- BATCH endedInAccount: true when ended cases may be kept in the account's hash: no
--          instance of a version that cannot read such an account may still run
--
-- An outbox entry has the fields id, subject, body, and traceparent and tracestate
-- only when they are not empty: an entry without them (as every entry written before
-- they were kept) is published without a trace context.

-- The library functions a step uses, as locals: redis.call or string.sub is two table
-- lookups by name each time, and a step makes dozens (2% of Redis's instructions for
-- a batch, counted with deploy/images/callgrind-redis.sh).
local call = redis.call
local match, find, sub, char, byte, format = string.match, string.find, string.sub, string.char, string.byte, string.format
local floor, min, max, ceil = math.floor, math.min, math.max, math.ceil

-- The helpers come first, outside the step: they are made once per call of the batch
-- script, not once per step (each Lua closure is an allocation, and a step made ten).
-- newRecord is what a record holds: its digest and the hour it was written.
--
-- Short (11 bytes): the digest's first 8 bytes (packed in Go from its first 16 hex
-- digits) and the hour in 3 bytes, big-endian (good until the year 3883). Written only
-- once no instance of a version that cannot read it may still run (BATCH layout "s").
-- Compact (15 bytes): the whole digest, 12 bytes, and the hour; what the version before
-- writes (BATCH layout "c"), and this one for a day after its upgrade. Text: the digest,
-- ':' and the hour in digits, 31 bytes for a digest in hex; "1" and "-" (no digest
-- known) are always text. A text record is never 11 or 15 bytes long: that would take
-- a digest of 4 or 8 characters, which the store never sends.
--
-- The hour's 3 bytes are made once per hour seen: a batch's steps share their hour.
local packedHour, packedHourOf = '', -1
local function newRecord(digest, layout, hour)
  if (layout == 's' and #digest == 8) or (layout == 'c' and #digest == 12) then
    if hour ~= packedHourOf then
      packedHour, packedHourOf = char(floor(hour / 65536) % 256, floor(hour / 256) % 256, hour % 256), hour
    end
    return digest .. packedHour
  end
  return digest .. ':' .. hour
end
-- parseRecord is a record's digest, and the hour it was written (nil for the older
-- layout's, a key per record holding its digest alone). Not tonumber(string.match(...)):
-- gopher-lua (the dev server's) passes no value at all when nothing matches, and
-- tonumber refuses that.
local function parseRecord(record)
  if #record == 11 or #record == 15 then
    local a, b, c = byte(record, -3, -1)
    return sub(record, 1, -4), a * 65536 + b * 256 + c
  end
  local digest, at = match(record, '^(.*):(%d+)$')
  if digest then
    return digest, tonumber(at)
  end
  return record, nil
end
-- packed is a digest as bytes: 24 hex digits packed into 12, any other digest as it is.
local function packed(digest)
  if #digest ~= 24 or not match(digest, '^%x+$') then
    return digest
  end
  return (string.gsub(digest, '%x%x', function(h) return char(tonumber(h, 16)) end))
end
-- sameDigest compares a record's digest with the step's, either of them packed or in
-- hex: a record written as text before records were packed, or by an instance whose
-- clock has not reached that time yet, still matches. A short record keeps a digest's
-- first 8 bytes, so against it only those count.
local function sameDigest(recorded, given)
  recorded, given = packed(recorded), packed(given)
  if #recorded == 8 and #given == 12 then
    given = sub(given, 1, 8)
  elseif #given == 8 and #recorded == 12 then
    recorded = sub(recorded, 1, 8)
  end
  return recorded == given
end
-- number is tonumber, remembered for the call: a batch's steps bring the same few
-- strings again and again (their counts of arguments and fields, the retention, when
-- their records were last trimmed), and tonumber converts with strtod, twice (Lua
-- 5.1's tonumber asks whether it is a number, then converts): 6.5% of Redis's
-- instructions for a batch, counted with deploy/images/callgrind-redis.sh, against a
-- table lookup.
local numbers = {}
local function number(s)
  local v = numbers[s]
  if v == nil then
    v = tonumber(s)
    numbers[s] = v
  end
  return v
end
-- timerKinds are the kinds of deadline (state.TimerKind) by their code: the sixteenths
-- of a millisecond a deadline's score carries after its unix ms, so the kind counted
-- for an account's deadline is kept in the sorted set's own entry rather than in a
-- hash beside it. A kind not listed has code 0, unknown, and is not counted. New kinds
-- go at the end (TestTheStepScriptKnowsEveryTimerKindByItsLastingCode).
local timerKinds = {'reserve_unfreeze', 'case_overdue', 'settlement_end'}
-- kindFraction is the fraction of a millisecond that says kind: ".0625" for code 1.
local function kindFraction(kind)
  for code, k in ipairs(timerKinds) do
    if k == kind then
      return format('.%04d', code * 625)
    end
  end
  return ''
end
-- kindInScore is the kind a score carries ('' for none: no score, or a whole number
-- of ms, as versions before wrote). Sixteenths are exact in a double, and ms up to the
-- year 2286 leave them room among its 17 significant digits.
local function kindInScore(score)
  if not score then
    return ''
  end
  return timerKinds[floor(tonumber(score) % 1 * 16 + 0.5)] or ''
end
-- keep writes the step's records, and trims the old ones a page at a time.
--
-- Redis cannot expire one field of a hash (before 7.4), so records older than the
-- retention (and the hour they were written in, and one more for clocks a little
-- apart) are deleted by a pass over the hash: a record is kept at least the
-- retention. A pass begins once a fifth of the retention has passed since the last one
-- began, and goes on one HSCAN page per step that writes records, so no step walks a
-- large hash whole (a small one, a listpack, is one page). ~ holds when the pass
-- began, and while it runs ":" and the cursor to go on from.
--
-- The hash expires a retention, a fifth and an hour after its latest pass began:
-- every write comes less than a fifth after that (or begins a pass itself), so the
-- hash outlives its latest record by the retention, with an hour for an instance
-- whose clock is ahead. An account that goes quiet leaves nothing behind.
local function keep(KEYS, ARGV, o, now, layout, trimmedAt, withEvent, withFact)
  local legacy = layout == '1'
  local retention = number(ARGV[o + 4])
  -- The hour a record is written in, since the Unix epoch: what the trim reads.
  local hour = floor(now / 3600)
  local every = max(1, floor(retention / 5))
  local hours = ceil(retention / 3600) + 1
  local began, cursor = nil, ''
  if trimmedAt then
    -- "<began>" or "<began>:<cursor>", found without a pattern: most steps come
    -- between passes, where it is the time alone.
    local colon = find(trimmedAt, ':', 1, true)
    if colon then
      began, cursor = number(sub(trimmedAt, 1, colon - 1)), sub(trimmedAt, colon + 1)
    else
      began = number(trimmedAt)
    end
  end
  local newPass = not began or now - began >= every
  if newPass then
    began, cursor = now, '0'
  end
  local pass = began
  if cursor ~= '' then
    local page = call('HSCAN', KEYS[2], cursor, 'COUNT', 100)
    local fields, expired = page[2], {}
    for i = 1, #fields, 2 do
      local _, at = parseRecord(fields[i + 1])
      if fields[i] ~= '~' and at and hour - at > hours then
        expired[#expired + 1] = fields[i]
      end
    end
    for i = 1, #expired, 400 do
      call('HDEL', KEYS[2], unpack(expired, i, min(i + 399, #expired)))
    end
    if page[1] ~= '0' then
      pass = began .. ':' .. page[1]
    end
  end
  -- One HSET, its arguments named rather than gathered in a table: between passes
  -- (no cursor), a step writes the event's record, the fact's, or both.
  local eventRecord = withEvent and newRecord(ARGV[o + 9], layout, hour)
  local factRecord = withFact and newRecord(ARGV[o + 8], layout, hour)
  if cursor == '' then
    if withEvent and withFact then
      call('HSET', KEYS[2], ARGV[o + 16], eventRecord, ARGV[o + 17], factRecord)
    elseif withEvent then
      call('HSET', KEYS[2], ARGV[o + 16], eventRecord)
    else
      call('HSET', KEYS[2], ARGV[o + 17], factRecord)
    end
  else
    local record, n = {}, 0
    if withEvent then
      record[n + 1], record[n + 2], n = ARGV[o + 16], eventRecord, n + 2
    end
    if withFact then
      record[n + 1], record[n + 2], n = ARGV[o + 17], factRecord, n + 2
    end
    record[n + 1], record[n + 2] = '~', pass
    call('HSET', KEYS[2], unpack(record))
  end
  if newPass then
    -- After the HSET: the hash of a new account exists only now.
    call('EXPIRE', KEYS[2], retention + every + 3600)
  end
  if legacy and withEvent then
    call('SET', KEYS[6], ARGV[o + 9], 'EX', retention)
  end
  if legacy and withFact then
    call('SET', KEYS[11], ARGV[o + 8], 'EX', retention)
  end
end
-- keepEnded keeps an ended case: in the account's own hash, as "ce:<case id>", where
-- it costs no key of its own (a keyspace entry, its name and object: about 90 bytes an
-- account), or apart in KEYS[7]. Apart while the version before may still run, and
-- when the case would make the account's hash dear: a value over hash-max-listpack-value
-- (512 bytes as deploy/compose and the tests run Redis: at Redis's default of 64 every
-- account's hash is a hash table anyway) would turn the whole hash into one, and
-- every step searches the listpack end to end, so an account with many fields keeps
-- further cases apart. The case is deleted from the other place, where an earlier step
-- may have kept it before it changed.
local endedMaxBytes, accountMaxFields = 400, 32
local function keepEnded(KEYS, endedInAccount, id, body)
  if endedInAccount and #body <= endedMaxBytes and call('HLEN', KEYS[1]) < accountMaxFields then
    call('HSET', KEYS[1], 'ce:' .. id, body)
    call('HDEL', KEYS[7], id)
  else
    call('HSET', KEYS[7], id, body)
    call('HDEL', KEYS[1], 'ce:' .. id)
  end
end
-- applyStep is one step: its arguments are ARGV[o + 1] to ARGV[o + n] (see the header).
local function applyStep(KEYS, ARGV, o, n, now, layout, kindsApart, endedInAccount)
  local remember = ARGV[o + 4] ~= '0'
  local fact = ARGV[o + 8] ~= ''
  local legacy = layout == '1'
  local eventField, factField = ARGV[o + 16], ARGV[o + 17]
  -- Both records, and when the account's records were last trimmed, in one call: each
  -- call from a script costs.
  local seen, counted, trimmedAt = false, false, false
  if remember or fact then
    local records = call('HMGET', KEYS[2], '~', eventField, factField)
    trimmedAt = records[1]
    seen = remember and records[2]
    counted = fact and records[3]
    if legacy and ((remember and not seen) or (fact and not counted)) then
      local old = call('MGET', KEYS[6], KEYS[11])
      seen = seen or (remember and old[1])
      counted = counted or (fact and old[2])
    end
  end
  if seen then
    local digest = parseRecord(seen)
    if digest ~= '1' and not sameDigest(digest, ARGV[o + 9]) then
      return 'ID_CONFLICT'
    end
    return 'DUPLICATE'
  end
  if fact then
    if counted then
      if not sameDigest(parseRecord(counted), ARGV[o + 8]) then
        -- The same fact id with other data: not a repeat, a contradiction.
        return 'FACT_CONFLICT'
      end
      -- The same fact under another event id: counted already. The event id is
      -- remembered so its redeliveries stop here at once.
      keep(KEYS, ARGV, o, now, layout, trimmedAt, true, false)
      return 'DUPLICATE'
    end
  end
  local current = call('HGET', KEYS[1], 'v') or ''
  if current ~= ARGV[o + 1] then
    return 'CONFLICT'
  end
  local closed, fields, deleted = number(ARGV[o + 14]), number(ARGV[o + 10]), number(ARGV[o + 15])
  local first = 18 + 2 * closed
  if ARGV[o + 3] ~= '' then
    if ARGV[o + 3] == '!' then
      -- Every field but the ended cases kept in the hash, which are not part of the
      -- document the step was decided on.
      local gone = {}
      for _, field in ipairs(call('HKEYS', KEYS[1])) do
        if sub(field, 1, 3) ~= 'ce:' then
          gone[#gone + 1] = field
        end
      end
      for i = 1, #gone, 400 do
        call('HDEL', KEYS[1], unpack(gone, i, min(i + 399, #gone)))
      end
    end
    -- Deleted first: an entry that moved (a top-up whose time changed) is deleted under
    -- its old place and set under its new one, which may be the same field.
    if deleted > 0 then
      call('HDEL', KEYS[1], unpack(ARGV, o + first + 2 * fields, o + first + 2 * fields + deleted - 1))
    end
    -- The version with the first fields; the rest in slices, so a large account does
    -- not overflow Lua's stack with one unpack.
    local last = first + 2 * fields - 1
    call('HSET', KEYS[1], 'v', ARGV[o + 2], unpack(ARGV, o + first, o + min(first + 399, last)))
    for i = first + 400, last, 400 do
      call('HSET', KEYS[1], unpack(ARGV, o + i, o + min(i + 399, last)))
    end
  end
  if remember or fact then
    keep(KEYS, ARGV, o, now, layout, trimmedAt, remember, fact)
  end
  if ARGV[o + 5] ~= '' then
    local at, kind = match(ARGV[o + 5], '^(%d*):?(.*)$')
    -- The kind counted for the account's deadline until now: in the score of the
    -- pending one, or of its claim while an instance holds it, or (set or claimed by a
    -- version before, whose scores carry none) in KEYS[8]. An account with neither has
    -- nothing counted.
    local score, claimScore = call('ZSCORE', KEYS[4], ARGV[o + 7]), false
    if not score then
      claimScore = call('ZSCORE', KEYS[5], ARGV[o + 7])
      score = claimScore
    end
    local was = kindInScore(score)
    if score and was == '' then
      was = call('HGET', KEYS[8], ARGV[o + 7]) or ''
    end
    if claimScore and was ~= '' and ARGV[o + 6] ~= '1' then
      -- A claim's kind is uncounted once: this step, which moves or removes the
      -- deadline while an instance holds it, takes it, and the claim keeps its lease
      -- without it, so the step that fires the claim finds nothing more to uncount.
      call('ZADD', KEYS[5], 'XX', format('%.0f', floor(tonumber(claimScore))), ARGV[o + 7])
    end
    if ARGV[o + 5] == '-' then
      call('ZREM', KEYS[4], ARGV[o + 7])
      kind = ''
    else
      call('ZADD', KEYS[4], at .. kindFraction(kind), ARGV[o + 7])
    end
    if was ~= kind then
      if was ~= '' then
        call('HINCRBY', KEYS[9], was, -1)
      end
      if kind ~= '' then
        call('HINCRBY', KEYS[9], kind, 1)
      end
    end
    if kindsApart and kind ~= '' then
      call('HSET', KEYS[8], ARGV[o + 7], kind)
    else
      call('HDEL', KEYS[8], ARGV[o + 7])
    end
  end
  if ARGV[o + 6] == '1' then
    call('ZREM', KEYS[5], ARGV[o + 7])
  end
  -- Most steps move no case: no iterator is made for them.
  if ARGV[o + 13] ~= '' then
    for from, to in string.gmatch(ARGV[o + 13], '(%S+)>(%S+)') do
      if sub(from, -1) ~= '/' then
        call('HINCRBY', KEYS[10], from, -1)
      end
      call('HINCRBY', KEYS[10], to, 1)
    end
  end
  for i = 18, 17 + 2 * closed, 2 do
    keepEnded(KEYS, endedInAccount, ARGV[o + i], ARGV[o + i + 1])
  end
  local traceparent, tracestate = ARGV[o + 11], ARGV[o + 12]
  -- The reply names each outbound event's position in the outbox, so the process that
  -- saved them can hand them to its relay, which then removes them without reading them.
  local reply = 'APPLIED'
  for i = first + 2 * fields + deleted, n, 3 do
    local position
    if traceparent == '' then
      position = call('XADD', KEYS[3], '*', 'id', ARGV[o + i], 'subject', ARGV[o + i + 1], 'body', ARGV[o + i + 2])
    elseif tracestate == '' then
      position = call('XADD', KEYS[3], '*', 'id', ARGV[o + i], 'subject', ARGV[o + i + 1], 'body', ARGV[o + i + 2],
        'traceparent', traceparent)
    else
      position = call('XADD', KEYS[3], '*', 'id', ARGV[o + i], 'subject', ARGV[o + i + 1], 'body', ARGV[o + i + 2],
        'traceparent', traceparent, 'tracestate', tracestate)
    end
    reply = reply .. ' ' .. position
  end
  return reply
end
