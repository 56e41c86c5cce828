"""A local stand-in for the providers: same paths, auth and payload shapes as the seeds,
with scripted state progressions and fault injection, and Slack and SMTP stand-ins. Used by
`statehook simulate` and the demo, tests, benchmarks."""
