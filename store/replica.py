"""The name a process writes under: it holds leases (`sync.cluster`) and claims outbox actions
(`loyalty.outbox`) as this replica."""

from __future__ import annotations

import os
import socket

__all__ = ["default_replica_name"]


def default_replica_name() -> str:
    """Host name and process id: unique per process; in a container the pid is 1, so the name
    survives a restart of the same container and it takes its own leases back at once."""
    return f"{socket.gethostname()}-{os.getpid()}"
