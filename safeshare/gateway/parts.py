"""What the gateway's handlers are built from: one set of parts, given by the servicer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from temporalio.client import Client

from partnership.registry import Registry
from safeshare.cases.reader import CaseViews
from safeshare.gateway.signing import GatewaySigner


@dataclass(frozen=True)
class Parts:
    """The Temporal client, the case reader, the registry, the signing key, the hub's queue."""

    client: Client
    views: CaseViews
    registry: Callable[[], Registry]
    """The partnership registry now (a file source is re-read when it changes)."""
    signer: GatewaySigner
    """Seals every command and case input forwarded to a workflow."""
    hub_task_queue: str
    """The task queue of the hub worker, where the workflows the gateway starts run."""
