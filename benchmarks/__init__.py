"""`make bench`: load generators and scenarios that measure statehook against this machine's limits."""
