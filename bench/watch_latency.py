"""WatchCase delivery latency: from an event being recorded to the watcher receiving it.

Each case is opened and watched by its requester through the real gateway; the case runs its
common path (consent given, delivery, then the requester's acknowledgement, which closes it).
Every event stamped after the watch was serving is timed from its entry's time (the workflow
task's time on Temporal's clock, on this machine: at or before the moment it was recorded, so
the figure is an upper bound) to its arrival at the watcher. Events recorded before the watch
started are delivered at once on connecting and are not counted. ``in_flight`` cases run at a
time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass

from bench import cases
from bench.latency import _acknowledge_when_ready
from bench.stack import CALL_TIMEOUT, BenchStack
from bench.stats import percentile
from safeshare.client import CaseClient

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
    p99: float
    max: float


async def _watch_one(client: CaseClient, tag: str, i: int, samples: list[float]) -> None:
    path = cases.COMMON
    rid = f"{tag}-{i}"
    submitted = await client.submit(cases.request(path, rid))
    serving: float | None = None
    acknowledging: list[asyncio.Task[None]] = []
    async for event in client.watch_case(submitted.case_ref, deadline=WATCH_DEADLINE):
        arrived = time.time()
        if serving is None:
            serving = arrived  # the first event: what was recorded before the watch served
        at = event.entry.at.ToDatetime(dt.UTC).timestamp()
        if at > serving:
            samples.append(arrived - at)
        if event.entry.event == DELIVERED and not acknowledging:
            # Not awaited here: the watch goes on reading while the case closes.
            acknowledging.append(
                asyncio.create_task(_acknowledge_when_ready(client, submitted.case_ref, path))
            )
    await asyncio.gather(*acknowledging)


async def measure(stack: BenchStack, tag: str, n: int, in_flight: int = 8) -> WatchLatency:
    """Watch ``n`` common-path cases to their close, ``in_flight`` at a time."""
    samples: list[float] = []
    counter = iter(range(n))
    tls = stack.dev.pki.agency(cases.COMMON.requester)
    async with CaseClient.connect(
        stack.dev.gateway_target, tls, call_timeout=CALL_TIMEOUT
    ) as client:

        async def lane() -> None:
            for i in counter:
                await _watch_one(client, tag, i, samples)

        await asyncio.gather(*(lane() for _ in range(min(in_flight, n))))
    return WatchLatency(
        n, in_flight, len(samples), percentile(samples, 50), percentile(samples, 99),
        max(samples, default=0.0),
    )  # fmt: skip
