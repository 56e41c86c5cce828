-- A scan's cheap check (Store.listed_unchanged): does each resource's state record hold its
-- listing fingerprint, with nothing else to look at? KEYS[1]: sh:state. ARGV[1]: newline-joined
-- rkeys, ARGV[2]: their newline-joined fingerprints, ARGV[3]: now (unix seconds). Returns one
-- character per rkey: "1" when the fingerprint is one of the record's '|'-separated tokens,
-- whole, and no stall needs a look, else "0". A listing fingerprint starts with "l"
-- (core/fingerprint.py), which no other field of a record can: the match needs no field's
-- position. A stall needs a look when its armed token `|~<when>` is due, or when the record
-- tracks no stall yet (it has neither `|~`, `|!` nor `|-`: written before stalls were
-- tracked); no other field holds those characters (store/records.py).
local rkeys, fps = {}, {}
for k in string.gmatch(ARGV[1], '[^\n]+') do rkeys[#rkeys + 1] = k end
for f in string.gmatch(ARGV[2], '[^\n]+') do fps[#fps + 1] = f end
local now = tonumber(ARGV[3])
local states = redis.call('HMGET', KEYS[1], unpack(rkeys))
local out = {}
for i = 1, #rkeys do
  local v = states[i]
  local same = '0'
  if v then
    -- a whole token: found, and bounded by '|' or the record's ends (no string is built)
    local fp = fps[i]
    local at = string.find(v, fp, 1, true)
    while at do
      local stop = at + #fp
      if (at == 1 or string.byte(v, at - 1) == 124) and (stop > #v or string.byte(v, stop) == 124) then
        same = '1'
        break
      end
      at = string.find(v, fp, at + 1, true)
    end
    if same == '1' then
      local armed = string.find(v, '|~', 1, true)
      if armed then
        local when = tonumber(string.sub(v, armed + 2))
        if when == nil or when <= now then same = '0' end
      elseif not (string.find(v, '|!', 1, true) or string.find(v, '|-', 1, true)) then
        same = '0'
      end
    end
  end
  out[i] = same
end
return table.concat(out)
