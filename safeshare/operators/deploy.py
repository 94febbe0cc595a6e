"""``safeshare ops deploy``: safe deploys of the hub under Temporal Worker Versioning.

A hub build runs with ``safeshare hub --build-id B`` (deployment ``safeshare-hub``). Its cases
are pinned to it (``safeshare.hub``). The procedure (docs/deployment.md):

    safeshare ops deploy status                  # builds, which is current, open cases on each
    safeshare ops deploy set-current --build-id B  # new cases start on B; A keeps its own
    safeshare ops deploy retire --build-id A     # once A is drained and its workers stopped

The same can be done with ``temporal worker deployment describe|set-current-version|
delete-version``; these commands add the open-case counts and refuse to retire a build that
still has open cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionPb
from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DeleteWorkerDeploymentVersionRequest,
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from safeshare.hub import HUB_DEPLOYMENT
from safeshare.operators.options import (
    OperatorError,
    run,
    temporal_settings,
)
from safeshare.temporal import connect_temporal
from safeshare.temporal_options import NO_FLAGS, TemporalFlags, temporal_options

ops_app = typer.Typer(
    name="ops",
    help="Operators' platform tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
deploy_app = typer.Typer(
    name="deploy",
    help="Hub deploys under Worker Versioning: status, set-current, retire.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ops_app.add_typer(deploy_app, name="deploy")
console = Console(highlight=False)

Deployment = Annotated[
    str, typer.Option(envvar="SAFESHARE_HUB_DEPLOYMENT", help="The hub's worker deployment.")
]
BuildId = Annotated[str, typer.Option(help="The build id.")]


@dataclass(frozen=True)
class BuildStatus:
    """One build of a deployment as Temporal sees it, with its open cases."""

    build_id: str
    status: str
    """CURRENT, RAMPING, DRAINING, DRAINED, INACTIVE (Temporal's version status)."""
    drainage: str
    open_workflows: int
    """Running workflows pinned to this build."""


def _name(enum_name: str, prefix: str) -> str:
    return enum_name.removeprefix(prefix) or "UNSPECIFIED"


async def deployment_status(client: Client, deployment: str) -> list[BuildStatus]:
    """Every build of ``deployment``, oldest first.

    Raises:
        OperatorError: no such deployment (no versioned hub has polled yet).
    """
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise OperatorError(
                f"no worker deployment {deployment!r}: no hub has run with --build-id yet"
            ) from None
        raise
    builds = []
    summaries = sorted(
        described.worker_deployment_info.version_summaries, key=lambda s: s.create_time.ToDatetime()
    )
    for summary in summaries:
        build_id = summary.deployment_version.build_id
        query = (
            f"TemporalWorkerDeploymentVersion = '{deployment}:{build_id}' "
            "AND ExecutionStatus = 'Running'"
        )
        open_count = (await client.count_workflows(query)).count
        builds.append(
            BuildStatus(
                build_id=build_id,
                status=_name(
                    WorkerDeploymentVersionStatus.Name(summary.status),
                    "WORKER_DEPLOYMENT_VERSION_STATUS_",
                ),
                drainage=_name(
                    VersionDrainageStatus.Name(summary.drainage_info.status),
                    "VERSION_DRAINAGE_STATUS_",
                )
                if summary.HasField("drainage_info")
                else "-",
                open_workflows=open_count,
            )
        )
    return builds


async def set_current(client: Client, deployment: str, build_id: str) -> None:
    """Make ``build_id`` the build new cases start on.

    Raises:
        OperatorError: the build has not polled yet (start its hub workers first).
    """
    try:
        await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace,
                deployment_name=deployment,
                build_id=build_id,
                identity="safeshare ops deploy",
            )
        )
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise OperatorError(
                f"build {build_id!r} of {deployment!r} cannot be made current ({err.message}); "
                "start its hub workers first"
            ) from None
        raise


