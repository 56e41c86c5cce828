-- A resource's record (store/record_frame.py spells it): its packed snapshot, and its timeline
-- newest first, in one string at the resource's snapshot key. Included by every script that
-- writes a timeline (store/scripts.py), so that the record has one writer.
-- record_write(key, old_list, snapshot, entries, keep): `snapshot` replaces the stored one
-- (false keeps it); `entries` (newest first) go at the head of the timeline, kept to `keep`
-- entries (0: no timeline). A record in the plain form (a snapshot alone) may have an older
-- timeline in `old_list`, written before the timeline moved into the record: the first write
-- of an entry moves it in and deletes the list.
local function record_write(key, old_list, snapshot, entries, keep)
  local raw = redis.call('GET', key)
  local framed = raw and string.byte(raw, 1) == 0
  if not framed and #entries == 0 and snapshot then  -- the plain form stays plain
    redis.call('SET', key, snapshot)
    return
  end
  local old_snap, tail = '', ''
  if framed then
    local n = struct.unpack('>I4', raw, 2)
    old_snap = string.sub(raw, 6, 5 + n)
    tail = string.sub(raw, 6 + n)
  else
    if raw then old_snap = raw end
    if keep > 0 then
      local moved = redis.call('LRANGE', old_list, 0, keep - 1)
      for i, e in ipairs(moved) do moved[i] = struct.pack('>I4', #e) .. e end
      tail = table.concat(moved)
    end
    redis.call('DEL', old_list)
  end
  local parts = {}
  for i = 1, math.min(#entries, keep) do parts[i] = struct.pack('>I4', #entries[i]) .. entries[i] end
  local room, pos = keep - #parts, 1
  while room > 0 and pos <= #tail do
    pos = pos + 4 + struct.unpack('>I4', tail, pos)
    room = room - 1
  end
  parts[#parts + 1] = string.sub(tail, 1, pos - 1)
  local timeline = table.concat(parts)
  local snap = snapshot or old_snap
  if timeline ~= '' then
    redis.call('SET', key, '\0' .. struct.pack('>I4', #snap) .. snap .. timeline)
  elseif snap ~= '' then
    redis.call('SET', key, snap)
  else
    redis.call('DEL', key)
  end
end
