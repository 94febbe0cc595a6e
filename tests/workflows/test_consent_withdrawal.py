"""Consent withdrawn after an exchange closed: recorded and pushed to the recipient."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from activities.protocol_gate import ProtocolGate
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.sharing.v1 import case_pb2 as pb
from safeshare.gateway.signing import GatewaySigner
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER, gateway_key_file, without_sealing
from tests.workflows.harness import CSC, HISTORIES, SCHOOL, actor
from workflows.consent_withdrawal import NOT_SEALED, ConsentWithdrawalNotice
from workflows.ids import consent_withdrawal_workflow_id
from workflows.runner import workflow_runner
from workflows.seal import START

pytestmark = pytest.mark.asyncio(loop_scope="session")
GATE = ProtocolGate(DEFAULT_REGISTRY_PATH, gateway_key_file())


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
        Worker(
            time_skipping.client,
            task_queue=queue,
            workflows=[ConsentWithdrawalNotice],
            workflow_runner=workflow_runner(),
            activities=[GATE.check_notice],
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
    await _record(time_skipping, consent_withdrawal_workflow_id(notice.case_ref, SCHOOL), "notice")
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
            workflow_runner=workflow_runner(),
            activities=[agencies.notify_operator, GATE.check_notice],
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
    await _record(
        time_skipping, consent_withdrawal_workflow_id(notice.case_ref, SCHOOL), "notice-refused"
    )
    assert recorded.recipient_notified
    assert [(a.step, a.agency_id) for a in agencies.operator_alerts] == [
        ("consent_withdrawal", CSC)
    ]
    assert len(agencies.withdrawal_notices) == 1


async def _record(env: WorkflowEnvironment, workflow_id: str, name: str) -> None:
    """With SAFESHARE_RECORD_HISTORIES set, the notice's history joins the replay corpus as
    ``<name>.notice.json`` (append-only, as the harness's)."""
    if not os.environ.get("SAFESHARE_RECORD_HISTORIES"):
        return
    path = HISTORIES / f"{name}.notice.json"
    if path.exists():
        return
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
    index = HISTORIES / "workflow-ids.json"
    ids = json.loads(index.read_text())
    ids[path.name] = workflow_id
    index.write_text(json.dumps(ids, indent=1, sort_keys=True) + "\n")


def _notice(case_ref: str) -> pb.ConsentWithdrawalNoticeInput:
    return pb.ConsentWithdrawalNoticeInput(
        case_ref=case_ref,
        holding_agency_id=SCHOOL,
        recipient_agency_id=CSC,
        delivery_ids=[f"{case_ref}.oakfield-primary.1"],
        withdrawal=pb.ConsentWithdrawal(
            actor=actor(SCHOOL, "teacher-1", "teacher"), withdrawn_by_relationship="mother"
        ),
    )


@pytest.mark.parametrize("forgery", ["unsealed", "sealed by another key", "another notice's"])
async def test_a_notice_the_gateway_did_not_seal_tells_the_recipient_nothing(
    time_skipping: WorkflowEnvironment, forgery: str
) -> None:
    """A client straight to Temporal starts a notice: the hub's check refuses it before any
    push, and the workflow fails (for the operators' alert on failed workflows)."""
    agencies = FakeAgencies()
    queue = f"hub-{uuid.uuid4().hex[:8]}"
    notice = _notice("cdefghijklmnopqrstuv")
    workflow_id = consent_withdrawal_workflow_id(notice.case_ref, SCHOOL)
    if forgery == "sealed by another key":
        notice = GatewaySigner(Ed25519PrivateKey.generate()).sealed(notice, workflow_id, START)
    elif forgery == "another notice's":
        notice = TEST_SIGNER.sealed(
            notice, consent_withdrawal_workflow_id("defghijklmnopqrstuvw", SCHOOL), START
        )
    attacker = without_sealing(time_skipping.client)
    async with (
        Worker(
            time_skipping.client,
            task_queue=queue,
            workflows=[ConsentWithdrawalNotice],
            workflow_runner=workflow_runner(),
            activities=[agencies.notify_operator, GATE.check_notice],
        ),
        Worker(
            time_skipping.client,
            task_queue=agency_task_queue(CSC),
            activities=agencies.activities_for(CSC),
        ),
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await attacker.execute_workflow(
                ConsentWithdrawalNotice.run, notice, id=workflow_id, task_queue=queue
            )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == NOT_SEALED
    assert agencies.withdrawal_notices == []
