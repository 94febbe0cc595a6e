"""The fault driver: a seeded, reproducible schedule of faults played against the chaos stack.

The schedule is drawn up front from ``random.Random(seed)`` (so the same seed gives the same
faults at the same offsets) and played in order; every fault is undone after a bounded while.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from protos.agency.v1 import sandbox_control_pb2 as control_pb
from safeshare.sandbox_admin import SandboxAdminError, control_sandbox
from tests.chaos.stack import ChaosStack


@dataclass(frozen=True)
class Fault:
    """One fault: what, on which part, at which offset (s), for how long (s)."""

    at: float
    kind: str
    target: str
    hold: float
    faults: control_pb.Faults | None = None


@dataclass(frozen=True)
class FaultPlan:
    """How many faults of each kind to spread over ``window`` seconds."""

    window: float
    worker_kills: int
    adapter_outages: int
    server_restarts: int
    sandbox_faults: int
    replica_kills: int = 0
    """Times one replica of every part (a hub, a gateway, an adapter of each agency), chosen
    at random, is killed at once while the other replicas carry on."""
    archiver_kills: int = 0
    """SIGKILL the archiver (mid-batch, as it happens)."""
    archive_outages: int = 0
    """Stop the archive's PostgreSQL server for a while."""


@dataclass
class FaultLog:
    """What the driver did, by kind, for the summary."""

    done: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def schedule(seed: int, plan: FaultPlan, stack: ChaosStack) -> list[Fault]:
    """The faults of a run, ordered by offset."""
    rng = random.Random(seed * 7919 + 1)
    workers = [*stack.hub_names, *stack.adapter_names]
    faults: list[Fault] = []

    def at() -> float:
        # Not in the first seconds (cases must get going) nor at the very end.
        return round(rng.uniform(0.1 * plan.window, 0.9 * plan.window), 2)

    for _ in range(plan.worker_kills):
        faults.append(Fault(at(), "kill_worker", rng.choice(workers), rng.uniform(0.5, 3.0)))
    for _ in range(plan.adapter_outages):
        faults.append(Fault(at(), "kill_all_adapters", "adapters", rng.uniform(3.0, 6.0)))
    for _ in range(plan.replica_kills):
        groups = [stack.hub_names, stack.gateway_names] + [
            [name for name in stack.adapter_names if name.startswith(f"adapter-{agency}-")]
            for agency in stack.agencies
        ]
        if any(len(group) < 2 for group in groups):
            raise ValueError("replica kills need at least two replicas of every part")
        victims = ",".join(rng.choice(group) for group in groups)
        faults.append(Fault(at(), "kill_replicas", victims, rng.uniform(2.0, 5.0)))
    for _ in range(plan.server_restarts):
        faults.append(Fault(at(), "restart_temporal", "temporal", rng.uniform(1.0, 3.0)))
    if "archiver" in stack.parts:
        for _ in range(plan.archiver_kills):
            faults.append(Fault(at(), "kill_archiver", "archiver", rng.uniform(1.0, 4.0)))
        for _ in range(plan.archive_outages):
            faults.append(Fault(at(), "archive_outage", "archive-db", rng.uniform(3.0, 8.0)))
    kinds = ["fail_calls", "slow_down", "drop_replies"]
    for index in range(plan.sandbox_faults):
        kind = kinds[index % len(kinds)]
        agency = rng.choice(stack.agencies)
        if kind == "fail_calls":
            # Few enough that no delivery exhausts its retry burst (6 attempts).
            toggles = control_pb.Faults(fail_next=rng.randint(1, 3), fail_code="UNAVAILABLE")
        elif kind == "slow_down":
            toggles = control_pb.Faults(delay_ms=rng.randint(200, 1500))
        else:
            toggles = control_pb.Faults(
                drop_replies_after_commit=rng.randint(2, 5), rpcs=["ReceiveDelivery"]
            )
        faults.append(Fault(at(), kind, agency, rng.uniform(3.0, 8.0), toggles))
    return sorted(faults, key=lambda fault: fault.at)


async def play(stack: ChaosStack, faults: list[Fault], log: FaultLog) -> None:
    """Play ``faults`` against ``stack`` at their offsets; undo each after its hold."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    undo: list[asyncio.Task[None]] = []
    for fault in faults:
        await asyncio.sleep(max(0.0, start + fault.at - loop.time()))
        undo.append(asyncio.create_task(_apply(stack, fault, log)))
    await asyncio.gather(*undo)


async def _apply(stack: ChaosStack, fault: Fault, log: FaultLog) -> None:
    if fault.kind == "kill_worker":
        if await asyncio.to_thread(stack.kill, fault.target):
            log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        await _start(stack, fault.target, log)
    elif fault.kind == "kill_all_adapters":
        names = stack.adapter_names
        for name in names:
            await asyncio.to_thread(stack.kill, name)
        log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        for name in names:
            await _start(stack, name, log)
    elif fault.kind == "kill_replicas":
        names = fault.target.split(",")
        for name in names:
            await asyncio.to_thread(stack.kill, name)
        log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        for name in names:
            await _start(stack, name, log)
    elif fault.kind == "kill_archiver":
        if await asyncio.to_thread(stack.kill, "archiver"):
            log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        await _start(stack, "archiver", log)
    elif fault.kind == "archive_outage" and stack.archive is not None:
        await asyncio.to_thread(stack.archive.stop)
        log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        await asyncio.to_thread(stack.archive.start)
    elif fault.kind == "restart_temporal":
        await asyncio.to_thread(stack.kill, "temporal")
        log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        await asyncio.to_thread(stack.restart_temporal)
    else:
        await _sandbox(stack, fault, log)


SUPERVISOR_WINDOW_SECONDS = 60.0
SUPERVISOR_SETTLE_SECONDS = 3.0


async def _start(stack: ChaosStack, name: str, log: FaultLog) -> None:
    """Start ``name`` again as its supervisor would (systemd ``Restart=on-failure``): a part
    that exits as it starts, e.g. because Temporal is restarting under it (the server accepts
    and resets connections while it comes up, and a service exits 2 when Temporal does not
    answer), is started again until it stays up, for up to a minute. Each such start is counted
    in the report; a part still down after the minute fails the run's "every part runs" check.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SUPERVISOR_WINDOW_SECONDS
    await asyncio.to_thread(stack.start_part, name)
    while loop.time() < deadline:
        await asyncio.sleep(SUPERVISOR_SETTLE_SECONDS)
        if stack.is_running(name):
            return
        log.done["restarted_after_exit"] += 1
        await asyncio.to_thread(stack.start_part, name)


async def _sandbox(stack: ChaosStack, fault: Fault, log: FaultLog) -> None:
    target, tls = stack.agency_target(fault.target), stack.pki.adapter(fault.target)
    try:
        await control_sandbox(target, tls, fault.faults)
        log.done[fault.kind] += 1
        await asyncio.sleep(fault.hold)
        await control_sandbox(target, tls, control_pb.Faults())
    except SandboxAdminError as err:
        log.errors.append(f"{fault.kind} at {fault.target}: {err}")
