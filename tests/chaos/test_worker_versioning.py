"""Safe deploys of the hub under Temporal Worker Versioning, on the real dev server and real
processes: a case started on build A keeps running on A after build B is made current; a case
started after the switch runs on B; A drains once its cases close and is retired, with the
``safeshare ops deploy`` commands an operator would use."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import VersioningBehavior

from protos.sharing.v1 import case_pb2 as pb
from safeshare.hub import HUB_DEPLOYMENT
from safeshare.operators.deploy import deployment_status
from tests.chaos import scenarios as sc
from tests.chaos.driver import Agencies, CaseDriver, DriverStats
from tests.chaos.stack import ChaosStack
from tests.eventually import eventually
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Drainage is re-checked every few minutes by default and a stopped poller is remembered for
# minutes: short here, so the test sees "drained" and can retire the build in seconds.
FAST_VERSIONING = [
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
    "--dynamic-config-value", 'matching.PollerHistoryTTL="1s"',
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def versioned_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    stack = ChaosStack(
        tmp_path_factory.mktemp("versioning"), hub_build_id="A", temporal_args=FAST_VERSIONING
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def ops(stack: ChaosStack, *argv: str) -> subprocess.CompletedProcess[str]:
    """``safeshare ops deploy ...`` as an operator runs it, configured by TEMPORAL_ADDRESS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["TEMPORAL_ADDRESS"] = stack.temporal_address
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "safeshare", "ops", "deploy", *argv],
        env=env, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip


async def until(check: Callable[[], Awaitable[object]], what: str, seconds: float = 60.0) -> None:
    """``await check()`` until it returns something true; fail after ``seconds``."""
    await eventually(check, what=what, within=seconds, every=0.5)


async def set_current(stack: ChaosStack, build_id: str) -> None:
    async def switched() -> bool:
        done = await asyncio.to_thread(ops, stack, "set-current", "--build-id", build_id)
        return done.returncode == 0

    await until(switched, f"build {build_id} to poll and become current")


async def build_of(client: Client, workflow_id: str) -> tuple[str, VersioningBehavior]:
    info = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    versioning = info.workflow_execution_info.versioning_info
    return versioning.deployment_version.build_id, VersioningBehavior(versioning.behavior)


async def task_builds(client: Client, workflow_id: str) -> list[str]:
    """The build of every completed workflow task in a workflow's history, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_case_finishes_on_the_build_it_started_on_and_new_cases_start_on_the_new(
    versioned_stack: ChaosStack,
) -> None:
    stack = versioned_stack
    client = await Client.connect(stack.temporal_address)
    await set_current(stack, "A")
    planned = sc.plan_cases(20264, 2, stack.agencies, uuid.uuid4().hex[:6])
    # Both wait for the holder's decision on a refused consent, then go through an override.
    specs = [
        dataclasses.replace(s, scenario=sc.Scenario.OVERRIDE, child_key="consent-refused")
        for s in planned
    ]
    tls = {agency: stack.agency_tls(agency) for agency in stack.agencies}
    async with Agencies.connect(stack.gateway_target, tls) as agencies:

        async def open_case(spec: sc.CaseSpec) -> str:
            requester = agencies.clients[spec.requester]
            ref = (await requester.submit(sc.sharing_request(spec))).case_ref

            async def waiting() -> bool:
                view = await requester.get(ref)
                return view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION

            await until(waiting, "the case to wait for the consent decision")
            return ref

        old_case = await open_case(specs[0])
        assert await build_of(client, case_workflow_id(old_case)) == (
            "A", VersioningBehavior.PINNED,
        )  # fmt: skip

        # Roll out B and make it current while the old case is open.
        await asyncio.to_thread(stack.add_hub, "hub-B", "B")
        await set_current(stack, "B")
        new_case = await open_case(specs[1])

        for ref, build in ((old_case, "A"), (new_case, "B")):
            exchange = holder_exchange_workflow_id(ref, specs[0 if build == "A" else 1].holder)
            assert await build_of(client, case_workflow_id(ref)) == (
                build,
                VersioningBehavior.PINNED,
            )
            assert (await build_of(client, exchange))[0] == build

        status = await asyncio.to_thread(ops, stack, "status")
        assert status.returncode == 0, status.stderr
        rows = {
            line.split()[1]: line.split()
            for line in status.stdout.splitlines()
            if "│" in line and line.split()[1] in "AB"
        }
        assert rows["B"][3] == "CURRENT" and rows["A"][3] == "DRAINING", status.stdout

        # A still has its open case: retiring it is refused, in one line.
        refused = await asyncio.to_thread(ops, stack, "retire", "--build-id", "A")
        assert refused.returncode == 2, (refused.stdout, refused.stderr)
        assert "open workflows" in refused.stderr, refused.stderr

        # The old case runs to its end after the switch, on A only.
        before = len(await task_builds(client, case_workflow_id(old_case)))
        driver = CaseDriver(agencies, DriverStats(), 120.0)
        old_run = await driver.play(specs[0])
        assert old_run.final_state == pb.CASE_STATE_CLOSED and old_run.case_refs[0] == old_case
        builds = await task_builds(client, case_workflow_id(old_case))
        assert len(builds) > before, "the old case made no progress after the switch"
        assert set(builds) == {"A"}, builds

        # A drains once its cases are closed; stopped, it is retired.
        async def drained() -> bool:
            builds = {b.build_id: b for b in await deployment_status(client, HUB_DEPLOYMENT)}
            return builds["A"].drainage == "DRAINED" and builds["A"].open_workflows == 0

        await until(drained, "build A to drain")
        await asyncio.to_thread(stack.kill, "hub")

        async def retired() -> bool:
            done = await asyncio.to_thread(ops, stack, "retire", "--build-id", "A")
            return done.returncode == 0

        await until(retired, "build A to be retired")
        remaining = [b.build_id for b in await deployment_status(client, HUB_DEPLOYMENT)]
        assert remaining == ["B"]

        new_run = await driver.play(specs[1])
        assert new_run.final_state == pb.CASE_STATE_CLOSED
        assert set(await task_builds(client, case_workflow_id(new_case))) == {"B"}
