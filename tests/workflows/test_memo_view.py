"""The view a workflow keeps in its memo: split into parts, upserted by change, merged back."""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.common import RawValue
from temporalio.converter import DataConverter

from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent, sharing_request
from workflows import memo_view


def decoded(upsert: Mapping[str, RawValue | None], memo: dict[str, object]) -> dict[str, object]:
    """The memo after ``upsert``, decoded as a reader's data converter does."""
    converter = DataConverter.default.payload_converter
    for key, value in upsert.items():
        memo[key] = None if value is None else converter.from_payload(value.payload)
    return memo


def case_view(entries: int) -> pb.CaseView:
    request = sharing_request()
    view = pb.CaseView(case_ref="ref", state=pb.CASE_STATE_EXCHANGING)
    view.record.request.CopyFrom(request)
    view.record.urgency = request.urgency
    view.record.entries.extend(pb.DecisionEntry(event=f"E{i}") for i in range(entries))
    return view


def test_the_parts_merge_back_into_the_view_in_order() -> None:
    view = case_view(entries=12)  # past 10: indexes order as numbers
    view.next_deadline.FromSeconds(1_800_000_000)
    memo = decoded(memo_view.Publisher().changes(view), {"request_digest": "not a view part"})
    assert memo_view.assemble(pb.CaseView, memo) == view


def test_a_task_upserts_only_what_changed() -> None:
    publisher = memo_view.Publisher()
    view = case_view(entries=2)
    memo = decoded(publisher.changes(view), {})
    assert publisher.changes(view) == {}

    view.record.entries.add(event="E2")
    view.state = pb.CASE_STATE_CLOSED
    upsert = publisher.changes(view)
    assert sorted(upsert) == ["view", "view.record.entries.2"]
    assert memo_view.assemble(pb.CaseView, decoded(upsert, memo)) == view


def test_a_part_that_goes_away_is_removed() -> None:
    publisher = memo_view.Publisher()
    record = pb.HolderRecord(holding_agency_id="school", consent=given_consent())
    record.next_deadline.FromSeconds(1_800_000_000)
    memo = decoded(publisher.changes(record), {})
    record.ClearField("next_deadline")
    upsert = publisher.changes(record)
    assert upsert == {"view.next_deadline": None}
    assert memo_view.assemble(pb.HolderRecord, decoded(upsert, memo)) == record


def test_a_workflow_that_published_nothing_has_no_view() -> None:
    assert memo_view.assemble(pb.CaseView, {"request_digest": "abc"}) is None