async def retire(client: Client, deployment: str, build_id: str) -> None:
    """Delete build ``build_id`` from ``deployment``, once nothing runs on it any more.

    Raises:
        OperatorError: it is current or ramping, has open workflows, or workers still poll it.
    """
    builds = {b.build_id: b for b in await deployment_status(client, deployment)}
    build = builds.get(build_id)
    if build is None:
        raise OperatorError(f"no build {build_id!r} in {deployment!r}")
    if build.status in ("CURRENT", "RAMPING"):
        raise OperatorError(f"build {build_id!r} is {build.status}: make another build current")
    if build.open_workflows:
        raise OperatorError(
            f"build {build_id!r} still has {build.open_workflows} open workflows pinned to it: "
            "keep its hub workers running until they close"
        )
    if build.drainage != "DRAINED" and not (build.drainage == "-" and build.status == "INACTIVE"):
        # Visibility counts can lag; Temporal's own drainage status is the second check. A build
        # that was current and has no drainage status yet has not been checked: not drained.
        raise OperatorError(
            f"build {build_id!r} is {build.status}, drainage {build.drainage}: "
            "its open workflows have not all closed"
        )
    pinned = await _running_pinned_to(client, deployment, build_id)
    if pinned:
        raise OperatorError(
            f"build {build_id!r} still has {pinned} open workflows pinned to it: "
            "keep its hub workers running until they close"
        )
    try:
        await client.workflow_service.delete_worker_deployment_version(
            DeleteWorkerDeploymentVersionRequest(
                namespace=client.namespace,
                deployment_version=VersionPb(deployment_name=deployment, build_id=build_id),
                identity="safeshare ops deploy",
            )
        )
    except RPCError as err:
        if "pollers" in err.message:
            raise OperatorError(
                f"build {build_id!r} still has workers polling: stop its hub workers, then "
                "retry (Temporal forgets a stopped poller after a few minutes)"
            ) from None
        raise


async def _running_pinned_to(client: Client, deployment: str, build_id: str) -> int:
    """Running workflows of ``deployment`` whose own record says they are pinned to ``build_id``.

    The visibility count read by ``deployment_status`` comes from a search attribute written
    after the fact; this reads each running workflow's versioning info from Temporal's record.
    """
    pinned = 0
    query = f"TemporalWorkerDeployment = '{deployment}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        described = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).describe()
        info = described.raw_description.workflow_execution_info.versioning_info
        if info.deployment_version.build_id == build_id:
            pinned += 1
    return pinned


@deploy_app.command()
@temporal_options
def status(
    deployment: Deployment = HUB_DEPLOYMENT,
    temporal: TemporalFlags = NO_FLAGS,
) -> None:
    """The builds of the hub deployment: which is current, drainage, open workflows on each."""
    settings = temporal_settings(temporal, None)

    async def reading() -> list[BuildStatus]:
        return await deployment_status(await connect_temporal(settings), deployment)

    table = Table(title=f"Worker deployment {deployment}", title_justify="left")
    for column in ("build", "status", "drainage", "open workflows"):
        table.add_column(column)
    for build in run(reading()):
        table.add_row(build.build_id, build.status, build.drainage, str(build.open_workflows))
    console.print(table)


@deploy_app.command("set-current")
@temporal_options
def set_current_command(
    build_id: BuildId,
    deployment: Deployment = HUB_DEPLOYMENT,
    temporal: TemporalFlags = NO_FLAGS,
) -> None:
    """Make a build current: new cases start on it; open cases stay on the build they began on."""
    settings = temporal_settings(temporal, None)

    async def switching() -> None:
        await set_current(await connect_temporal(settings), deployment, build_id)

    run(switching())
    console.print(f"{deployment}: build {build_id} is current")


@deploy_app.command("retire")
@temporal_options
def retire_command(
    build_id: BuildId,
    deployment: Deployment = HUB_DEPLOYMENT,
    temporal: TemporalFlags = NO_FLAGS,
) -> None:
    """Delete a drained build whose workers have stopped; refused while it has open cases."""
    settings = temporal_settings(temporal, None)

    async def retiring() -> None:
        await retire(await connect_temporal(settings), deployment, build_id)

    run(retiring())
    console.print(f"{deployment}: build {build_id} retired")
