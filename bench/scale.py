"""Scale: open cases waiting on people, created in steps; at each step, how long the operators'
list queries take and how big and busy the workers are.

Every case is on the override path (consent refused): it waits on the holder to decide; every
``PROPOSE_EVERY``-th holder has proposed an override, so that case waits on an approver, and the
approvers' list is a tenth of the open cases, as an operator would meet it."""

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

IN_FLIGHT = 24
OPERATOR_PAGE = 100
"""Rows on one page of an operator's list (the Web UI's page size)."""
PROPOSE_EVERY = 10
APPROVER_QUERY = "WorkflowType='HolderExchange' AND WaitingOn='APPROVER'"
WAITING_QUERY = (
    "WorkflowType='HolderExchange' AND ExecutionStatus='Running' "
    "AND WaitingOn IN ('HOLDER', 'APPROVER')"
)
SETTLE_TIMEOUT = 120.0
WATCHED = ("hub", "gateway", "adapter-northshire-csc", "adapter-northshire-police")


@dataclass(frozen=True)
class Query:
    """One operators' list query, timed three ways."""

    first_page_seconds: float
    """The first page of ``OPERATOR_PAGE`` rows: what an operator waits for."""
    count_seconds: float
    all_seconds: float
    """Every match, paged 1,000 at a time."""
    matches: int


@dataclass(frozen=True)
class Step:
    """The system with ``open_cases`` open."""

    open_cases: int
    approver: Query
    overdue: Query
    rss_mib: dict[str, float]
    cpu_seconds: dict[str, float]
    create_per_second: float


async def _timed_query(stack: BenchStack, query: str) -> Query:
    client = stack.safeshare
    t0 = time.perf_counter()
    page = 0
    async for _ in client.list_workflows(query, page_size=OPERATOR_PAGE):
        page += 1
        if page == OPERATOR_PAGE:
            break
    t1 = time.perf_counter()
    await client.count_workflows(query)
    t2 = time.perf_counter()
    found = await list_ids(client, query)
    return Query(t1 - t0, t2 - t1, time.perf_counter() - t2, len(found))


async def _settle(stack: BenchStack, opened: int) -> bool:
    """Wait until ``opened`` cases wait on a person and their proposals are visible; False if
    they did not within ``SETTLE_TIMEOUT``."""
    proposed = len(range(0, opened, PROPOSE_EVERY))
    deadline = time.monotonic() + SETTLE_TIMEOUT
    client = stack.safeshare
    while time.monotonic() < deadline:
        waiting = (await client.count_workflows(WAITING_QUERY)).count
        approver = (await client.count_workflows(APPROVER_QUERY)).count
        if waiting >= opened and approver >= proposed:
            return True
        await asyncio.sleep(0.5)
    return False


async def run(
    stack: BenchStack, steps: tuple[int, ...], tag: str, budget: float
) -> tuple[list[Step], str]:
    """Open cases up to each step while ``budget`` seconds last; measure after each step.
    Returns the steps and a note."""
    path = cases.OVERRIDE
    pids = {name: pid for name, pid in stack.pids().items() if name in WATCHED}
    out: list[Step] = []
    opened = 0
    ends = time.monotonic() + budget
    note = ""
    notes: list[str] = []
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
                if i % PROPOSE_EVERY:
                    return
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
                target = max(opened, opened + int(rate * remaining))
                note = (
                    f"stopped at {target} open cases (goal {steps[-1]}): the {budget:.0f} s "
                    f"scale budget ran out at {rate:.1f} cases/s"
                )
            if target <= opened:
                break
            t0 = time.perf_counter()
            await asyncio.gather(*(open_case(i) for i in range(opened, target)))
            if not await _settle(stack, target):
                notes.append(
                    f"{target} open cases: not all visible as waiting on a person after "
                    f"{SETTLE_TIMEOUT:.0f} s; measured anyway"
                )
            rate = (target - opened) / (time.perf_counter() - t0)
            opened = target
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            approver = await _timed_query(stack, APPROVER_QUERY)
            overdue = await _timed_query(stack, f"NextDeadline < '{now}'")
            samples = {name: sample(pid) for name, pid in pids.items()}
            out.append(Step(
                target, approver, overdue, {n: s.rss_mib for n, s in samples.items()},
                {n: round(s.cpu_seconds, 1) for n, s in samples.items()}, round(rate, 1),
            ))  # fmt: skip
            if target < wanted:
                break
    return out, "; ".join(filter(None, [note, *notes]))
