"""Temporal's own yardsticks for the Case API, on the same dev server in the same run: what a
Temporal engineer would time first, beside what SafeShare answers through its gateway.

- bare ``start_workflow`` of a ``BareCase`` against SafeShare's SubmitRequest;
- bare ``describe`` of a waiting ``BareExchange`` (one workflow per call), at 1 and 64 in
  flight, against GetCase on a waiting case;
- bare ``execute_update`` (``BareExchange.acknowledge``, which ends the exchange) against a
  decision with the same effect: Acknowledge, which ends the holder's exchange and the case.

With a ``profiles`` directory, GetCase and the decision at 64 in flight run once more with the
gateway and the hub under py-spy, after the unprofiled rows (where their time goes).

Every call goes to a different workflow (Temporal answers one workflow's updates one at a time,
so calls to one workflow would time a queue), N calls at each level; percentiles in seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import cases, profile
from bench.bare_workflows import BARE_TASK_QUEUE, BareCase, BareExchange
from bench.flows import list_ids, since
from bench.stack import CALL_TIMEOUT, BenchStack
from bench.stats import percentile, ratio
from safeshare.client import CaseClient

IN_FLIGHT = 64
WAIT_SECONDS = 300.0
Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Yardstick:
    """One SafeShare RPC against its bare Temporal call, both at ``in_flight``."""

    rpc: str
    bare: str
    in_flight: int
    calls: int
    p50: float
    p99: float
    bare_p50: float
    bare_p99: float
    errors: int = 0
    goal: float = 0.0
    """The p50 ratio the issue asks for (0: none, a yardstick row only)."""

    @property
    def ratio_p50(self) -> float:
        """SafeShare's p50 over the bare call's."""
        return ratio(self.p50, self.bare_p50)


async def _timed(
    in_flight: int, calls: list[Callable[[], Awaitable[object]]]
) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    queue = iter(calls)

    async def lane() -> None:
        nonlocal errors
        for call in queue:
            t0 = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            samples.append(time.perf_counter() - t0)

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return samples, errors


async def _waiting(stack: BenchStack, started: dt.datetime, n: int, safeshare: bool) -> None:
    """Until ``n`` exchanges started since ``started`` wait for their acknowledgement."""
    client, kind = (
        (stack.safeshare, "HolderExchange") if safeshare else (stack.bare, "BareExchange")
    )
    query = (
        f"WorkflowType='{kind}' AND ExecutionStatus='Running' "
        f"AND StartTime >= '{since(started)}' AND CaseState='AWAITING_ACKNOWLEDGEMENT'"
    )
    deadline = time.monotonic() + WAIT_SECONDS
    while len(await list_ids(client, query)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{kind}: not {n} waiting after {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0.5)


def _row(rpc: str, bare: str, level: int, real: tuple[list[float], int],
         base: tuple[list[float], int], goal: float = 0.0) -> Yardstick:  # fmt: skip
    (samples, errors), (bare_samples, _) = real, base
    return Yardstick(
        rpc, bare, level, len(samples) + errors, percentile(samples, 50), percentile(samples, 99),
        percentile(bare_samples, 50), percentile(bare_samples, 99), errors, goal,
    )  # fmt: skip


@dataclass(frozen=True)
class Measured:
    """The yardstick rows, and the profiles of the profiled passes (empty without any)."""

    rows: list[Yardstick]
    profiles: dict[str, Any]


async def measure(stack: BenchStack, tag: str, n: int, profiles: Path | None = None) -> Measured:
    """Start ``n`` bare cases and submit ``n`` SafeShare cases (64 in flight each), read each
    once they wait (bare describe at 1 and 64, GetCase at 1 and 64), then end each with its
    update; with ``profiles``, GetCase and the decision again with the gateway and the hub
    under py-spy (half the cases' decisions are profiled, half are timed)."""
    path = cases.COMMON
    bare = stack.bare
    bare_ids = [f"bare-{tag}-{i}" for i in range(n)]
    request_ids = [f"{tag}-{i}" for i in range(n)]
    refs = [cases.case_ref(path, r) for r in request_ids]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    tls = stack.dev.pki.agency(path.requester)
    rows: list[Yardstick] = []
    async with CaseClient.connect(
        stack.dev.gateway_target, tls, call_timeout=CALL_TIMEOUT, attempts=1
    ) as client:

        def start(w: str) -> Call:
            return lambda: bare.start_workflow(BareCase.run, w, id=w, task_queue=BARE_TASK_QUEUE)

        def submit(r: str) -> Call:
            return lambda: client.submit(cases.request(path, r))

        def describe(w: str) -> Call:
            return lambda: bare.get_workflow_handle(f"{w}.x").describe()

        def get(r: str) -> Call:
            return lambda: client.get(r)

        def update(w: str) -> Call:
            handle = bare.get_workflow_handle_for(BareExchange.run, f"{w}.x")
            return lambda: handle.execute_update(BareExchange.acknowledge, "ok")

        def acknowledge(r: str) -> Call:
            return lambda: client.acknowledge(r, cases.acknowledgement(path))

        starts = await _timed(IN_FLIGHT, [start(w) for w in bare_ids])
        submits = await _timed(IN_FLIGHT, [submit(r) for r in request_ids])
        rows.append(_row("SubmitRequest", "start_workflow", IN_FLIGHT, submits, starts, 1.3))
        await _waiting(stack, started, n, safeshare=False)
        await _waiting(stack, started, n, safeshare=True)
        one = await _timed(1, [describe(w) for w in bare_ids])
        many = await _timed(IN_FLIGHT, [describe(w) for w in bare_ids])
        gets_one = await _timed(1, [get(r) for r in refs])
        gets = await _timed(IN_FLIGHT, [get(r) for r in refs])
        rows.append(_row("GetCase", "describe", 1, gets_one, one))
        rows.append(_row("GetCase", "describe", IN_FLIGHT, gets, many, 2.0))
        updates = await _timed(IN_FLIGHT, [update(w) for w in bare_ids])
        timed, profiled = (refs, []) if profiles is None else (refs[: n // 2], refs[n // 2 :])
        acks = await _timed(IN_FLIGHT, [acknowledge(r) for r in timed])
        rows.append(_row("Acknowledge (decision)", "execute_update", IN_FLIGHT, acks, updates, 1.5))
        found: dict[str, Any] = {}
        if profiles is not None:
            pids = {k: v for k, v in stack.pids().items() if k in ("gateway", "hub")}
            for name, calls in (
                ("GetCase", [get(r) for r in profiled]),
                ("decision", [acknowledge(r) for r in profiled]),
            ):
                async with profile.recording(pids, profiles / f"yardstick-{name}") as files:
                    await _timed(IN_FLIGHT, calls)
                found[name] = [asdict(profile.summarise(p, f, top=12)) for p, f in files.items()]
    return Measured(rows, found)
