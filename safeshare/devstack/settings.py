"""What a dev stack is asked to run: the loopback ports it listens on and how many processes
of each part it starts."""

from __future__ import annotations

from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True)
class DevPorts:
    """The loopback ports the dev stack listens on."""

    temporal: int = 7233
    ui: int = 8233
    gateway: int = 50051
    first_agency: int = 50061
    codec: int = 8081
    prometheus: int = 9090
    """Prometheus's own web UI and API, with ``--prometheus``."""
    metrics: int = 9460
    """Prometheus metrics: hub here, gateway +1, adapter i +10+i, sandbox agency i +30+i;
    0: off. Clear of Prometheus's own 9090 and node_exporter's 9100."""


@dataclass(frozen=True)
class Replicas:
    """How many processes of each part the dev stack runs (``safeshare dev --replicas N``)."""

    hub: int = 1
    gateway: int = 1
    """Gateways listen on consecutive ports from the gateway port."""
    adapter: int = 1
    """Adapter workers per agency."""
    hub_build_id: str | None = None
    """Run the hubs under Worker Versioning as this build, made current at start."""


def replica_name(name: str, replica: int) -> str:
    """``hub``, ``hub-2``, ``hub-3``...: the first replica keeps the plain name."""
    return name if replica == 1 else f"{name}-{replica}"
