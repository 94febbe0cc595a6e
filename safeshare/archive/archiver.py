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
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import MetricMeter
from temporalio.service import RPCError

from safeshare.archive.checkpoint import DEFAULT_ORIGIN
from safeshare.archive.errors import (
    ArchiveConflict,
    ArchiveFull,
    ArchiveUnavailable,
    ReadBackMismatch,
)
from safeshare.archive.proofs import sign_checkpoint
from safeshare.archive.records import (
    ARCHIVED,
    CASE,
    CONSENT_WITHDRAWAL,
    PURGED,
    ArchiveRecord,
    History,
    IndexFields,
)
from safeshare.archive.store import ArchiveStore
from safeshare.audit.export import ExportError, HistoryFetcher
from safeshare.audit.histories import HistoryFacts, HistoryFileError, parse_history
from workflows import search_attributes as sa
from workflows.ids import case_ref_from_workflow_id, consent_withdrawal_workflow_id

log = structlog.get_logger("safeshare.archive")

WATERMARK = "archiver.watermark"
KINDS = {
    "SharingCase": CASE,
    "DisclosureCase": CASE,  # its result is a decision record too
    "ConsentWithdrawalNotice": CONSENT_WITHDRAWAL,
}
CLOSED_EVENTS = frozenset(
    f"EVENT_TYPE_WORKFLOW_EXECUTION_{kind}"
    for kind in ("COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED", "CANCELED")
)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class HistoryNotSettled(Exception):
    """A history changed between two reads, or has not closed yet: archived on a later sweep."""


class UnreadableWorkflow(Exception):
    """A listed workflow the archiver cannot read: its id is not a SafeShare workflow's, or
    its history is not one the archiver can parse. Retried on every sweep (see above)."""


