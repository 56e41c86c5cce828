-- One entry at the head of a resource's timeline (store/timeline.py, TimelineWriter), kept to
-- its length as the commit script keeps it.
-- KEYS: the resource's record, its old timeline list (_record.lua). ARGV: the entry, the length.
--#include _record
record_write(KEYS[1], KEYS[2], false, {ARGV[1]}, tonumber(ARGV[2]))
return 1
