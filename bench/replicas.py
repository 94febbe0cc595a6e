"""Replicas: hub throughput with one and two hub processes on the same server, and the latency
cost of losing one replica of every part (a hub, a gateway, an adapter of each agency).

Run alone with ``make bench-replicas`` (``python -m bench --replicas``): the stack starts with
two gateways and two adapters per agency, as ``safeshare dev --replicas 2`` would, and one hub;
the second hub is started for the two-hub batch and kept for the loss phase.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from bench import cases, flows, latency
from bench.procstat import sample
from bench.stack import BenchStack
from bench.stats import percentile, ratio
from workflows.ids import HUB_TASK_QUEUE

SECOND_REPLICAS = ("hub-2", "gateway-2")
READY_TIMEOUT = 90.0


async def _hub_pollers(stack: BenchStack) -> int:
    reply = await stack.safeshare.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=stack.safeshare.namespace,
            task_queue=TaskQueue(name=HUB_TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len({p.identity for p in reply.pollers})


async def _until_hubs(stack: BenchStack, count: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while await _hub_pollers(stack) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} hub workers did not poll in time")
        await asyncio.sleep(0.5)


def _cpu(stack: BenchStack) -> dict[str, float]:
    """CPU seconds so far of the server and every SafeShare process, by name."""
    return {name: sample(pid).cpu_seconds for name, pid in stack.pids().items()}


async def _timed_batch(stack: BenchStack, n: int, tag: str) -> dict[str, Any]:
    cpu_before, began = _cpu(stack), time.monotonic()
    batch = await flows.safeshare_batch(stack, cases.COMMON, n, tag)
    wall = time.monotonic() - began
    cpu_after = _cpu(stack)
    used = {
        name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1)
        for name in cpu_after
        if name in ("temporal", "gateway", "gateway-2") or name.startswith("hub")
    }
    return {
        "n": n,
        "per_s": batch.per_second,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": used,
        "cores_busy": round(sum(used.values()) / wall, 2) if wall else 0.0,
    }


async def hub_throughput(stack: BenchStack, n: int) -> dict[str, Any]:
    """The common path, ``n`` cases, with one hub process and then with two."""
    await _until_hubs(stack, 1)
    one = await _timed_batch(stack, n, "rep-one-hub")
    await stack.dev.add_hub("hub-2")
    await _until_hubs(stack, 2)
    await flows.safeshare_batch(stack, cases.COMMON, 5, "rep-warm-hub-2")
    two = await _timed_batch(stack, n, "rep-two-hubs")
    return {"one": one, "two": two, "ratio": ratio(two["per_s"], one["per_s"])}


def _summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)}


async def replica_loss(stack: BenchStack, n: int) -> dict[str, Any]:
    """Sequential submit → records stored latency before, while one replica of each part is
    down (killed as the window starts, cases in flight), and after they are back."""
    lost = [*SECOND_REPLICAS] + [
        c.name
        for c in stack.dev.processes.children
        if c.name.startswith("adapter-") and c.name.endswith("-2")
    ]
    before = await latency.safeshare_latencies(stack, n, "rep-before")
    during_task = asyncio.create_task(latency.safeshare_latencies(stack, n, "rep-during"))
    await asyncio.sleep(0.2)  # the first case of the window is in flight
    killed = [name for name in lost if stack.dev.processes.kill(name)]
    during = await during_task
    for name in killed:
        await stack.dev.processes.restart(name)
    await _until_hubs(stack, 2)
    await stack.dev.wait_for_gateways()
    after = await latency.safeshare_latencies(stack, n, "rep-after")
    return {
        "killed": killed,
        "before": _summary(before),
        "during": _summary(during),
        "after": _summary(after),
    }


async def run(stack: BenchStack, n_throughput: int, n_latency: int) -> dict[str, Any]:
    """Both replica phases."""
    return {
        "throughput": await hub_throughput(stack, n_throughput),
        "loss": await replica_loss(stack, n_latency),
    }
