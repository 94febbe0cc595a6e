"""A decision repeated after Temporal deleted its case (retention) answers from the archived
record, which shows the command was applied: OK, not FAILED_PRECONDITION, with the receipt the
first call got; a command the record does not show is still out of turn. The gateway seals, so
the record names each command's id. A disclosure recorded again after Temporal deleted it
finds it in the archive and opens no second case."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.archive.errors import ArchiveUnavailable
from safeshare.archive.records import sha256_hex
from safeshare.archive.url import open_archive
from safeshare.gateway import CaseServiceServicer, create_gateway_server
from safeshare.pki import DevPki
from tests.disclosure_factories import concern
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER
from tests.safeshare.archive.test_archiver import Stack, _delete
from tests.safeshare.gateway_support import (
    CSC,
    GP,
    SCHOOL,
    WAIT,
    acknowledgement,
    new_request,
    running_workers,
    violations,
    wait_for_state,
)
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def sealed_stack(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry, tmp_path: Path
) -> AsyncIterator[Stack]:
    client = dev_server.client
    archive = open_archive(f"sqlite:///{tmp_path / 'archive.db'}")
    hub_queue = f"hub-repeat-{uuid.uuid4()}"
    # The hub of running_workers checks seals against the tests' gateway key.
    servicer = CaseServiceServicer(client, registry, hub_queue, archive, signer=TEST_SIGNER)
    server, port = await create_gateway_server(
        client, registry, tls.server_credentials(pki.gateway()), hub_task_queue=hub_queue,
        servicer=servicer,
    )  # fmt: skip
    channels = [
        grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(a)))
        for a in (CSC, SCHOOL, GP)
    ]
    fakes = FakeAgencies()
    try:
        async with running_workers(client, hub_queue, fakes):
            stubs = [service_grpc.CaseServiceStub(c) for c in channels]
            yield Stack(
                client, stubs[0], stubs[1], archive, Ed25519PrivateKey.generate(), fakes, stubs[2]
            )
    finally:
        for channel in channels:
            await channel.close()
        await server.stop(None)
        archive.close()


async def test_a_repeat_after_temporal_deleted_the_case_answers_from_the_record(
    sealed_stack: Stack,
) -> None:
    stack = sealed_stack
    call = new_request()
    ref = case_ref_for(CSC, call.request.request_id)
    await stack.csc.SubmitRequest(call)
    await wait_for_state(stack.csc, ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    ack = acknowledgement(ref)
    ack.command_id = "ack-1"
    first = await stack.csc.Acknowledge(ack)
    handle = stack.client.get_workflow_handle(case_workflow_id(ref))
    await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    await stack.archive_until({case_workflow_id(ref)})
    await _delete(stack.client, case_workflow_id(ref), holder_exchange_workflow_id(ref, SCHOOL))

    again = await stack.csc.Acknowledge(ack)
    other = acknowledgement(ref)
    other.command_id = "ack-2"
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await stack.csc.Acknowledge(other)

    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert again.case.state == pb.CASE_STATE_CLOSED
    # What the acknowledgement did, from the update's result in the archived history: the
    # same receipt as the first call's, which Temporal gave before it deleted the case.
    assert again.applied == first.applied
    assert first.applied.command_id == "ack-1" and first.applied.entry_number > 0
    assert first.applied.state == pb.CASE_STATE_CLOSED
    acknowledged = again.case.record.holders[0].acknowledgement
    assert acknowledged.practitioner == first.case.record.holders[0].acknowledgement.practitioner
    assert acknowledged.status == ack.acknowledgement.status


async def _forget_case(stack: Stack, case_ref: str) -> None:
    """Archive the case, then delete it and every workflow archived with it from Temporal."""
    record_id = case_workflow_id(case_ref)
    await stack.archive_until({record_id})
    stored = stack.archive.get(record_id)
    assert stored is not None
    await _delete(stack.client, *(h.workflow_id for h in stored.record.histories))


async def test_a_disclosure_decision_repeated_after_temporal_deleted_the_case_answers_its_receipt(
    sealed_stack: Stack,
) -> None:
    stack = sealed_stack
    opened = await stack.gp.SubmitDisclosure(
        service_pb.SubmitDisclosureRequest(disclosure=concern(pb.URGENCY_AMBER))
    )
    ref = opened.case_ref
    await wait_for_state(stack.gp, ref, pb.CASE_STATE_AWAITING_OVERRIDE_DECISION)
    decision = service_pb.DecideDisclosureRequest(
        case_ref=ref,
        command_id="approve-1",
        decision=pb.DisclosureApproval(
            actor=pb.Actor(practitioner=pb.Practitioner(user_id="cg-1", role="manager")),
            approve=True, reason="fictional",
        ),
    )  # fmt: skip
    first = await stack.gp.DecideDisclosure(decision)
    await wait_for_state(stack.csc, ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    ack = pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="sw-0001", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
    )
    await stack.csc.Acknowledge(service_pb.AcknowledgeRequest(case_ref=ref, acknowledgement=ack))
    handle = stack.client.get_workflow_handle(case_workflow_id(ref))
    await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    await _forget_case(stack, ref)

    again = await stack.gp.DecideDisclosure(decision)
    other = service_pb.DecideDisclosureRequest()
    other.CopyFrom(decision)
    other.command_id = "approve-2"
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await stack.gp.DecideDisclosure(other)

    # The receipt Temporal gave the first call, from the update's result in the archive.
    assert again.applied == first.applied
    assert first.applied.command_id == "approve-1" and first.applied.entry_number > 0
    assert again.case.state == pb.CASE_STATE_CLOSED
    assert again.case.record.disclosure.approval.approve
    assert again.case.record.disclosure.approval.reason == "fictional"
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_disclosure_not_made_recorded_again_after_temporal_deleted_it_opens_nothing(
    sealed_stack: Stack,
) -> None:
    stack = sealed_stack
    call = service_pb.RecordDisclosureNotMadeRequest(
        not_made=pb.DisclosureNotMade(
            disclosure_id=f"considered-{uuid.uuid4()}",
            decided_by=pb.Practitioner(user_id="gp-0007", role="gp"),
            kind=pb.DISCLOSURE_KIND_CONCERN, recipient_agency_ids=[CSC],
            reasons=["threshold_not_met"], explanation="fictional",
        )
    )  # fmt: skip
    recorded = await stack.gp.RecordDisclosureNotMade(call)
    ref = recorded.case_ref
    handle = stack.client.get_workflow_handle(case_workflow_id(ref))
    await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    await _forget_case(stack, ref)

    again = await stack.gp.RecordDisclosureNotMade(call)

    assert recorded.created and (again.case_ref, again.created) == (ref, False)
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND  # no second case was started
    view = (await stack.gp.GetCase(service_pb.GetCaseRequest(case_ref=ref))).case
    assert view.state == pb.CASE_STATE_CLOSED and view.record.outcome == pb.OUTCOME_NOT_SHARED


async def test_a_request_submitted_again_after_temporal_deleted_its_case_opens_nothing(
    sealed_stack: Stack,
) -> None:
    stack = sealed_stack
    call = new_request()
    ref = case_ref_for(CSC, call.request.request_id)
    opened = await stack.csc.SubmitRequest(call)
    await wait_for_state(stack.csc, ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    await stack.csc.Acknowledge(acknowledgement(ref))
    handle = stack.client.get_workflow_handle(case_workflow_id(ref))
    await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    await _forget_case(stack, ref)
    before = (await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=ref))).case

    again = await stack.csc.SubmitRequest(call)
    other = service_pb.SubmitRequestRequest()
    other.CopyFrom(call)
    other.request.urgency = pb.URGENCY_AMBER
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stack.csc.SubmitRequest(other)

    assert opened.created and (again.case_ref, again.created) == (ref, False)
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert violations(reused.value) == [("request.request_id", f"already used by case {ref}")]
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND  # no second case was started
    after = (await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=ref))).case
    assert after == before and after.state == pb.CASE_STATE_CLOSED


async def test_a_request_opens_while_the_archive_is_down_and_temporal_still_finds_a_repeat(
    sealed_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sealed_stack

    def down(case_ref: str) -> None:
        raise ArchiveUnavailable("archive down")

    monkeypatch.setattr(stack.archive, "records_of_case", down)
    call = new_request()

    opened = await stack.csc.SubmitRequest(call)
    again = await stack.csc.SubmitRequest(call)

    ref = case_ref_for(CSC, call.request.request_id)
    assert (opened.case_ref, opened.created) == (again.case_ref, not again.created) == (ref, True)


@pytest.mark.parametrize("damage", ["garbled", "edited"])
async def test_a_repeat_whose_archived_record_no_longer_reads_answers_data_loss_and_opens_nothing(
    sealed_stack: Stack, tmp_path: Path, damage: str
) -> None:
    """Temporal has deleted the case and the archive's copy was altered: the request id is
    still taken (no second case), and a read that needs the damaged part says the record is
    damaged (DATA_LOSS), never INTERNAL and never "no such case"."""
    stack = sealed_stack
    call = new_request()
    ref = case_ref_for(CSC, call.request.request_id)
    await stack.csc.SubmitRequest(call)
    await wait_for_state(stack.csc, ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    await stack.csc.Acknowledge(acknowledgement(ref))
    handle = stack.client.get_workflow_handle(case_workflow_id(ref))
    await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    await _forget_case(stack, ref)
    # Garbled: bytes that are no history, with the digest kept beside them made to match (so
    # only reading them fails); edited: the history's bytes changed, the digest left alone.
    with sqlite3.connect(tmp_path / "archive.db") as db:
        if damage == "garbled":
            db.execute(
                "UPDATE histories SET content = ?, sha256 = ? WHERE record_id = ?",
                (b"\x00not a history", sha256_hex(b"\x00not a history"), case_workflow_id(ref)),
            )
        else:
            where = "WHERE record_id = ? AND workflow_id = ?"
            ids = (case_workflow_id(ref), case_workflow_id(ref))
            [(content,)] = db.execute(f"SELECT content FROM histories {where}", ids).fetchall()
            edited = content.replace(b"COMPLETED", b"FAILED", 1)
            assert edited != content
            db.execute(f"UPDATE histories SET content = ? {where}", (edited, *ids))

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stack.csc.SubmitRequest(call)
    assert again.value.code() == grpc.StatusCode.DATA_LOSS, again.value.details()
    assert "safeshare archive verify" in (again.value.details() or "")
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND  # no second case was started
    if damage == "edited":
        # The reader checks each history against its digest before anything reads it.
        with pytest.raises(grpc.aio.AioRpcError) as read:
            await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=ref))
        assert read.value.code() == grpc.StatusCode.DATA_LOSS, read.value.details()
    else:
        # The decision record (stored apart from the histories) still reads: the case is shown.
        shown = (await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=ref))).case
        assert shown.state == pb.CASE_STATE_CLOSED and shown.case_ref == ref
