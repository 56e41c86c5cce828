-- A resource's record (store/record_frame.py spells it): its packed snapshot, and its timeline
-- newest first, in one string at the resource's snapshot key. Included by every script that
-- writes a timeline (store/scripts.py), so that the record has one writer.
-- record_write(key, old_list, snapshot, entries, keep): `snapshot` replaces the stored one
-- (false keeps it); `entries` (newest first) go at the head of the timeline, kept to `keep`
-- entries (0: no timeline). A record in the plain form (a snapshot alone) may have an older
-- timeline in `old_list`, written before the timeline moved into the record: the first write
-- of an entry moves it in and deletes the list. What cannot be read as a record (a frame cut
-- short, a key of another type) is written over, never an error: a stored value must not
-- fail the commit of a poll.
local function record_read(key)
  local raw = redis.pcall('GET', key)
  if type(raw) == 'table' then return false, false end  -- WRONGTYPE: written over
  if raw and string.byte(raw, 1) == 0 then
    if #raw < 5 then return '', false end  -- cut short: read as no record
    local n = struct.unpack('>I4', raw, 2)
    if 5 + n > #raw then return '', false end
    return string.sub(raw, 6, 5 + n), string.sub(raw, 6 + n)
  end
  return raw, false
end

local function record_write(key, old_list, snapshot, entries, keep)
  local old_snap, tail = record_read(key)
  if not tail and #entries == 0 and snapshot then  -- the plain form stays plain
    redis.call('SET', key, snapshot)
    return
  end
  if not tail then
    tail = ''
    if keep > 0 then
      local moved = redis.pcall('LRANGE', old_list, 0, keep - 1)
      if moved.err then moved = {} end
      for i, e in ipairs(moved) do moved[i] = struct.pack('>I4', #e) .. e end
      tail = table.concat(moved)
    end
    redis.call('DEL', old_list)
  end
  local parts = {}
  for i = 1, math.min(#entries, keep) do parts[i] = struct.pack('>I4', #entries[i]) .. entries[i] end
  local room, pos = keep - #parts, 1
  while room > 0 and pos + 4 <= #tail + 1 do
    local next_pos = pos + 4 + struct.unpack('>I4', tail, pos)
    if next_pos > #tail + 1 then break end  -- an entry cut short ends the timeline
    pos, room = next_pos, room - 1
  end
  parts[#parts + 1] = string.sub(tail, 1, pos - 1)
  local timeline = table.concat(parts)
  local snap = snapshot or old_snap or ''
  if timeline ~= '' then
    redis.call('SET', key, '\0' .. struct.pack('>I4', #snap) .. snap .. timeline)
  elseif snap ~= '' then
    redis.call('SET', key, snap)
  else
    redis.call('DEL', key)
  end
end
