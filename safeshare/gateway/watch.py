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
workflow task (``describe``) or, with none pending, the gateway's clock minus
``SETTLE_MARGIN`` (which absorbs clock skew between the gateway and Temporal). A closed
workflow adds nothing more. Each workflow is described before it is queried, so every entry
stamped before the watermark is already in the query's answer.

How new events are learnt: by polling, every ``POLL_INTERVAL`` (describe + query of the case
and of each running exchange; closed exchanges are read once and remembered). Polling keeps
the cost of one watch fixed, at most ``2 x (1 + holders)`` small Temporal calls a second, and
``MAX_WATCHES`` caps the watches one gateway serves; long-polling every workflow's history
would hold one Temporal call open per workflow per watch instead. Events are therefore sent
within about ``POLL_INTERVAL + SETTLE_MARGIN`` of happening. When the call's deadline passes or
the client goes away, grpc cancels the handler, which cancels the poll loop and any Temporal
call in flight. The stream ends after the last event of a closed case.

Residual risk, stated: a workflow task that runs longer than ``SETTLE_MARGIN`` without showing
as pending could stamp an entry behind the watermark; workflow tasks here take milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_workflow_id, holder_exchange_workflow_id
from workflows.sharing_case import SharingCase

POLL_INTERVAL = dt.timedelta(seconds=1)
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
    client: Client,
    case_ref: str,
    holders: Sequence[str],
    closed: Closed,
    rpc_timeout: Callable[[], dt.timedelta],
) -> Snapshot:
    """One poll of the case and its running exchanges, each described before it is queried.

    Args:
        client: the Temporal client.
        case_ref: the case, already checked to be the caller's.
        holders: the case's holding agencies, in request order.
        closed: exchanges already read after they closed; updated in place.
        rpc_timeout: the timeout for each Temporal call (bounded by the caller's deadline).
    """
    now = dt.datetime.now(dt.UTC) - SETTLE_MARGIN
    case = client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))
    case_description = await case.describe(rpc_timeout=rpc_timeout())
    view = await case.query(SharingCase.case_view, rpc_timeout=rpc_timeout())
    case_running = is_running(case_description)
    copies = {h.holding_agency_id: h for h in view.record.holders}

    async def exchange(holder: str) -> tuple[list[pb.DecisionEntry], dt.datetime | None]:
        if holder in closed.by_holder:
            return closed.by_holder[holder], None
        handle = client.get_workflow_handle_for(
            HolderExchange.run, holder_exchange_workflow_id(case_ref, holder)
        )
        try:
            description = await handle.describe(rpc_timeout=rpc_timeout())
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # Not started yet; or, in a closed case, never started or no longer kept.
            copy = copies.get(holder)
            return (list(copy.entries) if copy else []), (now if case_running else None)
        record = await handle.query(HolderExchange.holder_record, rpc_timeout=rpc_timeout())
        mark = workflow_watermark(description, now)
        if mark is None:
            closed.by_holder[holder] = list(record.entries)
        return list(record.entries), mark

    found = await asyncio.gather(*(exchange(holder) for holder in holders))
    entries: dict[str, Sequence[pb.DecisionEntry]] = {"": list(view.record.entries)}
    marks = [workflow_watermark(case_description, now)]
    for holder, (holder_entries, mark) in zip(holders, found, strict=True):
        entries[holder] = holder_entries
        marks.append(mark)
    return Snapshot(entries, ranks(holders), earliest(marks))
