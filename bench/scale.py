"""Scale: open cases waiting on people, created in steps; at each step, how long the operators'
list queries take and how big and busy the workers are."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from dataclasses import dataclass

import grpc

from bench import cases
from bench.flows import as_a_client_would, list_ids
from bench.procstat import sample
from bench.stack import CALL_TIMEOUT, BenchStack
from safeshare.client import CaseClient

IN_FLIGHT = 16
SETTLE_TIMEOUT = 120.0
WATCHED = ("hub", "gateway", "adapter-northshire-csc", "adapter-northshire-police")


@dataclass(frozen=True)
class Step:
    """The system with ``open_cases`` open."""

    open_cases: int
    approver_query_seconds: float
    approver_matches: int
    deadline_query_seconds: float
    deadline_matches: int
    rss_mib: dict[str, float]
    cpu_seconds: dict[str, float]
    create_per_second: float


async def _timed_list(stack: BenchStack, query: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    found = await list_ids(stack.safeshare, query)
    return time.perf_counter() - t0, len(found)


async def _wait_for_approver(stack: BenchStack, want: int) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    query = "WorkflowType='HolderExchange' AND WaitingOn='APPROVER' AND ExecutionStatus='Running'"
    while time.monotonic() < deadline:
        if (await stack.safeshare.count_workflows(query)).count >= want:
            return
        await asyncio.sleep(0.5)


async def run(
    stack: BenchStack, steps: tuple[int, ...], tag: str, budget: float
) -> tuple[list[Step], str]:
    """Open cases on the override path up to each step (proposed, waiting on the approver)
    while ``budget`` seconds last; measure after each step. Returns the steps and a note."""
    path = cases.OVERRIDE
    pids = {name: pid for name, pid in stack.pids().items() if name in WATCHED}
    out: list[Step] = []
    opened = 0
    ends = time.monotonic() + budget
    note = ""
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with (
        CaseClient.connect(
            stack.dev.gateway_target,
            stack.dev.pki.agency(path.requester),
            call_timeout=CALL_TIMEOUT,
        ) as requester,
        CaseClient.connect(
            stack.dev.gateway_target, stack.dev.pki.agency(path.holder), call_timeout=CALL_TIMEOUT
        ) as holder,
    ):

        async def open_case(i: int) -> None:
            async with gate:
                ref = cases.case_ref(path, f"{tag}-{i}")
                await as_a_client_would(
                    functools.partial(requester.submit, cases.request(path, f"{tag}-{i}"))
                )
                until = time.monotonic() + SETTLE_TIMEOUT
                while True:  # the proposal is out of turn until consent has been looked up
                    try:
                        await holder.propose_override(ref, cases.override_proposal(path))
                        return
                    except grpc.aio.AioRpcError:
                        if time.monotonic() > until:
                            raise
                        await asyncio.sleep(0.2)

        rate = 0.0
        for wanted in steps:
            remaining = ends - time.monotonic()
            target = wanted
            if rate and (wanted - opened) / rate > remaining:
                # Only as many as the remaining budget fits, at the rate seen so far.
                target = opened + int(rate * remaining)
                note = (
                    f"stopped at {target} open cases (goal {steps[-1]}): the {budget:.0f} s "
                    f"scale budget ran out at {rate:.1f} cases/s"
                )
            if target <= opened:
                break
            t0 = time.perf_counter()
            await asyncio.gather(*(open_case(i) for i in range(opened, target)))
            await _wait_for_approver(stack, target)
            rate = (target - opened) / (time.perf_counter() - t0)
            opened = target
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            approver = await _timed_list(
                stack, "WorkflowType='HolderExchange' AND WaitingOn='APPROVER'"
            )
            overdue = await _timed_list(stack, f"NextDeadline < '{now}'")
            samples = {name: sample(pid) for name, pid in pids.items()}
            out.append(Step(
                target, approver[0], approver[1], overdue[0], overdue[1],
                {n: s.rss_mib for n, s in samples.items()},
                {n: round(s.cpu_seconds, 1) for n, s in samples.items()}, round(rate, 1),
            ))  # fmt: skip
            if target < wanted:
                break
    return out, note
