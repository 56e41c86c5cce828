"""A local stand-in for the providers: same paths, auth and payload shapes as the seeds,
with scripted state progressions and fault injection. Used by the demo, tests, benchmarks."""
