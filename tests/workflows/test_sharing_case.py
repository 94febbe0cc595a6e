"""Every path a sharing case can take, on the time-skipping server: the real SharingCase and
HolderExchange workflows and protocol gate, with fake agency adapters under the real names."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Awaitable
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.workflows.harness import CSC, GP, POLICE, SCHOOL, Case, actor, notified, running_case
from workflows.holder_exchange import HolderExchange
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

REFUSED = given_consent(status=pb.CONSENT_STATUS_REFUSED)
ATTENDANCE = pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE
WELFARE = pb.INFORMATION_CATEGORY_WELFARE_CONCERNS
TEACHER = actor(SCHOOL, "teacher-1", "teacher")
DSL = actor(SCHOOL, "dsl-1", "designated_safeguarding_lead")
SOCIAL_WORKER = actor(CSC, "sw-1", "social_worker")


def proposal(**changes: object) -> pb.OverrideProposal:
    """A complete override proposal from the school's teacher, sharing attendance only."""
    proposal = pb.OverrideProposal(
        actor=TEACHER,
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="pattern of absence consistent with neglect",
        legal_basis="Children Act 1989 s47",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="only attendance is needed for the strategy discussion",
        minimum_data_set=[ATTENDANCE],
        alternatives_considered="asking the parent again: refused twice",
        advice_sought="designated safeguarding lead",
        subject_will_be_told=False,
        not_telling_reason="telling the parent may increase risk to the child",
    )
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(proposal, name)[:]
            getattr(proposal, name).extend(value)
        else:
            setattr(proposal, name, value)
    return proposal


def approval(approve: bool = True, who: pb.Actor = DSL) -> pb.OverrideDecision:
    return pb.OverrideDecision(actor=who, approve=approve, reason="threshold for s47 met")


def ack(agency_id: str = CSC, holder: str = "") -> pb.Acknowledgement:
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
        use="strategy discussion",
        agency_id=agency_id,
        holding_agency_id=holder,
    )


async def rejection(call: Awaitable[object]) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    assert isinstance(failure.value.cause, ApplicationError)
    return failure.value.cause


async def acknowledged(case: Case, holder: str | None = None) -> None:
    await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT, holder)
    await case.exchange(holder).execute_update(HolderExchange.acknowledge, ack())


# -- the paths ----------------------------------------------------------------------------


async def test_consent_covers_shares_asked_categories_only(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with running_case(time_skipping, FakeAgencies(), "consent-covers",
                            categories=(ATTENDANCE, WELFARE)) as case:  # fmt: skip
        await acknowledged(case)
        record = await case.result()
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    [holder] = record.holders
    assert holder.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert "with consent" in holder.basis and "mother" in holder.basis
    [delivery] = case.agencies.deliveries
    assert {i.category for i in delivery.items} == {ATTENDANCE, WELFARE}
    assert {i.item_id for i in holder.shared_items} == {i.item_id for i in delivery.items}
    assert record.gate.passed
    assert [e.event for e in holder.entries] == [
        "ConsentChecked", "RecordsDelivered", "Acknowledged", "ExchangeClosed",
    ]  # fmt: skip


async def test_refused_consent_override_approved_delivers_minimum_data_set(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "override-approved",
                            categories=(ATTENDANCE, WELFARE)) as case:  # fmt: skip
        waiting = await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        assert waiting.waiting_on == pb.WAITING_ON_HOLDER
        assert "consent_refused" in waiting.entries[-1].detail
        await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        assert (await case.holder_state()).waiting_on == pb.WAITING_ON_APPROVER
        await case.exchange().execute_update(HolderExchange.decide_override, approval())
        await acknowledged(case)
        record = await case.result()
    [holder] = record.holders
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert holder.override_used and holder.override_decision.approve
    assert holder.override_proposal.harm_statement
    assert "OVERRIDE_REASON_SIGNIFICANT_HARM" in holder.basis
    # Only the minimum data set the approver approved was extracted and delivered.
    assert [list(e.categories) for e in agencies.extractions] == [[ATTENDANCE]]
    assert {i.category for i in agencies.deliveries[0].items} == {ATTENDANCE}


async def test_override_rejected_shares_nothing(time_skipping: WorkflowEnvironment) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "override-rejected") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        await case.exchange().execute_update(HolderExchange.decide_override, approval(False))
        record = await case.result()
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert "override_rejected" in record.holders[0].basis
    assert agencies.deliveries == [] and agencies.extractions == []


