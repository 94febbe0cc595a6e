"""DisclosureCase on the time-skipping server against real sandbox agencies: each kind's
deadline, the delivery with its caveats into the recipient's sandbox store, the
acknowledgement that closes the case, and a missed acknowledgement that reminds, escalates to
the school's DSL and the operator and never closes the case by itself."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.disclosure_factories import CSC, GP, POLICE, SCHOOL, concern, encompass, file_transfer
from tests.eventually import eventually
from tests.workflows.disclosures import (
    NEW_SCHOOL,
    RealDisclosure,
    disclosure_at_real_agencies,
    registry_with_a_second_school,
)
from workflows.disclosure_case import DisclosureCase

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(90)]
UTC = dt.UTC


async def skip_to(env: WorkflowEnvironment, at: dt.datetime) -> None:
    """Move the time-skipping server's clock to ``at`` (it only moves forward)."""
    now = await env.get_current_time()
    assert now < at, "the test's moment has passed"
    await env.sleep(at - now)


async def until_delivered(case: RealDisclosure, recipient: str) -> pb.RecipientRecord:
    def delivered(view: pb.CaseView) -> list[pb.RecipientRecord]:
        return [
            record
            for record in view.record.disclosure.recipients
            if record.recipient_agency_id == recipient and record.HasField("acknowledge_by")
        ]

    view = await eventually(
        case.view,
        delivered,
        what=f"delivered to {recipient}",
        retry_on=(Exception,),  # the first workflow task has not completed yet
        last=lambda view: [e.event for e in view.record.entries],
    )
    return delivered(view)[0]


