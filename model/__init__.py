"""The domain model: plain values every layer shares. It imports nothing of ours."""
