"""The hub worker: SharingCase and HolderExchange workflows, and the hub's own activities
(the protocol gate and operator alerts)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.notifications import OperatorNotifications
from activities.protocol_gate import ProtocolGate
from activities.registry import DEFAULT_REGISTRY_PATH
from activities.review import ProtocolReviewActivities
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.holder_exchange import HolderExchange
from workflows.ids import HUB_TASK_QUEUE
from workflows.protocol_review import ProtocolReview
from workflows.sandbox import workflow_runner
from workflows.sharing_case import SharingCase


def build_hub_worker(
    client: Client,
    registry_path: Path = DEFAULT_REGISTRY_PATH,
    task_queue: str = HUB_TASK_QUEUE,
) -> Worker:
    """A worker for the hub's task queue, given its Temporal client and the registry file."""
    review = ProtocolReviewActivities(client, registry_path)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SharingCase, HolderExchange, ConsentWithdrawalNotice, ProtocolReview],
        activities=[
            ProtocolGate(registry_path).check,
            OperatorNotifications().notify,
            review.gather_figures,
            review.write_report,
        ],
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
