"""WatchCase: a case's events, as they happen, in one stable order that survives reconnects.

The events are the decision entries of the case workflow and of each holder's exchange. Each
workflow appends its own entries in order, stamped with workflow time, but the workflows run
side by side, so the gateway must merge them into one numbered sequence that every connection
sees the same way (a client resumes with ``from_event=N`` and gets N, N+1, ... again).

The order is ``(entry time, source, index)``: the case before exchanges, the holders in
request order, then each source's own order. That order is only stable if an event is never
sent before an earlier-stamped event that has not become visible yet, so an event is sent once
it is *settled*: stamped before the **watermark**, the earliest time any workflow could still
stamp a new entry with. For each running workflow that is the scheduled time of its pending
workflow task (``describe``); with none pending, any entry it stamps later is stamped with a
later task's time, so its watermark is the latest server time the gateway knows: the newest
event time seen in the case's histories before the describes (``HistoryFeed.latest``), or the
gateway's clock minus ``SETTLE_MARGIN`` (which absorbs clock skew between the gateway and
Temporal) when that is later. A closed workflow adds nothing more. Each workflow's entries and
its pending task come from one ``describe`` (its view is in its memo, ``safeshare.cases.reader``;
a workflow started before views were published is described, then queried).

How new events are learnt: pushed. ``HistoryFeed`` long-polls each workflow's history
(GetWorkflowExecutionHistory with ``wait_new_event``); a completed workflow task (which wrote
the memo), a close, or an exchange starting wakes the watch at once, which takes a snapshot:
one describe per running workflow (closed exchanges are read once and remembered). Events are
therefore sent within a few milliseconds of the task that recorded them completing. Without a
wake, the watch still takes a snapshot every ``poll_interval`` (the servicer's), so a lost long
poll or a watermark that only the gateway's clock can move costs at most that. A watch holds
``1 + holders`` long polls open; ``MAX_WATCHES`` caps the watches one gateway serves. When the
call's deadline passes or the client goes away, grpc cancels the handler, which cancels the
long polls and any Temporal call in flight. The stream ends after the last event of a closed
case.

Residual risks, stated: a workflow task that runs without showing as pending could stamp an
entry behind the watermark (workflow tasks here take milliseconds and describe shows them, and
the gateway clock path keeps ``SETTLE_MARGIN``); in a cluster of several history hosts, their
clocks' skew could order two workflows' entries stamped within that skew differently from a
later reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, HistoryEventFilterType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.cases.reader import CaseViews
from safeshare.open_cases import Described

POLL_INTERVAL = dt.timedelta(seconds=1)
"""How often a watch looks without being woken by its histories."""
SETTLE_MARGIN = dt.timedelta(seconds=1)
MAX_WATCHES = 200
MAX_FROM_EVENT = 1_000_000


@dataclass
class Snapshot:
    """What one poll saw: every source's entries so far and the watermark.

    ``entries`` maps a holder (``""`` for the case itself) to its entries in its own order;
    ``ranks`` orders the sources; ``watermark`` is None once the case has closed.
    """

    entries: Mapping[str, Sequence[pb.DecisionEntry]]
    ranks: Mapping[str, int]
    watermark: dt.datetime | None


@dataclass
class Closed:
    """Entries of exchanges already seen closed: final, so never read again in this watch."""

    by_holder: dict[str, list[pb.DecisionEntry]] = field(default_factory=dict)


def settled_events(snapshot: Snapshot) -> list[service_pb.CaseEvent]:
    """The settled events of ``snapshot``, numbered from 1 in the stable order.

    Every later snapshot's settled events start with these, numbered the same.
    """
    keyed = []
    for holder, entries in snapshot.entries.items():
        rank = snapshot.ranks[holder]
        for index, entry in enumerate(entries):
            keyed.append(((entry.at.ToNanoseconds(), rank, index), holder, entry))
    keyed.sort(key=lambda item: item[0])
    limit = None if snapshot.watermark is None else _nanos(snapshot.watermark)
    events: list[service_pb.CaseEvent] = []
    for (at, _, _), holder, entry in keyed:
        if limit is not None and at >= limit:
            break
        events.append(
            service_pb.CaseEvent(number=len(events) + 1, holding_agency_id=holder, entry=entry)
        )
    return events


def ranks(holders: Sequence[str]) -> dict[str, int]:
    """Source ranks: the case first, then the holders in request order."""
    return {"": 0} | {holder: n for n, holder in enumerate(holders, start=1)}


def is_running(description: WorkflowExecutionDescription) -> bool:
    """Whether the described workflow may still append entries."""
    return description.status == WorkflowExecutionStatus.RUNNING


def workflow_watermark(
    description: WorkflowExecutionDescription | None, now: dt.datetime
) -> dt.datetime | None:
    """The earliest time this workflow could still stamp an entry with; None when closed.

    Args:
        description: the workflow described before it was queried; None if it has not
            started (its first entry comes after ``now``).
        now: the gateway's clock less ``SETTLE_MARGIN``, read before any describe.
    """
    if description is None:
        return now
    if not is_running(description):
        return None
    raw = description.raw_description
    if raw.HasField("pending_workflow_task"):
        task = raw.pending_workflow_task
        scheduled = (
            task.original_scheduled_time
            if task.HasField("original_scheduled_time")
            else task.scheduled_time
        )
        return min(now, scheduled.ToDatetime(dt.UTC))
    return now


def earliest(watermarks: Sequence[dt.datetime | None]) -> dt.datetime | None:
    """The case's watermark: the earliest of its running workflows'; None if all closed."""
    running = [w for w in watermarks if w is not None]
    return min(running) if running else None


def _nanos(at: dt.datetime) -> int:
    delta = at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


async def take_snapshot(
    views: CaseViews,
    case_ref: str,
    holders: Sequence[str],
    closed: Closed,
    rpc_timeout: Callable[[], dt.timedelta],
    server_time: dt.datetime | None = None,
) -> Snapshot:
    """One look at the case and its running exchanges: one describe each (a workflow started
    before views were published is described, then queried).

    Args:
        views: the case reader.
        case_ref: the case, already checked to be the caller's.
        holders: the case's holding agencies, in request order.
        closed: exchanges already read after they closed; updated in place.
        rpc_timeout: the timeout for each Temporal call (bounded by the caller's deadline).
        server_time: a time Temporal's clock had passed before this call (the newest event
            time seen in the case's histories), if known.
    """
    now = dt.datetime.now(dt.UTC) - SETTLE_MARGIN
    if server_time is not None:
        now = max(now, server_time)
    # The case and its exchanges are described side by side: each workflow's entries and
    # watermark come from its own describe, so their order does not matter.
    case_read = asyncio.ensure_future(views.described_case(case_ref, rpc_timeout()))

    async def exchange(holder: str) -> tuple[list[pb.DecisionEntry], dt.datetime | None]:
        if holder in closed.by_holder:
            return closed.by_holder[holder], None
        described = await views.described_exchange(case_ref, holder, rpc_timeout())
        if described is None:
            # Not started yet; or, in a closed case, never started or no longer kept.
            case = await case_read
            copy = {h.holding_agency_id: h for h in _view(case).record.holders}.get(holder)
            return (list(copy.entries) if copy else []), (now if case.running else None)
        # No record: its first task has not completed (its scheduled time holds the watermark).
        record = described.view
        entries = list(record.entries) if record is not None else []
        mark = workflow_watermark(described.description, now)
        if mark is None:
            closed.by_holder[holder] = entries
        return entries, mark

    try:
        found = await asyncio.gather(*(exchange(holder) for holder in holders))
        case = await case_read
    finally:
        # An exchange's read failed first: the case's read is not needed (nor its failure).
        if not case_read.done():
            case_read.cancel()
        elif not case_read.cancelled():
            case_read.exception()
    view = _view(case)
    entries: dict[str, Sequence[pb.DecisionEntry]] = {"": list(view.record.entries)}
    marks = [workflow_watermark(case.description, now)]
    for holder, (holder_entries, mark) in zip(holders, found, strict=True):
        entries[holder] = holder_entries
        marks.append(mark)
    return Snapshot(entries, ranks(holders), earliest(marks))


def _view(case: Described[pb.CaseView]) -> pb.CaseView:
    return case.view or pb.CaseView()


_WAKES = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)
"""History events after which a snapshot may show something new."""
LONG_POLL_TIMEOUT = dt.timedelta(seconds=30)
"""Above the server's own long-poll interval (20 s), after which it answers with no events."""
RETRY_AFTER = dt.timedelta(seconds=1)


class HistoryFeed:
    """Long-polls the histories of a case's workflows and wakes the watch when one of them
    records a workflow task, closes or starts an exchange."""

    def __init__(self, client: Client, workflow_ids: Sequence[str]) -> None:
        self._client = client
        self._ids = list(workflow_ids)
        self._woken = asyncio.Event()
        self._polls: dict[str, asyncio.Task[None]] = {}
        self._missing: set[str] = set()
        self.latest: dt.datetime | None = None
        """The newest event time seen in any of the histories: Temporal's clock had passed it."""

    async def __aenter__(self) -> Self:
        self.follow()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for poll in self._polls.values():
            poll.cancel()
        await asyncio.gather(*self._polls.values(), return_exceptions=True)

    def follow(self) -> None:
        """Long-poll every workflow not followed yet (again for one that had not started)."""
        for workflow_id in self._ids:
            if workflow_id not in self._polls or workflow_id in self._missing:
                self._missing.discard(workflow_id)
                self._polls[workflow_id] = asyncio.create_task(self._poll(workflow_id))

    async def wait(self, at_most: dt.timedelta) -> None:
        """Until a followed history records something new, or ``at_most``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), at_most.total_seconds())
        self._woken.clear()
        self.follow()

    async def _poll(self, workflow_id: str) -> None:
        request = GetWorkflowExecutionHistoryRequest(
            namespace=self._client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id),
            wait_new_event=True,
            history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT,
            skip_archival=True,
        )
        while True:
            try:
                response = await self._client.workflow_service.get_workflow_execution_history(
                    request, timeout=LONG_POLL_TIMEOUT
                )
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    self._missing.add(workflow_id)  # not started yet: followed again on a wake
                    return
                # Temporal unreachable or our own timeout: the snapshots go on meanwhile.
                await asyncio.sleep(RETRY_AFTER.total_seconds())
                continue
            events = response.history.events
            if events:
                newest = events[-1].event_time.ToDatetime(dt.UTC)
                self.latest = newest if self.latest is None else max(self.latest, newest)
            if any(event.event_type in _WAKES for event in events):
                self._woken.set()
            if not response.next_page_token:
                return  # closed, and its whole history read
            request.next_page_token = response.next_page_token
