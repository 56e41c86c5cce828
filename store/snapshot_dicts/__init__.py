"""The preset dictionaries of stored snapshots (`store.snapshot_codec`), one file per id.

A file never changes once statehook has written snapshots with it: a better dictionary
gets a new id and a new file. `python scripts/build_snapshot_dicts.py` made them.
"""