async def test_declined_to_share_is_a_recorded_outcome(time_skipping: WorkflowEnvironment) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "declined") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(
            HolderExchange.decline_to_share,
            pb.DeclineDecision(
                actor=TEACHER, reasons=["not_proportionate"], explanation="low risk"
            ),
        )
        record = await case.result()
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert record.holders[0].decline.reasons == ["not_proportionate"]
    assert "declined:not_proportionate" in record.basis
    assert agencies.deliveries == []


@pytest.mark.parametrize(
    "reason",
    [
        pb.NOT_SOUGHT_REASON_RISK_TO_CHILD,
        pb.NOT_SOUGHT_REASON_PREJUDICE_POLICE_INVESTIGATION,
        pb.NOT_SOUGHT_REASON_UNDUE_DELAY,
        pb.NOT_SOUGHT_REASON_CANNOT_BE_CONTACTED,
    ],
)
async def test_consent_not_sought_is_recorded_then_overridden(
    time_skipping: WorkflowEnvironment, reason: pb.NotSoughtReason.ValueType
) -> None:
    agencies = FakeAgencies(
        consent={SCHOOL: pb.ConsentRecord(status=pb.CONSENT_STATUS_NOT_RECORDED)}
    )
    name = (
        f"not-sought-{pb.NotSoughtReason.Name(reason).lower().removeprefix('not_sought_reason_')}"
    )
    async with running_case(time_skipping, agencies, name) as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        recorded = await case.exchange().execute_update(
            HolderExchange.record_consent,
            pb.ConsentDecision(
                actor=TEACHER, not_sought=pb.NotSought(reason=reason, explanation="see reason")
            ),
        )
        # The update answers with what it changed; the record is read from the exchange.
        assert isinstance(recorded, pb.CommandResult)
        assert recorded.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
        assert [e.event for e in recorded.entries] == ["ConsentRecorded"]
        held = await case.holder_state()
        assert recorded.entry_number == len(held.entries)
        assert held.consent.status == pb.CONSENT_STATUS_NOT_SOUGHT
        await case.exchange().execute_update(
            HolderExchange.propose_override,
            proposal(consent_state_overridden=pb.CONSENT_STATUS_NOT_SOUGHT),
        )
        await case.exchange().execute_update(HolderExchange.decide_override, approval())
        await acknowledged(case)
        record = await case.result()
    holder = record.holders[0]
    assert holder.consent_decision.not_sought.reason == reason
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE


async def test_recorded_consent_that_covers_goes_on_to_share(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(
        consent={SCHOOL: pb.ConsentRecord(status=pb.CONSENT_STATUS_NOT_RECORDED)}
    )
    async with running_case(time_skipping, agencies, "consent-recorded") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        # A recorded "given" holds only once the holder's own system confirms it.
        agencies.consent[SCHOOL] = given_consent()
        await case.exchange().execute_update(
            HolderExchange.record_consent,
            pb.ConsentDecision(actor=TEACHER, consent=given_consent()),
        )
        await acknowledged(case)
        record = await case.result()
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT


async def test_red_share_first_then_justified(time_skipping: WorkflowEnvironment) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "red-share-first",
                            urgency=pb.URGENCY_RED) as case:  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(
            HolderExchange.share_first,
            pb.ShareFirstDecision(actor=TEACHER, harm_statement="child at immediate risk",
                                  minimum_data_set=[ATTENDANCE]),
        )  # fmt: skip
        await acknowledged(case)
        waiting = await case.holder_state()
        assert waiting.waiting_on == pb.WAITING_ON_APPROVER  # the justification is owed
        await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        await case.exchange().execute_update(HolderExchange.decide_override, approval())
        record = await case.result()
    holder = record.holders[0]
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert holder.share_first.harm_statement and holder.override_decision.approve
    assert "first under RED urgency; justification approved" in holder.basis
    assert holder.escalations == []


