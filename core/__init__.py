"""The pure core over the model: diff, fingerprints, event building, schedule, backoff,
routing and the poll decision. No I/O."""
