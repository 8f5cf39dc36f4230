"""Running many processes: leader lease, worker heartbeats, the singletons."""