async def test_red_share_first_missing_justification_escalates(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "red-justification-missing",
                            urgency=pb.URGENCY_RED) as case:  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(
            HolderExchange.share_first,
            pb.ShareFirstDecision(actor=TEACHER, harm_statement="immediate risk",
                                  minimum_data_set=[ATTENDANCE]),
        )  # fmt: skip
        await acknowledged(case)
        # RED override decision: 1 hour; reminder at 1h, lead at 1.5h, operator at 2h.
        await time_skipping.sleep(dt.timedelta(hours=2, minutes=5))
        holder = await case.holder_state()
        assert [(e.step, e.level) for e in holder.escalations] == [
            ("override_decision", "reminder"),
            ("override_decision", "safeguarding_lead"),
            ("override_decision", "partnership_operator"),
        ]
        assert notified(agencies)["override_decision"] == [
            (SCHOOL, "REMINDER"), (SCHOOL, "ESCALATION/designated_safeguarding_lead"),
        ]  # fmt: skip
        assert [a.step for a in agencies.operator_alerts] == ["override_decision"]
        await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        await case.exchange().execute_update(HolderExchange.decide_override, approval())
        await case.result()


@pytest.mark.parametrize(
    ("step", "urgency", "responsible"),
    [
        ("holder_responds", pb.URGENCY_AMBER, SCHOOL),
        ("override_decision", pb.URGENCY_AMBER, SCHOOL),
        ("recipient_acknowledges", pb.URGENCY_GREEN, CSC),
    ],
)
async def test_every_missed_deadline_reminds_then_escalates_and_never_declines(
    time_skipping: WorkflowEnvironment, step: str, urgency: pb.Urgency.ValueType, responsible: str
) -> None:
    covers = step == "recipient_acknowledges"
    agencies = FakeAgencies(consent={} if covers else {SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, f"escalation-{step}", urgency=urgency) as case:
        if covers:
            await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        else:
            await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
            if step == "override_decision":
                await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        # Long enough for any deadline on the calendar and the whole ladder.
        await time_skipping.sleep(dt.timedelta(days=30))
        holder = await case.holder_state()
        assert holder.state != pb.CASE_STATE_CLOSED
        assert [e.level for e in holder.escalations if e.step == step] == [
            "reminder", "safeguarding_lead", "partnership_operator",
        ]  # fmt: skip
        # Nobody at the holder is named before it responds: the reminder goes to its lead.
        reminder = (
            "REMINDER/designated_safeguarding_lead" if step == "holder_responds" else "REMINDER"
        )
        assert notified(agencies)[step] == [
            (responsible, reminder), (responsible, "ESCALATION/designated_safeguarding_lead"),
        ]  # fmt: skip
        assert [a.step for a in agencies.operator_alerts] == [step]
        await case.handle.execute_update(
            SharingCase.withdraw_request,
            pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="no longer needed"),
        )
        record = await case.result()
    # Withdrawn after the delivery, the records stay shared (the record has the withdrawal).
    shared = step == "recipient_acknowledges"
    assert record.outcome == (pb.OUTCOME_SHARED_WITH_CONSENT if shared else pb.OUTCOME_WITHDRAWN)
    assert record.withdrawal.reason == "no longer needed"


