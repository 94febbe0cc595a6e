"""Consent withdrawn after an exchange closed: recorded and pushed to the recipient."""

from __future__ import annotations

import uuid

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from protos.sharing.v1 import case_pb2 as pb
from tests.workflows.harness import CSC, SCHOOL, FakeAgencies, actor
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.ids import consent_withdrawal_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_notice_reaches_the_recipient_and_is_recorded(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies()
    queue = f"hub-{uuid.uuid4().hex[:8]}"
    notice = pb.ConsentWithdrawalNoticeInput(
        case_ref="abcdefghijklmnopqrst",
        holding_agency_id=SCHOOL,
        recipient_agency_id=CSC,
        delivery_ids=["abcdefghijklmnopqrst.oakfield-primary.1"],
        withdrawal=pb.ConsentWithdrawal(
            actor=actor(SCHOOL, "teacher-1", "teacher"), withdrawn_by_relationship="mother"
        ),
    )
    async with (
        Worker(time_skipping.client, task_queue=queue, workflows=[ConsentWithdrawalNotice]),
        Worker(
            time_skipping.client,
            task_queue=agency_task_queue(CSC),
            activities=agencies.activities_for(CSC),
        ),
    ):
        recorded = await time_skipping.client.execute_workflow(
            ConsentWithdrawalNotice.run,
            notice,
            id=consent_withdrawal_workflow_id(notice.case_ref, SCHOOL),
            task_queue=queue,
        )
    assert recorded.recipient_notified
    assert recorded.withdrawn_by_relationship == "mother"
    [pushed] = agencies.withdrawal_notices
    assert list(pushed.delivery_ids) == list(notice.delivery_ids)
    assert pushed.holding_agency_id == SCHOOL


async def test_a_refused_notice_alerts_the_operator_and_is_pushed_again_never_failing(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(withdrawal_notice_refusals_left=2)
    queue = f"hub-{uuid.uuid4().hex[:8]}"
    notice = pb.ConsentWithdrawalNoticeInput(
        case_ref="bcdefghijklmnopqrstu",
        holding_agency_id=SCHOOL,
        recipient_agency_id=CSC,
        delivery_ids=["bcdefghijklmnopqrstu.oakfield-primary.1"],
        withdrawal=pb.ConsentWithdrawal(
            actor=actor(SCHOOL, "teacher-1", "teacher"), withdrawn_by_relationship="mother"
        ),
    )
    async with (
        Worker(
            time_skipping.client,
            task_queue=queue,
            workflows=[ConsentWithdrawalNotice],
            activities=[agencies.notify_operator],
        ),
        Worker(
            time_skipping.client,
            task_queue=agency_task_queue(CSC),
            activities=agencies.activities_for(CSC),
        ),
    ):
        recorded = await time_skipping.client.execute_workflow(
            ConsentWithdrawalNotice.run,
            notice,
            id=consent_withdrawal_workflow_id(notice.case_ref, SCHOOL),
            task_queue=queue,
        )
    assert recorded.recipient_notified
    assert [(a.step, a.agency_id) for a in agencies.operator_alerts] == [
        ("consent_withdrawal", CSC)
    ]
    assert len(agencies.withdrawal_notices) == 1
