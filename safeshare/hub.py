"""The hub worker: runs SharingCase workflows (and, as they land, the hub activities)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.ids import HUB_TASK_QUEUE
from workflows.sharing_case import SharingCase


def build_hub_worker(client: Client, task_queue: str = HUB_TASK_QUEUE) -> Worker:
    """A worker for the hub's task queue, given its Temporal client."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SharingCase],
        activities=[],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
