"""Syncing: the stream runner, its windows, and the leases that share accounts between replicas."""
