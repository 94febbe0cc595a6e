"""One view of a case from the case workflow and its holders' exchanges.

The case workflow knows its request, gate, withdrawal and closed exchanges; each open
exchange knows its own state. Readers (the gateway, the CLI) query both and merge here.
"""

from __future__ import annotations

from collections.abc import Sequence

from protos.sharing.v1 import case_pb2 as pb


def closed_case_view(case_ref: str, record: pb.DecisionRecord) -> pb.CaseView:
    """The view of a closed case from its final decision record (the workflow's result):
    what ``SharingCase.case_view`` answers once the case has closed."""
    return pb.CaseView(
        case_ref=case_ref,
        state=pb.CASE_STATE_CLOSED,
        waiting_on=pb.WAITING_ON_UNSPECIFIED,
        record=record,
    )


def merge_case_view(case: pb.CaseView, holders: Sequence[pb.HolderRecord]) -> pb.CaseView:
    """The case view with every holder's record, and the case's state, whose move and next
    deadline taken from its open exchanges.

    A case is CLOSED only once the case workflow has closed it, with its outcome: an only
    exchange that has closed leaves the case EXCHANGING (nobody's move) until then, so no
    reader ever sees CLOSED without the outcome."""
    view = pb.CaseView()
    view.CopyFrom(case)
    if holders:
        del view.record.holders[:]
        view.record.holders.extend(holders)
    if case.state != pb.CASE_STATE_EXCHANGING:
        return view
    open_holders = [h for h in holders if h.state != pb.CASE_STATE_CLOSED]
    if len(holders) == 1 and holders[0].state != pb.CASE_STATE_CLOSED:
        view.state = holders[0].state
    if not open_holders:
        return view
    with_deadline = [h for h in open_holders if h.HasField("next_deadline")]
    first = (
        min(with_deadline, key=lambda h: h.next_deadline.ToNanoseconds())
        if with_deadline
        else open_holders[0]
    )
    view.waiting_on = first.waiting_on
    if first.HasField("next_deadline"):
        view.next_deadline.CopyFrom(first.next_deadline)
    return view
