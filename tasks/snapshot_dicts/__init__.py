"""The preset dictionaries of stored snapshots (`tasks.snapshot_codec`), one file per id.

A file never changes once statehook has written snapshots with it: a better dictionary
gets a new id and a new file. `python -m tasks.snapshot_dicts.build` made them.
"""
