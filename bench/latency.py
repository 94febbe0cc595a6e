"""Idle latency: from submission to the records stored in the recipient's store, one case at a
time. SafeShare: SubmitRequest → a row in the recipient sandbox's ``deliveries`` table. Baseline:
start_workflow → the bare delivery activity's row. Each case is then acknowledged (untimed), so
it closes and leaves no work behind.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from pathlib import Path

import grpc
from temporalio.client import WorkflowUpdateFailedError

from bench import cases
from bench.bare_workflows import BARE_TASK_QUEUE, BareCase, BareExchange
from bench.flows import as_a_client_would
from bench.stack import CALL_TIMEOUT, BenchStack
from safeshare.client import CaseClient

POLL_SECONDS = 0.002
CASE_TIMEOUT = 30.0


async def _until_row(db: Path, sql: str, key: str) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        deadline = time.monotonic() + CASE_TIMEOUT
        while time.monotonic() < deadline:
            if conn.execute(sql, (key,)).fetchone():
                return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        conn.close()
    raise TimeoutError("delivery not stored in time")


async def safeshare_latencies(stack: BenchStack, n: int, tag: str) -> list[float]:
    """Seconds from SubmitRequest to the stored delivery, for ``n`` sequential cases."""
    path = cases.COMMON
    db = stack.recipient_db(path.requester)
    out = []
    async with CaseClient.connect(
        stack.dev.gateway_target, stack.dev.pki.agency(path.requester), call_timeout=CALL_TIMEOUT
    ) as requester:
        for i in range(n):
            rid = f"{tag}-{i}"
            t0 = time.perf_counter()
            ref = cases.case_ref(path, rid)
            await as_a_client_would(functools.partial(requester.submit, cases.request(path, rid)))
            await _until_row(db, "SELECT 1 FROM deliveries WHERE case_ref = ?", ref)
            out.append(time.perf_counter() - t0)
            await _acknowledge_when_ready(requester, ref, path)
    return out


async def _acknowledge_when_ready(requester: CaseClient, ref: str, path: cases.Route) -> None:
    # The delivery is stored a moment before the workflow records it: retry the
    # out-of-turn refusal briefly.
    deadline = time.monotonic() + CASE_TIMEOUT
    while True:
        try:
            await requester.acknowledge(ref, cases.acknowledgement(path))
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def bare_latencies(stack: BenchStack, n: int, tag: str) -> list[float]:
    """The baseline's seconds from start_workflow to the stored delivery."""
    client = stack.bare
    out = []
    for i in range(n):
        wid = f"bare-{tag}-{i}"
        t0 = time.perf_counter()
        await client.start_workflow(BareCase.run, wid, id=wid, task_queue=BARE_TASK_QUEUE)
        await _until_row(stack.bare_deliveries, "SELECT 1 FROM deliveries WHERE ref = ?", wid)
        out.append(time.perf_counter() - t0)
        handle = client.get_workflow_handle_for(BareExchange.run, f"{wid}.x")
        deadline = time.monotonic() + CASE_TIMEOUT
        while True:
            try:
                await handle.execute_update(BareExchange.acknowledge, "ok")
                break
            except WorkflowUpdateFailedError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
    return out
