"""The archiver: copies every closed case out of Temporal before retention deletes it.

A worker loop with a durable watermark (the archive's own ``meta`` table), not a workflow on a
Schedule: each sweep lists the decision-carrying workflows that closed since the watermark
(less an overlap, because visibility is eventually consistent), skips those archived already,
and archives the rest one by one:

1. fetch the histories as stored (a case with its exchanges; a consent-withdrawal notice
   alone) and check that every one has closed;
2. ``put`` the record (histories, encrypted result, index fields from visibility);
3. fetch the case's own history again: if it changed between the two reads, refuse;
4. ``confirm``: read back, check every digest, append the leaf; only now is it counted.

After a batch it signs a checkpoint. A record that fails its check is never counted and
raises an operator alert (``operator_alert``, kind ``archive_check_failed``); the archive
database being down stops the sweep, which the next one retries. The watermark only moves
past cases that are archived, so a killed archiver loses nothing: the next one starts where
the last confirmed case left off, and ``put``/``confirm`` are idempotent.

A workflow the archiver cannot read (its id is not a SafeShare one, or its history does not
parse) does not stop the sweep: it is counted as a failure with reason ``unreadable``, logged
(``archive_unreadable``, with its run id, never its workflow id, which SafeShare did not
choose), and the sweep goes on with the rest. It is retried on every sweep rather than
recorded and passed: the watermark stays at its close time and the lag counts it, so nothing
closed after it is skipped, the unreadable alert fires for as long as it is there, and if it is
a case that retention would delete the lag alert pages before it does. It takes no place in
the batch, so any number of them cannot hold up the readable cases.

Why not a scheduled workflow: the sweep's every step is I/O against the archive database,
so a workflow would be a thin shell over activities, adding a workflow execution (and its
history) to the namespace every interval and a second retry layer; the loop gets the same
durability from the watermark and the idempotent write, and an outage is retried by the
next sweep. Several archivers may run: the writer's lock orders their appends, and a
record they both archive is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from safeshare.archive.checkpoint import DEFAULT_ORIGIN
from safeshare.archive.errors import (
    ArchiveConflict,
    ArchiveFull,
    ArchiveUnavailable,
    ReadBackMismatch,
)
from safeshare.archive.metrics import ArchiverMetrics
from safeshare.archive.proofs import sign_checkpoint
from safeshare.archive.record_builder import (
    KINDS,
    HistoryNotSettled,
    RecordBuilder,
    UnreadableWorkflow,
)
from safeshare.archive.records import ARCHIVED, PURGED
from safeshare.archive.store import ArchiveStore
from safeshare.audit.export import ExportError, HistoryFetcher
from workflows.ids import case_ref_from_workflow_id

log = structlog.get_logger("safeshare.archive")

WATERMARK = "archiver.watermark"
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ArchiverSettings:
    """How the archiver sweeps."""

    interval: float = 15.0
    """Seconds between sweeps."""
    batch_size: int = 200
    """Cases archived per sweep at most (a checkpoint is signed after each batch)."""
    overlap: dt.timedelta = dt.timedelta(minutes=10)
    """How far before the watermark each sweep looks again (visibility lags)."""
    retention: dt.timedelta = dt.timedelta(days=7)
    """The namespace's retention: what the lag is measured against."""
    lag_alert_fraction: float = 0.5
    """Alert when the oldest unarchived closed case is older than this share of retention."""
    origin: str = DEFAULT_ORIGIN
    protocol_version: str = ""
    """The Information Sharing Protocol in force (from the registry), recorded per case."""


