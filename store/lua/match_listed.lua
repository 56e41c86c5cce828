-- A scan's cheap check (Store.listed_unchanged): does each resource's state record hold its
-- listing fingerprint, with nothing else to look at? KEYS[1]: sh:state, KEYS[2] (optional):
-- the scan's sweep in progress (a LIST), to which ARGV[1] is appended as it is (one entry per
-- page, tasks/scan_sweep.py). ARGV[1]: newline-joined rkeys, ARGV[2]: their newline-joined
-- fingerprints, ARGV[3]: now (unix seconds). Returns one character per rkey: "1" when the
-- fingerprint is one of the record's '|'-separated tokens, whole, and no stall needs a look,
-- else "0". A listing fingerprint starts with "l" (core/fingerprint.py), which no other field
-- of a record can: the match needs no field's position. A record that tracks stalls ends, after
-- the preview, with `|flag|entered_at|stall` (store/records.py), read by one match anchored
-- where the fingerprint ends: a stall needs a look when it is armed (`~<when>`) and due, or
-- when the record does not end so (written before stalls were tracked).
local rkeys, fps = {}, {}
for k in string.gmatch(ARGV[1], '[^\n]+') do rkeys[#rkeys + 1] = k end
for f in string.gmatch(ARGV[2], '[^\n]+') do fps[#fps + 1] = f end
local now = tonumber(ARGV[3])
local states = {}
for s = 1, #rkeys, 1000 do  -- Lua's unpack has a stack limit (~8,000): a page's HMGET in parts
  local part = redis.call('HMGET', KEYS[1], unpack(rkeys, s, math.min(s + 999, #rkeys)))
  for j = 1, #part do states[s + j - 1] = part[j] end
end
if KEYS[2] then redis.call('RPUSH', KEYS[2], ARGV[1]) end
local find, match, byte = string.find, string.match, string.byte
local out = {}
for i = 1, #rkeys do
  local v = states[i]
  local same = '0'
  if v then
    -- a whole token: found, and bounded by '|' or the record's ends (no string is built)
    local fp = fps[i]
    local at = find(v, fp, 1, true)
    while at do
      local stop = at + #fp
      if (at == 1 or byte(v, at - 1) == 124) and (stop > #v or byte(v, stop) == 124) then
        local stall, when = match(v, '^|[to]?|%d+|([~!%-])(%d*)$', stop)
        if stall == '~' then
          when = tonumber(when)
          if when and when > now then same = '1' end
        elseif stall and when == '' then
          same = '1'
        end
        break
      end
      at = find(v, fp, at + 1, true)
    end
  end
  out[i] = same
end
return table.concat(out)
