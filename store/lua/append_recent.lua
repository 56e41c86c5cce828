-- Appends one dispatcher read's routing facts to the 24 h stream of recent events
-- (store/recent.py, RecentEvents.append). KEYS: the stream. ARGV: keep ms, max entries, the
-- facts (a JSON array). Ids are the server's (a worker's clock does not matter); what is
-- older than `keep` is trimmed by MINID.
local now = redis.call('TIME')
local min_id = string.format('%d-0', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[1]))
redis.call('XADD', KEYS[1], 'MINID', '~', min_id, '*', 'f', ARGV[3])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
return 1
