"""Driving batches of cases to their close, SafeShare's through the gateway and the baseline's
through the Temporal client, with one discovery method for both: a visibility list query for
cases waiting on a person, polled, and each found case moved on once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from temporalio.client import Client

from bench import cases
from bench.bare_workflows import BARE_TASK_QUEUE, BareCase, BareExchange
from bench.stack import CALL_TIMEOUT, BenchStack
from safeshare.client import CaseClient
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

POLL_SECONDS = 0.3
SUBMIT_IN_FLIGHT = 32
ACT_IN_FLIGHT = 16


@dataclass(frozen=True)
class Batch:
    """A batch that ran to its close."""

    n: int
    seconds: float
    """From the first submission to the last case's close time (Temporal's own clock)."""

    @property
    def per_second(self) -> float:
        """Cases closed per second."""
        return self.n / self.seconds if self.seconds else 0.0


def since(started: dt.datetime) -> str:
    """A visibility-query time literal."""
    return started.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def list_ids(client: Client, query: str) -> list[str]:
    """Workflow ids matching ``query``."""
    return [e.id async for e in client.list_workflows(query, page_size=1000)]


async def _bounded(limit: int, jobs: list[Awaitable[object]]) -> None:
    """Await ``jobs`` (not yet started coroutines), ``limit`` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[object]) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in jobs))


async def _until_closed(
    client: Client, workflow_type: str, started: dt.datetime, ids: set[str],
    step: Callable[[], Awaitable[None]], time_limit: float,
) -> dt.datetime:  # fmt: skip
    """Run ``step`` every poll until every workflow in ``ids`` completed; the last close time."""
    deadline = time.monotonic() + time_limit
    query = (
        f"WorkflowType='{workflow_type}' AND ExecutionStatus='Completed' "
        f"AND StartTime >= '{since(started)}'"
    )
    while time.monotonic() < deadline:
        await step()
        closed = [e async for e in client.list_workflows(query, page_size=1000) if e.id in ids]
        if len(closed) >= len(ids):
            return max(e.close_time for e in closed if e.close_time is not None)
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"{workflow_type}: not all {len(ids)} closed in {time_limit:.0f} s")


async def safeshare_batch(
    stack: BenchStack, path: cases.Route, n: int, tag: str, time_limit: float = 600
) -> Batch:
    """Submit ``n`` cases on ``path`` through the gateway, move each on as its people would
    (override proposed and approved; delivery acknowledged), and time them to their close."""
    tls = stack.dev.pki
    gateway = stack.dev.gateway_target
    request_ids = [f"{tag}-{i}" for i in range(n)]
    refs = {cases.case_ref(path, rid) for rid in request_ids}
    exchanges = {holder_exchange_workflow_id(ref, path.holder): ref for ref in refs}
    done: set[str] = set()
    overridden: set[str] = set()
    async with (
        CaseClient.connect(
            gateway, tls.agency(path.requester), call_timeout=CALL_TIMEOUT, attempts=1
        ) as requester,
        CaseClient.connect(
            gateway, tls.agency(path.holder), call_timeout=CALL_TIMEOUT, attempts=1
        ) as holder,
    ):
        started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        t0 = time.time()
        await _bounded(
            SUBMIT_IN_FLIGHT,
            [
                as_a_client_would(functools.partial(requester.submit, cases.request(path, rid)))
                for rid in request_ids
            ],
        )

        async def override(ref: str) -> None:
            await holder.propose_override(ref, cases.override_proposal(path))
            await holder.decide_override(ref, cases.override_approval(path))

        async def acknowledge(ref: str) -> None:
            await requester.acknowledge(ref, cases.acknowledgement(path))

        async def step() -> None:
            base = (
                "WorkflowType='HolderExchange' AND ExecutionStatus='Running' "
                f"AND StartTime >= '{since(started)}'"
            )
            jobs: list[Awaitable[object]] = []
            if path is cases.OVERRIDE:
                for wid in await list_ids(
                    stack.safeshare, f"{base} AND CaseState='AWAITING_CONSENT_DECISION'"
                ):
                    ref = exchanges.get(wid)
                    if ref and ref not in overridden:
                        overridden.add(ref)
                        jobs.append(as_a_client_would(functools.partial(override, ref)))
            for wid in await list_ids(
                stack.safeshare, f"{base} AND CaseState='AWAITING_ACKNOWLEDGEMENT'"
            ):
                ref = exchanges.get(wid)
                if ref and ref not in done:
                    done.add(ref)
                    jobs.append(as_a_client_would(functools.partial(acknowledge, ref)))
            await _bounded(ACT_IN_FLIGHT, jobs)

        last = await _until_closed(
            stack.safeshare, "SharingCase", started, {case_workflow_id(r) for r in refs}, step,
            time_limit,
        )  # fmt: skip
    return Batch(n, last.timestamp() - t0)


RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
RETRIES = 10


async def as_a_client_would(call: Callable[[], Awaitable[object]]) -> None:
    """Call as an agency system would: retry what the gateway says to retry later; a decision
    that lost a race with the poll (already made, so out of turn now) is not an error here."""
    for attempt in range(RETRIES):
        try:
            await call()
            return
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return
            if err.code() not in RETRYABLE or attempt == RETRIES - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))


async def bare_batch(stack: BenchStack, n: int, tag: str, time_limit: float = 600) -> Batch:
    """The baseline's batch: start ``n`` bare cases, acknowledge each as it waits, time them."""
    client = stack.bare
    ids = [f"bare-{tag}-{i}" for i in range(n)]
    done: set[str] = set()
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    t0 = time.time()
    await _bounded(SUBMIT_IN_FLIGHT, [
        client.start_workflow(BareCase.run, wid, id=wid, task_queue=BARE_TASK_QUEUE) for wid in ids
    ])  # fmt: skip

    async def step() -> None:
        query = (
            f"WorkflowType='BareExchange' AND ExecutionStatus='Running' "
            f"AND StartTime >= '{since(started)}' AND CaseState='AWAITING_ACKNOWLEDGEMENT'"
        )
        jobs: list[Awaitable[object]] = []
        for wid in await list_ids(client, query):
            if wid not in done:
                done.add(wid)
                handle = client.get_workflow_handle_for(BareExchange.run, wid)
                jobs.append(handle.execute_update(BareExchange.acknowledge, "ok"))
        await _bounded(ACT_IN_FLIGHT, jobs)

    last = await _until_closed(client, "BareCase", started, set(ids), step, time_limit)
    return Batch(n, last.timestamp() - t0)