def ack(agency_id: str) -> pb.Acknowledgement:
    return pb.Acknowledgement(
        agency_id=agency_id,
        practitioner=pb.Practitioner(user_id="dsl-0001", role="designated_safeguarding_lead"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
        use="fictional: the DSL will watch for signs in class",
    )


async def test_a_friday_night_encompass_notification_is_due_at_mondays_school_start(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    # Friday 4 December 2026, 22:00 UK time (GMT): the school starts at 08:45 on Monday.
    await skip_to(time_skipping, dt.datetime(2026, 12, 4, 22, 0, tzinfo=UTC))
    disclosure = encompass()
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path, pb.DisclosureCaseInput(disclosure=disclosure),
        agency_ids=(POLICE, SCHOOL),
    ) as case:  # fmt: skip
        delivered = await until_delivered(case, SCHOOL)
        assert delivered.acknowledge_by.ToDatetime(UTC) == dt.datetime(
            2026, 12, 7, 8, 45, tzinfo=UTC
        )
        # The school's own store holds the dataset, every item with the caveats.
        store = case.agencies[SCHOOL].store
        items = store.delivered_items(delivered.receipt.delivery_id)
        names = {item.content.split(":", 1)[0] for item in items}
        assert names >= {"police_reference", "incident_at", "incident_place", "child_present",
                         "voice_of_the_child", "circumstances"}  # fmt: skip
        assert items and all(
            list(item.caveats)
            == [pb.HANDLING_CAVEAT_DO_NOT_CONTACT_PARENTS_OR_CARERS, pb.HANDLING_CAVEAT_DSL_ONLY]
            for item in items
        )
        # Never without a basis: each item's is stored with it (here the lawful basis).
        bases = store.delivered_bases(delivered.receipt.delivery_id)
        assert set(bases) == {item.item_id for item in items}
        assert {b.kind for b in bases.values()} == {pb.BASIS_KIND_OVERRIDE}
        assert {b.override_reason for b in bases.values()} == {
            pb.OVERRIDE_REASON_SAFEGUARDING_AT_RISK
        }
        await case.handle.execute_update(DisclosureCase.acknowledge, ack(SCHOOL))
        record = await case.result("disclosure-encompass-acknowledged")
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    (school,) = record.disclosure.recipients
    assert (
        school.deadline_met and school.acknowledgement.status == pb.ACKNOWLEDGEMENT_STATUS_RECEIVED
    )
    assert not school.escalations
    events = [e.event for e in record.entries]
    assert events[:3] == ["DisclosureReceived", "ProtocolGateChecked", "ConsentPositionRecorded"]
    assert "RecordsDelivered" in events and events[-2:] == ["Acknowledged", "CaseClosed"]
    assert "AcknowledgementDue" in events
    due = next(e for e in record.entries if e.event == "AcknowledgementDue")
    assert "rule=before_next_school_day" in due.detail
    assert "DO_NOT_CONTACT_PARENTS_OR_CARERS" in next(
        e.detail for e in record.entries if e.event == "RecordsDelivered"
    )


async def test_after_a_bank_holiday_and_an_inset_day_it_is_due_the_next_school_day(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    # Friday 1 January 2027 (New Year's Day) 22:00; Monday 4th is an INSET day: Tuesday 08:45.
    await skip_to(time_skipping, dt.datetime(2027, 1, 1, 22, 0, tzinfo=UTC))
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path, pb.DisclosureCaseInput(disclosure=encompass()),
        agency_ids=(POLICE, SCHOOL),
    ) as case:  # fmt: skip
        delivered = await until_delivered(case, SCHOOL)
        assert delivered.acknowledge_by.ToDatetime(UTC) == dt.datetime(
            2027, 1, 5, 8, 45, tzinfo=UTC
        )
        await case.handle.execute_update(DisclosureCase.acknowledge, ack(SCHOOL))
        await case.result("disclosure-encompass-after-inset")


async def test_a_missed_acknowledgement_reminds_escalates_and_never_closes_the_case(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    await skip_to(time_skipping, dt.datetime(2026, 12, 4, 22, 0, tzinfo=UTC))
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path, pb.DisclosureCaseInput(disclosure=encompass()),
        agency_ids=(POLICE, SCHOOL),
    ) as case:  # fmt: skip
        await until_delivered(case, SCHOOL)
        # Monday 08:45 passes; then a day more.
        await time_skipping.sleep(dt.timedelta(days=3))
        description = await case.handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        view = await case.view()
        (school,) = view.record.disclosure.recipients
        assert [e.level for e in school.escalations] == [
            "reminder", "safeguarding_lead", "partnership_operator"
        ]  # fmt: skip
        sent = case.agencies[SCHOOL].store.notifications()
        assert [(n.kind, n.practitioner_role, n.step) for n in sent] == [
            (agency_pb.NOTIFICATION_KIND_REMINDER, "designated_safeguarding_lead",
             "recipient_acknowledges"),
            (agency_pb.NOTIFICATION_KIND_ESCALATION, "designated_safeguarding_lead",
             "recipient_acknowledges"),
        ]  # fmt: skip
        assert [a.level for a in case.operator.alerts] == ["partnership_operator"]
        assert view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        assert view.waiting_on == pb.WAITING_ON_RECIPIENT
        # A late acknowledgement still closes it, and the record says the deadline was missed.
        await case.handle.execute_update(DisclosureCase.acknowledge, ack(SCHOOL))
        record = await case.result("disclosure-encompass-missed-acknowledgement")
    (school,) = record.disclosure.recipients
    assert not school.deadline_met and record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE


async def test_a_child_without_a_school_place_is_notified_to_childrens_social_care(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    disclosure = encompass(recipients=(), no_school_place=True)
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path, pb.DisclosureCaseInput(disclosure=disclosure),
        agency_ids=(POLICE, CSC),
    ) as case:  # fmt: skip
        delivered = await until_delivered(case, CSC)
        start = (await case.handle.describe()).start_time
        # Children's social care runs 24/7: the RED acknowledgement timescale (2 hours).
        assert delivered.acknowledge_by.ToDatetime(UTC) - start < dt.timedelta(hours=2, minutes=1)
        assert case.agencies[CSC].store.deliveries()
        await case.handle.execute_update(DisclosureCase.acknowledge, ack(CSC))
        record = await case.result("disclosure-encompass-no-school-place")
    assert record.disclosure.routed_because == "no_school_place:childrens_social_care"
    routed = next(e for e in record.entries if e.event == "DisclosureRouted")
    assert routed.detail == f"to={CSC} because=no_school_place:childrens_social_care"
    assert "routed because no_school_place" in record.basis


async def test_a_concern_without_consent_waits_for_an_approver_then_its_urgency_sets_the_deadline(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path,
        pb.DisclosureCaseInput(disclosure=concern(pb.URGENCY_AMBER)), agency_ids=(GP, CSC),
    ) as case:  # fmt: skip
        for _ in range(200):
            view = await case.view()
            if view.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION:
                break
            await asyncio.sleep(0.05)
        assert view.waiting_on == pb.WAITING_ON_APPROVER
        # The discloser cannot approve their own disclosure.
        own = pb.DisclosureApproval(
            actor=pb.Actor(agency_id=GP, practitioner=pb.Practitioner(
                user_id="gp-0007", role="designated_safeguarding_lead")),
            approve=True, reason="fictional",
        )  # fmt: skip
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await case.handle.execute_update(DisclosureCase.decide_disclosure, own)
        assert "cannot approve" in str(refused.value.cause)
        approver = pb.DisclosureApproval()
        approver.CopyFrom(own)
        # An approver role is not enough: the registry names who decides the GP's disclosures.
        approver.actor.practitioner.user_id = "gp-lead-01"
        with pytest.raises(WorkflowUpdateFailedError) as unnamed:
            await case.handle.execute_update(DisclosureCase.decide_disclosure, approver)
        assert "registry names" in str(unnamed.value.cause)
        approver.actor.practitioner.user_id = "CG-1"  # named (compared canonical)
        await case.handle.execute_update(DisclosureCase.decide_disclosure, approver)
        delivered = await until_delivered(case, CSC)
        items = case.agencies[CSC].store.delivered_items(delivered.receipt.delivery_id)
        # The dataset and the health summary extracted from the GP's own system.
        categories = {item.category for item in items}
        assert categories == {pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
                              pb.INFORMATION_CATEGORY_HEALTH_SUMMARY}  # fmt: skip
        assert all(list(i.caveats) == [pb.HANDLING_CAVEAT_DO_NOT_TELL_THE_CHILD] for i in items)
        await case.handle.execute_update(DisclosureCase.acknowledge, ack(CSC))
        record = await case.result("disclosure-concern-approved")
    assert record.disclosure.approval.approve
    due = next(e for e in record.entries if e.event == "AcknowledgementDue")
    assert "rule=urgency_AMBER" in due.detail


async def test_a_child_protection_file_is_due_in_five_school_days_with_confirmation(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    # Monday 14 December 2026 10:00: school days 15, 16, 17, 18 Dec, then (INSET on 4 Jan)
    # Tuesday 5 January 2027; the fifth school day ends at 17:00.
    await skip_to(time_skipping, dt.datetime(2026, 12, 14, 10, 0, tzinfo=UTC))
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path, pb.DisclosureCaseInput(disclosure=file_transfer()),
        agency_ids=(SCHOOL, NEW_SCHOOL), registry_path=registry_with_a_second_school(tmp_path),
    ) as case:  # fmt: skip
        delivered = await until_delivered(case, NEW_SCHOOL)
        assert delivered.acknowledge_by.ToDatetime(UTC) == dt.datetime(
            2027, 1, 5, 17, 0, tzinfo=UTC
        )
        assert case.agencies[NEW_SCHOOL].store.delivered_items()
        confirmed = ack(NEW_SCHOOL)
        await case.handle.execute_update(DisclosureCase.acknowledge, confirmed)
        record = await case.result("disclosure-cp-file-transfer")
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert record.disclosure.recipients[0].receipt.item_count == 3


async def test_a_disclosure_considered_and_not_made_is_recorded_with_its_reasons(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    not_made = pb.DisclosureNotMade(
        disclosure_id="considered-1", holding_agency_id=GP,
        decided_by=pb.Practitioner(user_id="gp-0007", role="gp"),
        kind=pb.DISCLOSURE_KIND_CONCERN, recipient_agency_ids=[CSC],
        reasons=["threshold_not_met"], explanation="fictional: explained by a known condition",
    )  # fmt: skip
    async with disclosure_at_real_agencies(
        time_skipping, pki, tmp_path, pb.DisclosureCaseInput(not_made=not_made),
        agency_ids=(GP,),
    ) as case:  # fmt: skip
        record = await case.result("disclosure-not-made")
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert record.disclosure.not_made.reasons == ["threshold_not_met"]
    assert "considered and not made: threshold_not_met" in record.basis
    assert [e.event for e in record.entries] == ["DisclosureNotMade", "CaseClosed"]
