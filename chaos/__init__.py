"""`make chaos` (`python -m chaos`): statehook end to end against the simulator while its
workers are killed and its Redis is killed, stopped, hung, failed over and flushed; every
change the harness made is scored against what the receivers got (chaos/score.py)."""