async def test_changing_urgency_moves_the_running_deadline(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "urgency-changed",
                            urgency=pb.URGENCY_GREEN) as case:  # fmt: skip
        before = await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        view = await case.handle.execute_update(
            SharingCase.change_urgency,
            pb.UrgencyChange(actor=SOCIAL_WORKER, urgency=pb.URGENCY_RED, reason="new disclosure"),
        )
        assert isinstance(view, pb.CommandResult)
        assert [e.event for e in view.entries] == ["UrgencyChanged"]
        assert (await case.handle.query(SharingCase.case_view)).record.urgency == pb.URGENCY_RED
        after = before
        for _ in range(100):
            after = await case.holder_state()
            if after.next_deadline != before.next_deadline:
                break
        start = before.entries[0].at.ToDatetime(dt.UTC)
        # GREEN: 24 working hours; RED: 2 hours from the start of the step.
        assert before.next_deadline.ToDatetime(dt.UTC) - start > dt.timedelta(days=2)
        assert after.next_deadline.ToDatetime(dt.UTC) - start <= dt.timedelta(hours=2)
        same = await rejection(case.handle.execute_update(
            SharingCase.change_urgency,
            pb.UrgencyChange(actor=SOCIAL_WORKER, urgency=pb.URGENCY_RED, reason="again"),
        ))  # fmt: skip
        assert same.type == "Invalid"
        await case.handle.execute_update(
            SharingCase.withdraw_request, pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="done")
        )
        record = await case.result()
    assert [pb.Urgency.Name(c.urgency) for c in record.urgency_changes] == ["URGENCY_RED"]


@pytest.mark.parametrize(
    "step",
    [
        pb.CASE_STATE_AWAITING_CONSENT_DECISION,
        pb.CASE_STATE_AWAITING_OVERRIDE_DECISION,
        pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT,
    ],
)
async def test_withdrawal_at_each_step_closes_the_case(
    time_skipping: WorkflowEnvironment, step: pb.CaseState.ValueType
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    name = f"withdrawn-{pb.CaseState.Name(step).lower().removeprefix('case_state_')}"
    async with running_case(time_skipping, agencies, name) as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        if step != pb.CASE_STATE_AWAITING_CONSENT_DECISION:
            await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        if step == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
            await case.exchange().execute_update(HolderExchange.decide_override, approval())
        await case.until(step)
        not_yours = await rejection(case.handle.execute_update(
            SharingCase.withdraw_request, pb.RequestWithdrawal(actor=TEACHER, reason="x")
        ))  # fmt: skip
        assert not_yours.type == "NotPermitted"
        await case.handle.execute_update(
            SharingCase.withdraw_request,
            pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="child moved out of area"),
        )
        record = await case.result()
    # Withdrawn after the delivery, the records stay shared (the record has the withdrawal).
    expected = (
        pb.OUTCOME_SHARED_UNDER_OVERRIDE
        if step == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        else pb.OUTCOME_WITHDRAWN
    )
    assert record.outcome == expected
    assert record.withdrawal.reason == "child moved out of area"
    assert record.holders[0].outcome == expected


async def test_consent_withdrawn_after_delivery_is_pushed_to_the_recipient(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies()
    async with running_case(time_skipping, agencies, "consent-withdrawn-after-delivery") as case:
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        early = await rejection(case.exchange().execute_update(
            HolderExchange.withdraw_consent,
            pb.ConsentWithdrawal(actor=actor(CSC, "sw-1"), withdrawn_by_relationship="mother"),
        ))  # fmt: skip
        assert early.type == "NotPermitted"
        record = await case.exchange().execute_update(
            HolderExchange.withdraw_consent,
            pb.ConsentWithdrawal(actor=TEACHER, withdrawn_by_relationship="mother"),
        )
        assert [e.event for e in record.entries] == [
            "ConsentWithdrawn",
            "ConsentWithdrawalDelivered",
        ]
        assert (await case.holder_state()).consent_withdrawal.recipient_notified
        await case.exchange().execute_update(HolderExchange.acknowledge, ack())
        final = await case.result()
    [notice] = agencies.withdrawal_notices
    assert list(notice.delivery_ids) == [agencies.deliveries[0].delivery_id]
    assert final.holders[0].consent_withdrawal.withdrawn_by_relationship == "mother"


async def test_two_holders_with_different_outcomes(time_skipping: WorkflowEnvironment) -> None:
    agencies = FakeAgencies(consent={GP: REFUSED})
    async with running_case(time_skipping, agencies, "two-holders",
                            holders=(SCHOOL, GP)) as case:  # fmt: skip
        await acknowledged(case, SCHOOL)
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION, GP)
        await case.exchange(GP).execute_update(
            HolderExchange.decline_to_share,
            pb.DeclineDecision(actor=actor(GP, "gp-1", "gp"), reasons=["not_necessary"]),
        )
        record = await case.result()
    assert record.outcome == pb.OUTCOME_PARTLY_SHARED
    outcomes = {h.holding_agency_id: h.outcome for h in record.holders}
    assert outcomes == {SCHOOL: pb.OUTCOME_SHARED_WITH_CONSENT, GP: pb.OUTCOME_NOT_SHARED}
    assert [d.holding_agency_id for d in agencies.deliveries] == [SCHOOL]


