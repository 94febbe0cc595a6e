"""Audit speed: fetch the histories of N closed cases and replay them through the current
workflow code with the codec's converter, against a bare Replayer loop over the baseline's
histories of the same count."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, WorkflowRunner

FETCH_IN_FLIGHT = 50


@dataclass(frozen=True)
class Replay:
    """Cases fetched and replayed, and how long each half took."""

    cases: int
    histories: int
    fetch_seconds: float
    replay_seconds: float
    failures: int
    replay_cpu_seconds: float = 0.0
    """CPU seconds of this process while replaying (every thread): unlike the wall clock,
    barely moved by other work on a shared machine."""

    @property
    def replay_per_second(self) -> float:
        """Cases (with all their workflows) replayed per second."""
        return self.cases / self.replay_seconds if self.replay_seconds else 0.0

    @property
    def replay_per_cpu_second(self) -> float:
        """Cases replayed per CPU second of the replaying process."""
        return self.cases / self.replay_cpu_seconds if self.replay_cpu_seconds else 0.0


async def fetch(client: Client, workflow_ids: list[str]) -> list[WorkflowHistory]:
    """Histories of ``workflow_ids``, ``FETCH_IN_FLIGHT`` at a time."""
    gate = asyncio.Semaphore(FETCH_IN_FLIGHT)

    async def one(wid: str) -> WorkflowHistory:
        async with gate:
            return await client.get_workflow_handle(wid).fetch_history()

    return list(await asyncio.gather(*(one(w) for w in workflow_ids)))


async def replay(
    client: Client, cases: int, workflow_ids: list[str], workflows: list[type],
    converter: DataConverter, runner: WorkflowRunner | None = None,
) -> Replay:  # fmt: skip
    """Fetch and replay ``workflow_ids`` (every workflow of ``cases`` cases)."""
    t0 = time.perf_counter()
    histories = await fetch(client, workflow_ids)
    fetched = time.perf_counter() - t0
    return await replay_fetched(histories, cases, workflows, converter, runner, fetched)


async def replay_fetched(
    histories: list[WorkflowHistory], cases: int, workflows: list[type],
    converter: DataConverter, runner: WorkflowRunner | None = None, fetch_seconds: float = 0.0,
) -> Replay:  # fmt: skip
    """Replay ``histories`` (every workflow of ``cases`` cases) already fetched."""
    t1 = time.perf_counter()
    replayer = (
        Replayer(workflows=workflows, data_converter=converter)
        if runner is None
        else Replayer(workflows=workflows, data_converter=converter, workflow_runner=runner)
    )
    failures = 0
    cpu = time.process_time()
    async with replayer.workflow_replay_iterator(_iterate(histories)) as results:
        async for result in results:
            failures += result.replay_failure is not None
    cpu = time.process_time() - cpu
    return Replay(cases, len(histories), fetch_seconds, time.perf_counter() - t1, failures, cpu)


def save(folder: Path, histories: list[WorkflowHistory]) -> None:
    """Write ``histories`` to ``folder`` (new), one JSON file per workflow, as ``load`` reads."""
    folder.mkdir(parents=True)
    for number, history in enumerate(histories):
        document = {"workflowId": history.workflow_id, "history": json.loads(history.to_json())}
        (folder / f"{number:05d}.json").write_text(json.dumps(document))


def load(folder: Path) -> list[WorkflowHistory]:
    """The histories ``save`` wrote to ``folder``, in the same order."""
    found = []
    for path in sorted(folder.glob("*.json")):
        document = json.loads(path.read_text())
        found.append(WorkflowHistory.from_json(document["workflowId"], document["history"]))
    return found


async def _iterate(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history
