"""The escalation ladder against the real sandbox agency, for every step and urgency: a
missed deadline reminds the practitioner, then the agency's safeguarding lead, then the
partnership operator, and never ends the case. A notification the agency refuses is recorded
and the ladder climbs past it; no failure on the ladder fails the exchange or the case."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.eventually import eventually
from tests.workflows.harness import CSC, SCHOOL, actor
from tests.workflows.real_agencies import Operator, RealCase, case_at_real_agencies
from workflows.holder_exchange import HolderExchange
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATTENDANCE = pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE
TEACHER = actor(SCHOOL, "teacher-1", "teacher")
SOCIAL_WORKER = actor(CSC, "sw-1", "social_worker")
LEAD = "designated_safeguarding_lead"
URGENCIES = [pb.URGENCY_RED, pb.URGENCY_AMBER, pb.URGENCY_GREEN]
LADDER = ["reminder", "safeguarding_lead", "partnership_operator"]


def proposal() -> pb.OverrideProposal:
    return pb.OverrideProposal(
        actor=TEACHER,
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="pattern of absence consistent with neglect",
        legal_basis="Children Act 1989 s47",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="only attendance is needed",
        minimum_data_set=[ATTENDANCE],
        alternatives_considered="asking the parent again: refused twice",
        advice_sought="designated safeguarding lead",
        subject_will_be_told=False,
        not_telling_reason="telling the parent may increase risk to the child",
    )


async def until_state(case: RealCase, state: pb.CaseState.ValueType) -> pb.HolderRecord:
    return await eventually(
        lambda: case.exchange().query(HolderExchange.holder_record),
        lambda record: record.state == state,
        what=f"reached {pb.CaseState.Name(state)}",
        retry_on=(Exception,),  # the exchange may not have started yet
        last=lambda record: [e.event for e in record.entries],
    )


async def reach(case: RealCase, step: str) -> str:
    """Bring the case to ``step`` and return the agency that step waits on."""
    if step == "recipient_acknowledges":
        await until_state(case, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        return CSC
    await until_state(case, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    if step == "override_decision":
        await case.exchange().execute_update(HolderExchange.propose_override, proposal())
    elif step == "share_first":
        await case.exchange().execute_update(
            HolderExchange.share_first,
            pb.ShareFirstDecision(actor=TEACHER, harm_statement="immediate risk",
                                  minimum_data_set=[ATTENDANCE]),
        )  # fmt: skip
    return SCHOOL


async def still_running(case: RealCase) -> None:
    for handle in (case.handle, case.exchange()):
        described = await handle.describe()
        assert described.status == WorkflowExecutionStatus.RUNNING, handle.id


@pytest.mark.parametrize("urgency", URGENCIES, ids=pb.Urgency.Name)
@pytest.mark.parametrize(
    "step", ["holder_responds", "override_decision", "share_first", "recipient_acknowledges"]
)
async def test_the_whole_ladder_fires_at_the_real_agency_and_the_case_stays_open(
    time_skipping: WorkflowEnvironment,
    pki: DevPki,
    tmp_path: Path,
    step: str,
    urgency: pb.Urgency.ValueType,
) -> None:
    if step == "share_first" and urgency != pb.URGENCY_RED:
        pytest.skip("share-first is RED only")
    subject = "consent-given" if step == "recipient_acknowledges" else "consent-refused"
    async with case_at_real_agencies(
        time_skipping, pki, tmp_path, subject=subject, urgency=urgency
    ) as case:
        responsible = await reach(case, step)
        ladder_step = "override_decision" if step == "share_first" else step
        # Long enough for any deadline on the calendar and the whole ladder.
        await time_skipping.sleep(dt.timedelta(days=30))
        await still_running(case)
        holder = await case.exchange().query(HolderExchange.holder_record)
        assert [e.level for e in holder.escalations if e.step == ladder_step] == LADDER
        assert "NotificationRefused" not in [e.event for e in holder.entries]
        notes = [n for n in case.agencies[responsible].store.notifications()
                 if n.step == ladder_step]  # fmt: skip
        assert [pb_kind(n.kind) for n in notes] == ["REMINDER", "ESCALATION"]
        reminder, lead = notes
        # The contract: every notification names a user or a role at the agency.
        assert reminder.practitioner_user_id or reminder.practitioner_role
        if step == "recipient_acknowledges":
            assert reminder.practitioner_user_id == case.request.requester.user_id
        elif step in {"override_decision", "share_first"}:
            assert reminder.practitioner_user_id == "teacher-1"
        else:
            assert reminder.practitioner_role == LEAD
        assert lead.practitioner_role == LEAD
        assert [a.step for a in case.operator.alerts] == [ladder_step]
        await case.handle.execute_update(
            SharingCase.withdraw_request,
            pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="no longer needed"),
        )
        if step == "share_first":  # shared: the justification is still owed and decided
            await case.exchange().execute_update(HolderExchange.propose_override, proposal())
            await case.exchange().execute_update(
                HolderExchange.decide_override,
                pb.OverrideDecision(actor=actor(SCHOOL, "dsl-1", LEAD), approve=False,
                                    reason="threshold not met"),
            )  # fmt: skip
        name = f"ladder-{step}-{pb.Urgency.Name(urgency).removeprefix('URGENCY_').lower()}"
        record = (
            await case.result(name) if urgency == pb.URGENCY_RED else await case.handle.result()
        )
    if step in {"holder_responds", "override_decision"}:
        assert record.outcome == pb.OUTCOME_WITHDRAWN
    else:  # what was delivered stays shared, withdrawn or not
        assert record.holders[0].receipt.delivery_id
        assert record.outcome != pb.OUTCOME_WITHDRAWN


def pb_kind(kind: agency_pb.NotificationKind.ValueType) -> str:
    return agency_pb.NotificationKind.Name(kind).removeprefix("NOTIFICATION_KIND_")


async def test_a_refused_reminder_is_recorded_and_the_lead_and_operator_are_told_at_once(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    async with case_at_real_agencies(time_skipping, pki, tmp_path, urgency=pb.URGENCY_RED) as case:
        await reach(case, "holder_responds")
        # The school's system knows nobody to notify for the first notification.
        case.faults(SCHOOL, fail_next=1, fail_code="NOT_FOUND", rpcs=["NotifyPractitioner"])
        # RED holder_responds: due at 2 h; the lead's own rung would be at 3 h.
        await time_skipping.sleep(dt.timedelta(hours=2, minutes=10))
        await still_running(case)
        holder = await case.exchange().query(HolderExchange.holder_record)
        assert [e.level for e in holder.escalations if e.step == "holder_responds"] == [
            "reminder", "safeguarding_lead",
        ]  # fmt: skip
        refused = [e for e in holder.entries if e.event == "NotificationRefused"]
        assert [e.detail for e in refused] == ["step=holder_responds level=reminder code=NOT_FOUND"]
        notes = case.agencies[SCHOOL].store.notifications()
        assert [n.practitioner_role for n in notes] == [LEAD]
        assert [(a.step, a.agency_id) for a in case.operator.alerts] == [("notification", SCHOOL)]
        # The lead's and the operator's rungs still come in their turn: nothing fires twice.
        await time_skipping.sleep(dt.timedelta(hours=3))
        holder = await case.exchange().query(HolderExchange.holder_record)
        assert [e.level for e in holder.escalations if e.step == "holder_responds"] == LADDER
        assert len(case.agencies[SCHOOL].store.notifications()) == 1
        await still_running(case)
        await case.handle.execute_update(
            SharingCase.withdraw_request,
            pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="no longer needed"),
        )
        record = await case.result("ladder-reminder-refused")
    assert record.outcome == pb.OUTCOME_WITHDRAWN


async def test_an_agency_that_refuses_every_notification_and_a_broken_operator_alert_end_nothing(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    operator = Operator(failing=True)
    async with case_at_real_agencies(
        time_skipping, pki, tmp_path, urgency=pb.URGENCY_RED, operator=operator
    ) as case:
        await reach(case, "share_first")
        case.faults(SCHOOL, unavailable=True, rpcs=["NotifyPractitioner"])
        await time_skipping.sleep(dt.timedelta(hours=3))
        await still_running(case)
        holder = await case.exchange().query(HolderExchange.holder_record)
        assert [e.level for e in holder.escalations if e.step == "override_decision"] == LADDER
        events = [e.event for e in holder.entries]
        assert events.count("NotificationRefused") == 2
        assert "OperatorAlertFailed" in events
        case.faults(SCHOOL)
        await case.exchange().execute_update(HolderExchange.propose_override, proposal())
        await case.exchange().execute_update(
            HolderExchange.decide_override,
            pb.OverrideDecision(actor=actor(SCHOOL, "dsl-1", LEAD), approve=True,
                                reason="threshold met"),
        )  # fmt: skip
        await case.exchange().execute_update(
            HolderExchange.acknowledge,
            pb.Acknowledgement(practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
                               status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED, use="strategy",
                               agency_id=CSC),
        )  # fmt: skip
        record = await case.result("ladder-nothing-gets-through")
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
