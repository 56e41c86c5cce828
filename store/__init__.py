"""The store: the only code that speaks Redis (keys, scripts, records, rates, stats)."""