@dataclass
class SweepResult:
    """What one sweep did."""

    found: int = 0
    archived: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Every workflow that was tried and not archived, the unreadable ones included."""
    unreadable: list[str] = field(default_factory=list)
    lag: dt.timedelta = dt.timedelta(0)
    checkpoint_size: int | None = None
    unavailable: bool = False


class Archiver:
    """Sweeps Temporal for closed cases and archives them (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        store: ArchiveStore,
        signing_key: Ed25519PrivateKey,
        settings: ArchiverSettings | None = None,
        metrics: ArchiverMetrics | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._key = signing_key
        self.settings = settings or ArchiverSettings()
        self.metrics = metrics or ArchiverMetrics()
        self.metrics.set_retention(self.settings.retention, self.settings.lag_alert_fraction)
        self._fetcher = HistoryFetcher(client, concurrency=10)
        self.builder = RecordBuilder(client, self._fetcher, self.settings.protocol_version)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval)

    async def sweep(self, now: dt.datetime | None = None) -> SweepResult:
        """One sweep: archive what closed since the watermark, sign a checkpoint."""
        result = SweepResult()
        started = time.perf_counter()
        try:
            watermark = await self._call(self._store.get_meta, WATERMARK)
            since = (dt.datetime.fromisoformat(watermark) if watermark else _EPOCH) - (
                self.settings.overlap
            )
            closed = await self._closed_since(since)
            known = await self._call(self._store.known, [e.id for e in closed])
            todo = [e for e in closed if known.get(e.id) not in (ARCHIVED, PURGED)]
            result.found = len(todo)
            tried = 0
            for execution in todo:
                if tried >= self.settings.batch_size:
                    break
                outcome = await self._archive_one(execution)
                if outcome is _Outcome.ARCHIVED:
                    result.archived.append(execution.id)
                else:
                    result.failed.append(execution.id)
                if outcome is _Outcome.UNREADABLE:
                    result.unreadable.append(execution.id)
                else:
                    tried += 1
            pending = [e for e in todo if e.id not in result.archived]
            await self._advance_watermark(closed, pending)
            if result.archived:
                signed = await self._call(
                    sign_checkpoint, self._store, self._key, self.settings.origin
                )
                result.checkpoint_size = signed[0] if signed else None
            result.lag = self._lag(pending, now or dt.datetime.now(dt.UTC))
        except ArchiveUnavailable as err:
            # 👉 Nothing of this sweep's unconfirmed records is counted; the next sweep retries
            # (the watermark only ever moved past confirmed ones).
            result.unavailable = True
            full = isinstance(err, ArchiveFull)
            self.metrics.count_failure("archive_full" if full else "archive_unavailable")
            log.warning("archive_full" if full else "archive_unavailable",
                        error_type=type(err).__name__,
                        reason="disk_full" if full else "database_unreachable")  # fmt: skip
            return result
        except RPCError as err:
            self.metrics.count_failure("temporal_unavailable")
            log.warning("archive_sweep_failed", temporal_status=err.status.name)
            return result
        self.metrics.set_lag(result.lag.total_seconds())
        if result.lag > self.settings.retention * self.settings.lag_alert_fraction:
            lag_ms = int(result.lag.total_seconds() * 1000)
            log.error("operator_alert", kind="archive_lag", duration_ms=lag_ms, count=result.found)
        if result.archived or result.failed:
            log.info(
                "archive_sweep", count=len(result.archived), attempt=len(result.failed),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )  # fmt: skip
        return result

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def _closed_since(self, since: dt.datetime) -> list[WorkflowExecution]:
        types = " OR ".join(f"WorkflowType = '{name}'" for name in KINDS)
        query = (
            f"({types}) AND ExecutionStatus != 'Running' "
            f"AND ExecutionStatus != 'ContinuedAsNew' "
            f"AND CloseTime >= '{since.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        )
        found = [e async for e in self._client.list_workflows(query)]
        return sorted(found, key=lambda e: e.close_time or _EPOCH)

    async def _archive_one(self, execution: WorkflowExecution) -> _Outcome:
        try:
            record = await self.builder.build(execution)
            await self._call(self._store.put, record)
            # 👉 Read the case's history once more: a record is only ever confirmed from two
            # identical reads, so one that changed in between (a reset) is not archived.
            again = await self._fetcher.history(record.record_id, record.run_id)
            if again.content != record.histories[0].content:
                raise HistoryNotSettled("history changed between two reads")
            await self._call(self._store.confirm, record.record_id, record.digest)
        except ArchiveUnavailable:
            raise
        except UnreadableWorkflow as err:
            self.metrics.count_failure("unreadable")
            # 👉 The run id (Temporal's own) and the type, not the workflow id: a workflow
            # SafeShare did not start may carry anything in its id.
            log.error("archive_unreadable", reason="unreadable", run_id=execution.run_id,
                      temporal_workflow=execution.workflow_type,
                      error_type=type(err.__cause__ or err).__name__)  # fmt: skip
            return _Outcome.UNREADABLE
        except (ArchiveConflict, ReadBackMismatch) as err:
            self.metrics.count_failure("check_failed")
            log.error(
                "operator_alert", kind="archive_check_failed",
                case_ref=_ref_or_blank(execution.id), error_type=type(err).__name__,
            )  # fmt: skip
            return _Outcome.FAILED
        except (HistoryNotSettled, ExportError, RPCError) as err:
            self.metrics.count_failure("not_settled")
            log.warning("archive_retry_later", case_ref=_ref_or_blank(execution.id),
                        error_type=type(err).__name__)  # fmt: skip
            return _Outcome.FAILED
        self.metrics.count_archived(record.kind)
        log.info("case_archived", case_ref=record.case_ref, kind=record.kind)
        return _Outcome.ARCHIVED

    async def _advance_watermark(
        self, closed: Sequence[WorkflowExecution], pending: Sequence[WorkflowExecution]
    ) -> None:
        # Never past a case not yet archived: the watermark is where the next sweep starts.
        times = [e.close_time for e in (pending or closed) if e.close_time]
        if not times:
            return
        mark = min(times) if pending else max(times)
        await self._call(self._store.set_meta, WATERMARK, mark.isoformat())

    def _lag(self, pending: Sequence[WorkflowExecution], now: dt.datetime) -> dt.timedelta:
        times = [e.close_time for e in pending if e.close_time]
        return max(now - min(times), dt.timedelta(0)) if times else dt.timedelta(0)


class _Outcome(enum.Enum):
    """What archiving one workflow came to."""

    ARCHIVED = "archived"
    FAILED = "failed"
    """Not archived this time: not settled, Temporal refused, or its check failed."""
    UNREADABLE = "unreadable"


def _ref_or_blank(workflow_id: str) -> str:
    try:
        return case_ref_from_workflow_id(workflow_id)
    except ValueError:
        return ""


def protocol_version_of(registry_path: Path) -> str:
    """The protocol version in force in the registry file (empty if unreadable)."""
    import tomllib

    try:
        return str(tomllib.loads(registry_path.read_text()).get("protocol_version", ""))
    except (OSError, ValueError):
        return ""
