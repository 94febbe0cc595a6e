"""WatchCase for one party: the checks, the access record, then the case's events as the
party may see them, numbered in the stable order of ``safeshare.gateway.watch``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import grpc
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.access.events import Action
from safeshare.cases.reader import CaseViews
from safeshare.gateway import access, disclosure_view, parties, party_view, validation, watch
from safeshare.gateway.errors import invalid_argument
from safeshare.gateway.fields import (
    FieldViolation,
)
from safeshare.gateway.frame import RpcFrame, current, rpc_timeout
from safeshare.gateway.identity import caller_agency
from workflows.ids import case_workflow_id, holder_exchange_workflow_id


async def watch_case(
    client: Client,
    views: CaseViews,
    frame: RpcFrame,
    registry: Registry,
    request: service_pb.WatchCaseRequest,
    context: grpc.aio.ServicerContext,
    poll_interval: Callable[[], dt.timedelta],
) -> AsyncGenerator[service_pb.CaseEvent, None]:
    """The case's events from ``request.from_event`` until the case has closed."""
    call = current()
    call.read = access.Read(Action.WATCH, request.read)
    agency = call.agency_id = caller_agency(context, registry)
    violations = validation.validate_case_ref(request.case_ref)
    violations += access.validate_read(request.read, registry.get(agency))
    if not 0 <= request.from_event <= watch.MAX_FROM_EVENT:
        violations.append(
            FieldViolation("from_event", f"must be between 0 and {watch.MAX_FROM_EVENT}")
        )
    if violations:
        raise invalid_argument(violations)
    call.case_ref = request.case_ref
    case = await parties.case_for_party(views, request.case_ref, agency)
    party = parties.party(agency, case)
    asked = case.record.request
    # A watch may run for hours: it is recorded when it starts serving, not when it ends.
    call.read.case_refs.append(request.case_ref)
    await frame.record(context)
    next_number = max(request.from_event, 1)
    workflow_ids = [case_workflow_id(request.case_ref)] + [
        holder_exchange_workflow_id(request.case_ref, holder) for holder in asked.holding_agency_ids
    ]
    async with watch.HistoryFeed(client, workflow_ids) as feed:
        async for event in _watched(views, request.case_ref, party, case, feed, poll_interval):
            if event.number >= next_number:
                yield event
                next_number = event.number + 1


async def _watched(
    views: CaseViews,
    case_ref: str,
    party: Any,
    case: pb.CaseView,
    feed: watch.HistoryFeed,
    poll_interval: Callable[[], dt.timedelta],
) -> AsyncIterator[service_pb.CaseEvent]:
    """Every settled event the party may see, snapshot after snapshot (each snapshot's
    events start with the previous one's), until the case has closed. ``case`` is the case
    as read when the watch began: for a closed case Temporal has deleted, its record from the
    archive, whose entries are every event the case had."""
    asked = case.record.request
    holders = list(asked.holding_agency_ids)
    closed = watch.Closed()
    sent = 0
    while True:
        try:
            taken = await watch.take_snapshot(
                views, case_ref, holders, closed, rpc_timeout, feed.latest
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or case.state != pb.CASE_STATE_CLOSED:
                raise
            taken = closed_snapshot(case)
        # 👉 Filtered before numbering: each party's numbers are stable across reconnects.
        if isinstance(party, disclosure_view.Party):
            seen = {
                source: [e for entry in entries if (e := disclosure_view.entry_for(party, entry))]
                for source, entries in taken.entries.items()
            }
        else:
            seen = {
                source: party_view.entries_for(party, asked, source, entries)
                for source, entries in taken.entries.items()
            }
        snapshot = watch.Snapshot(seen, taken.ranks, taken.watermark)
        for event in watch.settled_events(snapshot)[sent:]:
            yield event
            sent = event.number
        if snapshot.watermark is None:
            return  # the case and every exchange have closed: that was the last event
        # 👉 Woken as soon as a history records a task (pushed), else after the interval.
        await feed.wait(poll_interval())


def closed_snapshot(case: pb.CaseView) -> watch.Snapshot:
    """A closed case's every event, from its record: the case's entries and each exchange's
    copy in it, in the order a watch of it in Temporal sends them (nothing left to settle)."""
    holders = list(case.record.request.holding_agency_ids)
    copies = {h.holding_agency_id: list(h.entries) for h in case.record.holders}
    entries = {"": list(case.record.entries)} | {h: copies.get(h, []) for h in holders}
    return watch.Snapshot(entries, watch.ranks(holders), None)
