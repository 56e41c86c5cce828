"""What providers and notifiers share to speak HTTP (and nothing of either family)."""