# What reading a history or a workflow id raises when it is not what SafeShare writes.
_UNREADABLE = (
    HistoryFileError, ValueError, KeyError, IndexError, TypeError, AttributeError,
    json_format.ParseError, DecodeError,
)  # fmt: skip


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
class ArchiverMetrics:
    """Cases archived, failures and the lag, in this process and on Prometheus if a meter."""

    meter: MetricMeter | None = None
    archived: int = 0
    failures: int = 0
    lag_seconds: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._archived = self._failures = self._lag = self._retention = self._threshold = None
        if self.meter is not None:
            self._archived = self.meter.create_counter(
                "safeshare_archive_cases_archived", "Closed workflows archived and read back."
            )
            self._failures = self.meter.create_counter(
                "safeshare_archive_failures", "Archive writes that failed or did not check."
            )
            self._lag = self.meter.create_gauge_float(
                "safeshare_archive_lag_seconds",
                "Age of the oldest closed case not yet archived (0: none).",
                "s",
            )
            self._retention = self.meter.create_gauge_float(
                "safeshare_archive_retention_seconds",
                "The namespace's retention the archiver measures its lag against.",
                "s",
            )
            self._threshold = self.meter.create_gauge_float(
                "safeshare_archive_lag_alert_seconds",
                "The lag past which the archive alerts: the set fraction of the retention.",
                "s",
            )

    def set_retention(self, retention: dt.timedelta, fraction: float) -> None:
        """The retention and the lag alert threshold (``fraction`` of it), for the alert rule."""
        if self._retention is not None and self._threshold is not None:
            self._retention.set(retention.total_seconds())
            self._threshold.set(retention.total_seconds() * fraction)

    def count_archived(self, kind: str) -> None:
        """One more record archived."""
        self.archived += 1
        if self._archived is not None:
            self._archived.add(1, {"kind": kind})

    def count_failure(self, reason: str) -> None:
        """One more failure, by reason code."""
        self.failures += 1
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
        if self._failures is not None:
            self._failures.add(1, {"reason": reason})

    def set_lag(self, seconds: float) -> None:
        """The lag now."""
        self.lag_seconds = seconds
        if self._lag is not None:
            self._lag.set(seconds)


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
            record = await self.build_record(execution)
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

    async def build_record(self, execution: WorkflowExecution) -> ArchiveRecord:
        """The record of one closed workflow, from Temporal (no payload keys needed).

        Raises:
            HistoryNotSettled: a history in it has not closed.
            UnreadableWorkflow: not a SafeShare workflow, or a history that does not parse.
            ExportError, RPCError: Temporal refused.
        """
        try:
            kind = KINDS[execution.workflow_type]
            case_ref = case_ref_from_workflow_id(execution.id)
            if kind == CONSENT_WITHDRAWAL and _notice_holder(execution.id) is None:
                raise ValueError("not a consent-withdrawal notice's workflow id")
            if kind == CASE:
                exported = await self._fetcher.case(execution.id, execution.run_id, notices=False)
            else:
                exported = [await self._fetcher.history(execution.id, execution.run_id)]
            histories = []
            for item in exported:
                events = parse_history(item.content)
                facts = HistoryFacts.of(events)
                if facts.last_event_type not in CLOSED_EVENTS:
                    raise HistoryNotSettled(f"{item.workflow_id} has not closed")
                histories.append(
                    History(item.workflow_id, item.run_id, facts.workflow_type, item.content)
                )
            result = result_payload(parse_history(histories[0].content))
        except _UNREADABLE as err:
            raise UnreadableWorkflow("the archiver cannot read this workflow") from err
        children = [h.workflow_id for h in histories[1:]]
        return ArchiveRecord(
            record_id=execution.id,
            case_ref=case_ref,
            kind=kind,
            run_id=execution.run_id,
            index=await self._index(execution, children),
            histories=histories,
            result=result,
        )

    async def _index(self, execution: WorkflowExecution, children: Sequence[str]) -> IndexFields:
        attributes = execution.typed_search_attributes
        override = bool(attributes.get(sa.OVERRIDE_USED))
        escalated = bool(attributes.get(sa.ESCALATED))
        for child in children:
            described = await self._client.get_workflow_handle(child).describe()
            override = override or bool(described.typed_search_attributes.get(sa.OVERRIDE_USED))
            escalated = escalated or bool(described.typed_search_attributes.get(sa.ESCALATED))
        holders = tuple(attributes.get(sa.HOLDING_AGENCY) or ())
        if not holders and execution.workflow_type == "ConsentWithdrawalNotice":
            holders = (_notice_holder(execution.id) or "",)
        outcome = attributes.get(sa.OUTCOME) or (
            "" if execution.status == WorkflowExecutionStatus.COMPLETED
            else (execution.status.name if execution.status else "")
        )  # fmt: skip
        return IndexFields(
            closed_at=_rfc3339(execution.close_time),
            opened_at=_rfc3339(execution.start_time),
            requesting_agency=attributes.get(sa.REQUESTING_AGENCY) or "",
            holding_agencies=holders,
            purpose=attributes.get(sa.PURPOSE) or "",
            urgency=attributes.get(sa.URGENCY) or "",
            outcome=outcome,
            override_used=override,
            escalated=escalated,
            protocol_version=self.settings.protocol_version,
            disclosure_kind=attributes.get(sa.CASE_KIND) or "",
            recipient_agencies=tuple(attributes.get(sa.RECIPIENT_AGENCY) or ()),
        )

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


def _notice_holder(workflow_id: str) -> str | None:
    """The holder named by a consent-withdrawal notice's id, or None if it is not one."""
    ref = case_ref_from_workflow_id(workflow_id)
    for holder in workflow_id.split(".")[1:2]:
        if consent_withdrawal_workflow_id(ref, holder) == workflow_id:
            return holder
    return None


def _ref_or_blank(workflow_id: str) -> str:
    try:
        return case_ref_from_workflow_id(workflow_id)
    except ValueError:
        return ""


def result_payload(events: list[dict[str, Any]]) -> bytes:
    """The workflow's result payload exactly as stored (encrypted stays encrypted), or b""."""
    if not events:
        return b""
    attributes = events[-1].get("workflowExecutionCompletedEventAttributes") or {}
    payloads = (attributes.get("result") or {}).get("payloads") or []
    if not payloads:
        return b""
    payload = json_format.ParseDict(payloads[0], Payload(), ignore_unknown_fields=True)
    return payload.SerializeToString(deterministic=True)


def _rfc3339(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at else ""


def protocol_version_of(registry_path: Path) -> str:
    """The protocol version in force in the registry file (empty if unreadable)."""
    import tomllib

    try:
        return str(tomllib.loads(registry_path.read_text()).get("protocol_version", ""))
    except (OSError, ValueError):
        return ""
