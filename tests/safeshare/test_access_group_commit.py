"""Concurrent appends are committed together: each caller gets its own events back, durable,
with one checkpoint per batch, and a batch the log refuses fails every caller in it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safeshare.access.group_commit import GroupCommit
from safeshare.access.log import AccessLog, AccessLogError, verify_log
from tests.safeshare.test_access_log import event


async def test_concurrent_callers_share_commits_and_each_gets_its_own_events(
    tmp_path: Path,
) -> None:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    commits = GroupCommit(log)
    callers = 40
    answers = await asyncio.gather(
        *(commits.append([event(n), event(n + 1000)]) for n in range(callers))
    )
    # Each caller's two events, in its order, numbered where they were stored.
    assert [[e.user_id for e in got] for got in answers] == [
        [f"practitioner-{n}", f"practitioner-{n + 1000}"] for n in range(callers)
    ]
    seqs = sorted(e.seq for got in answers for e in got)
    assert seqs == list(range(2 * callers))
    stored = {e.seq: e.user_id for e in log.events()}
    assert all(stored[e.seq] == e.user_id for got in answers for e in got)
    # All of them arrived before the writer ran: one transaction, one checkpoint.
    assert _checkpoints(log) == 1
    # Callers that arrive after a batch was taken go in the next one, together.
    first = asyncio.create_task(commits.append([event(5000)]))
    await asyncio.sleep(0.001)
    await asyncio.gather(first, *(commits.append([event(6000 + n)]) for n in range(10)))
    assert _checkpoints(log) == 3
    assert verify_log(log.path, log.verifier).size == 2 * callers + 11


def _checkpoints(log: AccessLog) -> int:
    with sqlite3.connect(log.path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()
    return int(count)


async def test_a_batch_the_log_refuses_fails_every_caller_in_it(tmp_path: Path) -> None:
    unsigned = AccessLog(tmp_path / "access.db", key=None)  # refuses every append
    commits = GroupCommit(unsigned)
    answers = await asyncio.gather(
        *(commits.append([event(n)]) for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(a, AccessLogError) for a in answers)
    assert unsigned.events() == []


async def test_a_caller_that_goes_away_still_has_its_event_written(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    commits = GroupCommit(log)
    leaving = asyncio.create_task(commits.append([event(7)]))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await commits.append([event(8)])
    assert [e.user_id for e in log.events()] == ["practitioner-7", "practitioner-8"]
