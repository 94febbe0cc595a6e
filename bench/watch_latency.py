"""WatchCase delivery latency: from an event being recorded to the watcher receiving it.

Each case is opened and watched by its requester through the real gateway; the case runs its
common path (consent given, delivery, then the requester's acknowledgement, which closes it).
Every event stamped after the watch was serving is timed to its arrival at the watcher twice:
from the moment it was recorded (the WorkflowTaskCompleted event of the task that stamped it,
read from the workflow's history after the case closed: the goal's measure) and from its
entry's own time (the task's start: that includes the hub's time running the task). Temporal's
clock and the watcher's are this machine's. Events recorded before the watch started are
delivered at once on connecting and are not counted. ``in_flight`` cases run at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass

from temporalio.client import Client

from bench import cases
from bench.latency import _acknowledge_when_ready
from bench.stack import CALL_TIMEOUT, BenchStack
from bench.stats import percentile
from safeshare.client import CaseClient
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

WATCH_DEADLINE = 120.0
DELIVERED = "RecordsDelivered"
"""The holder's entry after which the requester acknowledges."""


@dataclass(frozen=True)
class WatchLatency:
    """Delivery latency percentiles (seconds) of events pushed to watchers."""

    cases: int
    in_flight: int
    events: int
    p50: float
    """From the event being recorded (its task completed) to the watcher receiving it."""
    p99: float
    max: float
    stamped_p50: float
    """From the entry's own time (its task's start) to the watcher receiving it."""
    stamped_p99: float


@dataclass(frozen=True)
class _Seen:
    workflow_id: str
    at: float
    arrived: float


async def _recorded_at(client: Client, workflow_id: str) -> list[float]:
    """When each workflow task of the workflow completed (its events were recorded)."""
    handle = client.get_workflow_handle(workflow_id)
    return [
        event.event_time.ToDatetime(dt.UTC).timestamp()
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_task_completed_event_attributes")
    ]


async def _watch_one(
    client: CaseClient, temporal: Client, tag: str, i: int, samples: list[tuple[float, float]]
) -> None:
    path = cases.COMMON
    rid = f"{tag}-{i}"
    submitted = await client.submit(cases.request(path, rid))
    serving: float | None = None
    seen: list[_Seen] = []
    acknowledging: list[asyncio.Task[None]] = []
    async for event in client.watch_case(submitted.case_ref, deadline=WATCH_DEADLINE):
        arrived = time.time()
        if serving is None:
            serving = arrived  # the first event: what was recorded before the watch served
        at = event.entry.at.ToDatetime(dt.UTC).timestamp()
        if at > serving:
            source = (
                case_workflow_id(submitted.case_ref)
                if not event.holding_agency_id
                else holder_exchange_workflow_id(submitted.case_ref, event.holding_agency_id)
            )
            seen.append(_Seen(source, at, arrived))
        if event.entry.event == DELIVERED and not acknowledging:
            # Not awaited here: the watch goes on reading while the case closes.
            acknowledging.append(
                asyncio.create_task(_acknowledge_when_ready(client, submitted.case_ref, path))
            )
    await asyncio.gather(*acknowledging)
    completed = {w: await _recorded_at(temporal, w) for w in sorted({s.workflow_id for s in seen})}
    for s in seen:
        recorded = min((t for t in completed[s.workflow_id] if t >= s.at), default=s.at)
        samples.append((s.arrived - recorded, s.arrived - s.at))


async def measure(stack: BenchStack, tag: str, n: int, in_flight: int = 8) -> WatchLatency:
    """Watch ``n`` common-path cases to their close, ``in_flight`` at a time."""
    samples: list[tuple[float, float]] = []
    counter = iter(range(n))
    tls = stack.dev.pki.agency(cases.COMMON.requester)
    async with CaseClient.connect(
        stack.dev.gateway_target, tls, call_timeout=CALL_TIMEOUT
    ) as client:

        async def lane() -> None:
            for i in counter:
                await _watch_one(client, stack.safeshare, tag, i, samples)

        await asyncio.gather(*(lane() for _ in range(min(in_flight, n))))
    recorded = [r for r, _ in samples]
    stamped = [s for _, s in samples]
    return WatchLatency(
        n, in_flight, len(samples), percentile(recorded, 50), percentile(recorded, 99),
        max(recorded, default=0.0), percentile(stamped, 50), percentile(stamped, 99),
    )  # fmt: skip
