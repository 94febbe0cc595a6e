"""No race hides a share: a withdrawal that meets a delivery in flight, a RED share-first whose
justification is owed, or an exchange closing gets one consistent answer and one consistent
record, and never fails a workflow task or a workflow."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    SignalChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.workflows.harness import CSC, SCHOOL, actor, running_case
from workflows import names
from workflows.holder_exchange import HolderExchange
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

REFUSED = given_consent(status=pb.CONSENT_STATUS_REFUSED)
ATTENDANCE = pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE
TEACHER = actor(SCHOOL, "teacher-1", "teacher")
DSL = actor(SCHOOL, "dsl-1", "designated_safeguarding_lead")
SOCIAL_WORKER = actor(CSC, "sw-1", "social_worker")
WITHDRAWAL = pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="child moved out of area")
HOLD = dt.timedelta(seconds=3)


async def no_task_failed(*handles: WorkflowHandle[Any, Any]) -> None:
    """Each workflow completed and none of its workflow tasks failed on the way."""
    for handle in handles:
        kinds = [e.event_type async for e in handle.fetch_history_events()]
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds, handle.id
        assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, handle.id


def ack() -> pb.Acknowledgement:
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
        use="strategy discussion",
        agency_id=CSC,
    )


async def test_a_delivery_that_lands_after_a_withdrawal_is_recorded_as_delivered(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(delivery_hold=asyncio.Event())
    async with running_case(time_skipping, agencies, "withdrawn-delivery-in-flight") as case:
        await asyncio.wait_for(agencies.delivery_in_flight.wait(), 20)
        view = await case.handle.execute_update(SharingCase.withdraw_request, WITHDRAWAL)
        assert isinstance(view, pb.CommandResult)  # what changed, not the whole view
        assert [e.event for e in view.entries] == ["RequestWithdrawn"]
        agencies.delivery_hold.set()  # type: ignore[union-attr]
        record = await asyncio.wait_for(case.result(), 30)
        await no_task_failed(case.handle, case.exchange())
    [holder] = record.holders
    assert holder.receipt.delivery_id == agencies.deliveries[0].delivery_id
    assert [i.category for i in holder.shared_items] == [ATTENDANCE, ATTENDANCE]
    assert holder.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert record.withdrawal.reason == WITHDRAWAL.reason
    events = [e.event for e in holder.entries]
    assert events.index("RequestWithdrawn") < events.index("RecordsDelivered")
    assert "withdrawn" in holder.basis.lower() and "shared by" in holder.basis.lower()


async def test_a_withdrawal_before_the_delivery_starts_shares_nothing(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "withdrawn-before-delivery") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.handle.execute_update(SharingCase.withdraw_request, WITHDRAWAL)
        record = await asyncio.wait_for(case.result(), 30)
        await no_task_failed(case.handle, case.exchange())
    assert record.outcome == pb.OUTCOME_WITHDRAWN
    assert agencies.deliveries == []


async def test_a_withdrawal_after_a_red_share_first_keeps_the_owed_justification(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "withdrawn-after-share-first",
                            urgency=pb.URGENCY_RED) as case:  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(
            HolderExchange.share_first,
            pb.ShareFirstDecision(actor=TEACHER, harm_statement="immediate risk",
                                  minimum_data_set=[ATTENDANCE]),
        )  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await case.handle.execute_update(SharingCase.withdraw_request, WITHDRAWAL)
        # The justification is still owed: the exchange stays open on the approver and the
        # ladder goes on (RED override decision: 1 h; reminder, lead at 1.5 h, operator 2 h).
        await time_skipping.sleep(dt.timedelta(hours=2, minutes=5))
        holder = await case.holder_state()
        assert holder.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        assert holder.waiting_on == pb.WAITING_ON_APPROVER
        assert [e.level for e in holder.escalations if e.step == "override_decision"] == [
            "reminder", "safeguarding_lead", "partnership_operator",
        ]  # fmt: skip
        await case.exchange().execute_update(
            HolderExchange.propose_override,
            pb.OverrideProposal(
                actor=TEACHER, consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
                harm_statement="pattern of absence", legal_basis="Children Act 1989 s47",
                reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
                necessity_and_proportionality="attendance only", minimum_data_set=[ATTENDANCE],
                alternatives_considered="none possible in time", advice_sought="dsl",
                subject_will_be_told=False, not_telling_reason="risk to the child",
            ),
        )  # fmt: skip
        await case.exchange().execute_update(
            HolderExchange.decide_override,
            pb.OverrideDecision(actor=DSL, approve=True, reason="threshold met"),
        )
        record = await asyncio.wait_for(case.result(), 30)
        await no_task_failed(case.handle, case.exchange())
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert record.holders[0].outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert record.holders[0].override_decision.approve
    assert record.withdrawal.reason == WITHDRAWAL.reason


class _HeldWithdrawal(WorkflowOutboundInterceptor):
    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        if input.signal == names.WITHDRAW_EXCHANGE:
            await workflow.sleep(HOLD)  # the exchange closes while the signal is on its way
        return await super().signal_child_workflow(input)


class _HeldInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_HeldWithdrawal(outbound))


class HoldWithdrawals(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _HeldInbound


async def test_a_withdrawal_that_meets_the_exchange_closing_gets_one_answer_and_one_record(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies()
    async with running_case(time_skipping, agencies, "withdrawal-meets-close",
                            hub_interceptors=[HoldWithdrawals()]) as case:  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        withdrawing = asyncio.create_task(
            case.handle.execute_update(SharingCase.withdraw_request, WITHDRAWAL)
        )
        for _ in range(200):
            events = [e async for e in case.handle.fetch_history_events()]
            if any(e.HasField("timer_started_event_attributes") for e in events):
                break
            await asyncio.sleep(0.02)
        await case.exchange().execute_update(HolderExchange.acknowledge, ack())
        await case.exchange().result()
        view = await asyncio.wait_for(withdrawing, 30)  # accepted, not INTERNAL
        assert isinstance(view, pb.CommandResult)  # what changed, not the whole view
        assert view.entries[0].event == "RequestWithdrawn"
        record = await asyncio.wait_for(case.result(), 30)
        await no_task_failed(case.handle, case.exchange())
    assert record.withdrawal.reason == WITHDRAWAL.reason
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert "WithdrawalMissedExchange" in [e.event for e in record.entries]
    assert record.holders[0].outcome == pb.OUTCOME_SHARED_WITH_CONSENT


async def test_a_refused_consent_withdrawal_is_recorded_first_then_pushed_until_received(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(withdrawal_notice_refusals_left=2)
    async with running_case(time_skipping, agencies, "consent-withdrawal-refused") as case:
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        withdrawal = pb.ConsentWithdrawal(actor=TEACHER, withdrawn_by_relationship="mother")
        # The recipient's system refuses the notice: the caller still gets the record, which
        # holds the withdrawal (not yet received), and the operator is alerted.
        result = await case.exchange().execute_update(HolderExchange.withdraw_consent, withdrawal)
        assert [e.event for e in result.entries] == [
            "ConsentWithdrawn",
            "ConsentWithdrawalNotDelivered",
        ]
        record = await case.holder_state()
        assert record.consent_withdrawal.withdrawn_by_relationship == "mother"
        assert not record.consent_withdrawal.recipient_notified
        assert [(a.step, a.agency_id) for a in agencies.operator_alerts] == [
            ("consent_withdrawal", CSC)
        ]
        # A repeat is refused for the right reason: the record does hold it.
        with pytest.raises(WorkflowUpdateFailedError) as repeat:
            await case.exchange().execute_update(HolderExchange.withdraw_consent, withdrawal)
        assert "already recorded" in str(repeat.value.cause)
        await case.exchange().execute_update(HolderExchange.acknowledge, ack())
        final = await asyncio.wait_for(case.result(), 30)
        await no_task_failed(case.handle, case.exchange())
    holder = final.holders[0]
    assert holder.consent_withdrawal.recipient_notified
    assert [n.notice_id for n in agencies.withdrawal_notices] == [
        f"{case.ref}.{SCHOOL}.consent-withdrawn"
    ]
    events = [e.event for e in holder.entries]
    assert events.count("ConsentWithdrawalNotDelivered") == 2
    assert "ConsentWithdrawalDelivered" in events
