"""The chaos run: a seeded mix of cases through two gateways while a seeded fault driver kills
workers, kills one replica of every part at once (a hub, a gateway, an adapter of each agency),
takes the adapters away, restarts Temporal and makes the agencies misbehave; then the checker
proves nothing was lost, duplicated or shared without a basis.

Profile: ``SAFESHARE_CHAOS_PROFILE=short|long`` (``make chaos PROFILE=long``).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.chaos import fault_driver
from tests.chaos.checker import Checker
from tests.chaos.driver import Agencies, CaseDriver, DriverStats, play_all
from tests.chaos.profile import current_profile
from tests.chaos.scenarios import plan_cases
from tests.chaos.stack import ChaosStack

PROFILE = current_profile()

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.timeout(PROFILE.timeout)
async def test_nothing_lost_duplicated_or_shared_without_a_basis(chaos_stack: ChaosStack) -> None:
    stack = chaos_stack
    specs = plan_cases(PROFILE.seed, PROFILE.cases, stack.agencies, uuid.uuid4().hex[:6])
    faults = fault_driver.schedule(PROFILE.seed, PROFILE.faults, stack)
    fault_log = fault_driver.FaultLog()
    stats = DriverStats()
    loop = asyncio.get_running_loop()
    started = loop.time()
    tls = {agency: stack.agency_tls(agency) for agency in stack.agencies}
    # One target for both gateways: a killed one is left out by the client's health checks.
    async with Agencies.connect(stack.gateways_target, tls) as agencies:
        driver = CaseDriver(agencies, stats, PROFILE.case_seconds)
        runs, _ = await asyncio.gather(
            play_all(driver, specs, PROFILE.concurrency, PROFILE.submit_gap),
            fault_driver.play(stack, faults, fault_log),
        )
    driven = loop.time() - started
    for name in stack.parts:  # every fault is undone: all parts run again
        assert stack.is_running(name), f"{name} is not running after the faults"

    report = await Checker(stack, runs).check()
    report.counts.update({f"fault {kind}": n for kind, n in fault_log.done.items()})
    report.counts.update({f"gateway answered {code}": n for code, n in stats.codes.items()})
    report.counts["cases given up by the driver"] = sum(run.gave_up for run in runs)
    report.counts["seconds driving (profile " + PROFILE.name + ")"] = round(driven)
    summary = report.render()
    print(summary)
    (stack.root / "chaos-report.txt").write_text(summary + "\n")

    assert report.ok, summary
    assert not fault_log.errors, fault_log.errors
    # The faults really happened: a run without them proves nothing.
    assert fault_log.done["kill_worker"] + fault_log.done["kill_all_adapters"] > 0
    assert fault_log.done["restart_temporal"] == PROFILE.faults.server_restarts
    assert fault_log.done["kill_replicas"] == PROFILE.faults.replica_kills
    assert fault_log.done["archive_outage"] == PROFILE.faults.archive_outages
    assert fault_log.done["kill_archiver"] > 0 or not PROFILE.faults.archiver_kills
