"""What a sharing case shows: the case view its query answers, the part of it kept in its
memo, an update's answer, and what operators see (search attributes and current details).

Deterministic and side-effect free: functions of the case's request, state and record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows import search_attributes as sa
from workflows.domain.vocabulary import code

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb


def case_view(
    case_ref: str,
    state: pb.CaseState.ValueType,
    record: pb.DecisionRecord,
    closed: Iterable[pb.HolderRecord],
) -> pb.CaseView:
    """The case as its workflow knows it, with the records of the exchanges ``closed`` so far
    until the case holds them all; open exchanges are read from their own workflows."""
    shown = pb.DecisionRecord()
    shown.CopyFrom(record)
    if not shown.holders:
        shown.holders.extend(closed)
    return pb.CaseView(
        case_ref=case_ref,
        state=state,
        waiting_on=(
            pb.WAITING_ON_SYSTEM if state == pb.CASE_STATE_REQUESTED else pb.WAITING_ON_UNSPECIFIED
        ),
        record=shown,
    )


def published(view: pb.CaseView) -> pb.CaseView:
    """The view kept in the memo: without the closed exchanges' records, which their own
    memos hold (readers merge them), so no record is written to history twice."""
    del view.record.holders[:]
    return view


def answer(view: pb.CaseView, record: pb.DecisionRecord, since: int) -> pb.CommandResult:
    """What an update changed: the entries after the first ``since``, and where the case is."""
    return pb.CommandResult(
        case_ref=view.case_ref,
        state=view.state,
        waiting_on=view.waiting_on,
        outcome=record.outcome,
        entries=record.entries[since:],
        entry_number=len(record.entries),
    )


def search_attributes(
    request: pb.SharingRequest, state: pb.CaseState.ValueType, record: pb.DecisionRecord
) -> list[SearchAttributeUpdate[Any]]:
    """What operators filter by."""
    updates: list[SearchAttributeUpdate[Any]] = [
        sa.CASE_STATE.value_set(code(pb.CaseState, state)),
        sa.URGENCY.value_set(code(pb.Urgency, record.urgency)),
        sa.PURPOSE.value_set(code(pb.Purpose, request.purpose)),
        sa.REQUESTING_AGENCY.value_set(request.requesting_agency_id),
        sa.HOLDING_AGENCY.value_set(list(request.holding_agency_ids)),
        sa.WAITING_ON.value_set(
            {
                pb.CASE_STATE_REQUESTED: "SYSTEM",
                pb.CASE_STATE_EXCHANGING: "HOLDERS",
            }.get(state, "UNSPECIFIED")
        ),
    ]
    if record.outcome != pb.OUTCOME_UNSPECIFIED:
        updates.append(sa.OUTCOME.value_set(code(pb.Outcome, record.outcome)))
        updates.append(sa.OVERRIDE_USED.value_set(any(h.override_used for h in record.holders)))
    return updates


def current_details(
    request: pb.SharingRequest, state: pb.CaseState.ValueType, record: pb.DecisionRecord
) -> str:
    """What the case is doing, in plain words."""
    return {
        pb.CASE_STATE_REQUESTED: "Checking the Information Sharing Protocol.",
        pb.CASE_STATE_EXCHANGING: "Exchanges under way with "
        + ", ".join(request.holding_agency_ids)
        + " (see each exchange's workflow).",
    }.get(state, f"Closed: {pb.Outcome.Name(record.outcome)}.")
