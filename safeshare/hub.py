"""The hub worker: SharingCase and HolderExchange workflows, and the hub's own activities
(the protocol gate and operator alerts).

Under Worker Versioning (a deployment name and a build id, ``HubDeployment``) every hub
workflow is PINNED: it runs to its end on the build it started on. The choice, per workflow:

- ``SharingCase`` and ``HolderExchange``: open for weeks, with deadlines and escalation timers;
  pinning keeps one case on one build, so a new build never replays an open case with code it
  was not written with (``workflow.patched`` stays the guard for fixes within one build). An
  exchange is a child on the same task queue, so it inherits its case's build.
- ``ConsentWithdrawalNotice``: short-lived retries of one notice; pinned like its case.
- ``ProtocolReview``: one monthly run of minutes; pinned, as there is nothing to gain from
  moving a run that ends soon.

A new build serves new cases once it is made current (``safeshare ops deploy set-current``);
the old build keeps polling until its cases have closed (drained), then is retired. To move an
open case to a fixed build anyway: ``temporal workflow update-options`` with a versioning
override (docs/deployment.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities.approvers import ApproverLookup
from activities.notifications import OperatorNotifications
from activities.protocol_gate import ProtocolGate
from activities.review import ProtocolReviewActivities
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.access.review import access_source
from safeshare.alerts import OperatorAlerts
from safeshare.archive.reader import review_source
from safeshare.archive.store import ArchiveStore
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.ids import HUB_TASK_QUEUE
from workflows.protocol_review import ProtocolReview
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase

HUB_DEPLOYMENT = "safeshare-hub"
"""The default worker deployment name of the hub workers."""

HUB_VERSIONING = {
    SharingCase: VersioningBehavior.PINNED,
    HolderExchange: VersioningBehavior.PINNED,
    ConsentWithdrawalNotice: VersioningBehavior.PINNED,
    DisclosureCase: VersioningBehavior.PINNED,
    ProtocolReview: VersioningBehavior.PINNED,
}
"""Each hub workflow's versioning behaviour (the module docstring says why)."""


@dataclass(frozen=True)
class HubDeployment:
    """The worker deployment and build this hub worker belongs to."""

    build_id: str
    name: str = HUB_DEPLOYMENT

    @property
    def version(self) -> WorkerDeploymentVersion:
        """The deployment version, as Temporal names it."""
        return WorkerDeploymentVersion(deployment_name=self.name, build_id=self.build_id)


def build_hub_worker(
    client: Client,
    registry_path: Path = DEFAULT_REGISTRY_PATH,
    task_queue: str = HUB_TASK_QUEUE,
    deployment: HubDeployment | None = None,
    alerts: OperatorAlerts | None = None,
    access_log: Path | None = None,
    *,
    gateway_key_path: Path,
    archive: ArchiveStore | None = None,
) -> Worker:
    """A worker for the hub's task queue, given its Temporal client and the registry file;
    operator alerts go on ``alerts`` (a board of its own when not given).

    With ``access_log``, the protocol review counts the access history's reads and refusals;
    with ``archive``, it counts the cases Temporal has deleted from the case archive.
    With ``deployment``, the worker runs under Worker Versioning as that build (every workflow
    pinned, ``HUB_VERSIONING``); without, it is an unversioned worker.

    ``gateway_key_path``: the gateway's public key file the protocol gate checks seals against
    (required: there is no hub that checks none).
    """
    access = access_source(access_log) if access_log is not None else None
    archived = review_source(archive) if archive is not None else None
    review = ProtocolReviewActivities(client, registry_path, access, archived)
    gate = ProtocolGate(registry_path, gateway_key_path)
    behaviours = set(HUB_VERSIONING.values())
    assert len(behaviours) == 1, "one default behaviour while every hub workflow shares it"
    versioning = (
        WorkerDeploymentConfig(
            version=deployment.version,
            use_worker_versioning=True,
            default_versioning_behavior=behaviours.pop(),
        )
        if deployment is not None
        else None
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(HUB_VERSIONING),
        activities=[
            gate.check,
            gate.check_disclosure,
            gate.check_notice,
            ApproverLookup(registry_path).approvers_of,
            OperatorNotifications(alerts or OperatorAlerts(client)).notify,
            review.gather_figures,
            review.write_report,
        ],
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=10),
        deployment_config=versioning,
    )