async def test_delivery_failing_escalates_to_operators_then_succeeds(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(delivery_failures_left=10)
    async with running_case(time_skipping, agencies, "delivery-failing") as case:
        for _ in range(400):
            holder = await case.holder_state() if agencies.operator_alerts else None
            if holder is not None:
                break
            await time_skipping.sleep(dt.timedelta(minutes=1))
        assert holder is not None
        assert holder.waiting_on == pb.WAITING_ON_OPERATOR
        assert [a.step for a in agencies.operator_alerts] == ["delivery"]
        # The exchange pauses, then tries again; the agency recovers.
        for _ in range(40):
            if (await case.holder_state()).state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                break
            await time_skipping.sleep(dt.timedelta(minutes=5))
        await acknowledged(case)
        record = await case.result()
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert record.holders[0].delivery_failures == 1
    assert [a.step for a in agencies.operator_alerts] == ["delivery"]
    assert len(agencies.deliveries) == 1


async def test_holder_that_does_not_know_the_child_closes_not_shared(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(lookup_error={SCHOOL: "NOT_FOUND"})
    async with running_case(time_skipping, agencies, "subject-unknown") as case:
        record = await case.result()
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert "consent_lookup_refused:NOT_FOUND" in record.basis


async def test_protocol_gate_failure_rejects_with_every_reason(
    time_skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text(textwrap.dedent("""
        registry_version = 7
        protocol_version = "2026.1"
        [[agencies]]
        id = "northshire-csc"
        name = "CSC"
        kind = "statutory"
        signed_protocol_version = "2025.1"
        review_date = 2027-01-01
        [[agencies]]
        id = "oakfield-primary"
        name = "School"
        kind = "statutory"
        signed_protocol_version = "2026.1"
        review_date = 2020-01-01
    """))  # fmt: skip
    agencies = FakeAgencies()
    async with running_case(
        time_skipping, agencies, "gate-rejected", registry_path=registry
    ) as case:
        record = await case.result()
    assert record.outcome == pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE
    assert list(record.gate.reasons) == [
        "requester_signed_outdated_protocol:northshire-csc",
        "holder_signature_review_overdue:oakfield-primary",
    ]
    assert record.gate.registry_version == 7
    assert not record.holders and agencies.extractions == []


# -- refusals before history ------------------------------------------------------------------


async def test_refused_decisions_say_why_and_leave_no_trace(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "refusals") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        exchange = case.exchange()
        events_before = len((await exchange.fetch_history()).events)
        refused = {
            "acknowledge too early": (HolderExchange.acknowledge, ack(), "OutOfTurn"),
            "recipient records consent": (
                HolderExchange.record_consent,
                pb.ConsentDecision(actor=actor(CSC, "sw-1", "social_worker"), consent=given_consent()),
                "NotPermitted",
            ),
            "incomplete proposal": (
                HolderExchange.propose_override,
                proposal(harm_statement="", reason_code=pb.OVERRIDE_REASON_UNSPECIFIED),
                "Invalid",
            ),
            "more than was asked": (
                HolderExchange.propose_override,
                proposal(minimum_data_set=[pb.INFORMATION_CATEGORY_POLICE_INCIDENTS]),
                "Invalid",
            ),
            "decide with nothing proposed": (HolderExchange.decide_override, approval(), "OutOfTurn"),
            "share first on AMBER": (
                HolderExchange.share_first,
                pb.ShareFirstDecision(actor=TEACHER, harm_statement="x", minimum_data_set=[ATTENDANCE]),
                "OutOfTurn",
            ),
            "decline without reasons": (HolderExchange.decline_to_share, pb.DeclineDecision(actor=TEACHER), "Invalid"),
        }  # fmt: skip
        for label, (update, arg, expected) in refused.items():
            error = await rejection(exchange.execute_update(update, arg))  # type: ignore[call-overload]
            assert error.type == expected, label
        incomplete = await rejection(exchange.execute_update(
            HolderExchange.propose_override,
            proposal(harm_statement="", reason_code=pb.OVERRIDE_REASON_UNSPECIFIED),
        ))  # fmt: skip
        assert "proposal.harm_statement" in incomplete.message
        assert "proposal.reason_code" in incomplete.message

        await exchange.execute_update(HolderExchange.propose_override, proposal())
        self_approval = await rejection(
            exchange.execute_update(HolderExchange.decide_override, approval(who=TEACHER))
        )
        assert self_approval.type == "NotPermitted"
        wrong_role = await rejection(exchange.execute_update(
            HolderExchange.decide_override, approval(who=actor(SCHOOL, "clerk-2", "office"))
        ))  # fmt: skip
        assert wrong_role.type == "NotPermitted"
        other_agency = await rejection(exchange.execute_update(
            HolderExchange.decide_override,
            approval(who=actor(POLICE, "dsl-9", "designated_safeguarding_lead")),
        ))  # fmt: skip
        assert other_agency.type == "NotPermitted"
        history = await exchange.fetch_history()
        accepted = [
            e for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]  # fmt: skip
        # 👉 Only the one valid proposal reached history; every refusal left no trace.
        assert len(accepted) == 1
        assert events_before < len(history.events)
        await exchange.execute_update(HolderExchange.decide_override, approval(False))
        await case.result()


async def test_update_results_say_what_changed_and_echo_nothing(
    time_skipping: WorkflowEnvironment,
) -> None:
    # A long reason: the request's and the command's text must not come back in the results.
    reason = "new disclosure from the school nurse " * 40
    async with running_case(time_skipping, FakeAgencies(), "update-results-small") as case:
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        changed = await case.handle.execute_update(
            SharingCase.change_urgency,
            pb.UrgencyChange(actor=SOCIAL_WORKER, urgency=pb.URGENCY_RED, reason=reason),
        )
        held = await case.holder_state()
        acknowledged_ = await case.exchange().execute_update(HolderExchange.acknowledge, ack())
        await case.result()
        exchange_events = [e async for e in case.exchange().fetch_history_events()]
        case_events = [e async for e in case.handle.fetch_history_events()]
    assert isinstance(changed, pb.CommandResult)
    assert [e.event for e in changed.entries] == ["UrgencyChanged"]
    assert changed.state == pb.CASE_STATE_EXCHANGING
    assert isinstance(acknowledged_, pb.CommandResult)
    assert acknowledged_.holding_agency_id == SCHOOL
    assert acknowledged_.state == pb.CASE_STATE_CLOSED
    assert acknowledged_.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert [e.event for e in acknowledged_.entries] == ["Acknowledged"]
    assert acknowledged_.entry_number == len(held.entries) + 1
    # What history stores for each update's result: small, no request, no command text.
    results = [
        e.workflow_execution_update_completed_event_attributes.outcome.success.payloads[0]
        for e in [*case_events, *exchange_events]
        if e.HasField("workflow_execution_update_completed_event_attributes")
    ]
    assert len(results) == 2
    for payload in results:
        assert payload.metadata["messageType"] == b"sharing.v1.CommandResult"
        assert b"Amara" not in payload.data and b"nurse" not in payload.data
        assert len(payload.data) < 600, payload.data
    # One patch marker per workflow, whatever patches the code carries.
    for events in (case_events, exchange_events):
        markers = [e for e in events if e.HasField("marker_recorded_event_attributes")]
        assert len(markers) == 1
