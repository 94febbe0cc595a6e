"""Decisions are idempotent on their command id, through the sealing gateway and the real hub.

A reply lost on the way back (dropped by a client interceptor after the gateway answered) is
retried by ``CaseClient`` with the same command id: the workflow history holds one update and
both calls got the same answer. The same id with other content is refused, and a repeat after
the case closed answers OK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare import tls
from safeshare.client import CaseClient
from safeshare.gateway.commands import command_id_of
from tests.safeshare.gateway_support import (
    CSC,
    SCHOOL,
    acknowledgement,
    change_urgency,
    decide_override,
    decline,
    new_request,
    propose_override,
    withdraw_consent,
)
from tests.security.test_forged_decisions import Stack, stack
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id

__all__ = ["stack"]

pytestmark = pytest.mark.asyncio(loop_scope="session")


class DropFirstReply(grpc.aio.UnaryUnaryClientInterceptor):
    """Lets the first call of ``method`` reach the gateway, keeps its reply and reports
    UNAVAILABLE instead, as a network that lost the reply would; ``between`` runs once the
    first reply is lost, before the retry (the case moving on meanwhile). Every reply that
    arrived is kept in ``replies``."""

    def __init__(self, method: str, between: Callable[[], Awaitable[object]] | None = None) -> None:
        self.method = method
        self.between = between
        self.dropped: list[Message] = []
        self.calls: list[Message] = []
        self.replies: list[Message] = []

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        call = await continuation(client_call_details, request)
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else str(method)
        if not name.endswith(f"/{self.method}"):
            return call
        self.calls.append(request)
        self.replies.append(await call)
        if self.dropped:
            return call
        self.dropped.append(self.replies[-1])
        if self.between is not None:
            await self.between()
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="reply lost on the way back",
        )


@asynccontextmanager
async def client_for(
    stack: Stack, agency: str, *interceptors: grpc.aio.ClientInterceptor
) -> AsyncIterator[CaseClient]:
    credentials = tls.channel_credentials(stack.pki.agency(agency))
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{stack.gateway_port}", credentials, interceptors=list(interceptors)
    ) as channel:
        yield CaseClient(channel, timeout=20)


async def updates_in(stack: Stack, workflow_id: str) -> list[str]:
    """The ids of the updates the workflow's history accepted, in order."""
    handle = stack.system.get_workflow_handle(workflow_id)
    return [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_update_accepted_event_attributes")
    ]


async def test_a_decision_whose_reply_was_lost_is_applied_once_and_answered_twice_alike(
    stack: Stack,
) -> None:
    ref = await stack.refused_case()

    async def approver_decides() -> None:
        # The case moves on between the lost reply and the retry: the override is approved.
        await stack.stub(SCHOOL).DecideOverride(decide_override(ref))

    lose = DropFirstReply("ProposeOverride", between=approver_decides)
    proposal = propose_override(ref).proposal
    async with client_for(stack, SCHOOL, lose) as school:
        answer = await school.propose_override(ref, proposal)
    # The client made one command id and sent it twice: the first reply was lost.
    assert len(lose.calls) == 2
    first, retry = (c.command_id for c in lose.calls)  # type: ignore[attr-defined]
    assert first and first == retry
    lost, retried = lose.replies
    assert isinstance(lost, service_pb.ProposeOverrideResponse)
    assert isinstance(retried, service_pb.ProposeOverrideResponse)
    assert lost == lose.dropped[0] and retried == answer
    # The same receipt, from the update's own result: what the proposal did, as it was applied.
    assert lost.applied == retried.applied
    assert lost.applied.command_id == first
    assert lost.applied.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    assert lost.applied.outcome == pb.OUTCOME_UNSPECIFIED
    assert lost.applied.entry_number > 0
    # The view is the case as it stands at each call: it has moved on since the first.
    assert lost.case.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    assert answer.case.state != pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    assert answer.case.record.holders[0].HasField("override_decision")
    assert len(answer.case.record.holders[0].entries) > lost.applied.entry_number
    applied = await updates_in(stack, holder_exchange_workflow_id(ref, SCHOOL))
    # One update for the proposal (the approver's decision is the other).
    proposed, decided = (command_id_of(u) for u in applied)
    assert proposed == first and decided != first


async def test_the_same_command_id_with_other_content_is_refused(stack: Stack) -> None:
    ref = await stack.refused_case()
    async with client_for(stack, SCHOOL) as school:
        await school.propose_override(ref, propose_override(ref).proposal, command_id="cmd-1")
        other = propose_override(ref).proposal
        other.harm_statement = "another statement"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await school.propose_override(ref, other, command_id="cmd-1")
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    status = rpc_status.from_call(refused.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["command_id"]
    applied = await updates_in(stack, holder_exchange_workflow_id(ref, SCHOOL))
    assert [command_id_of(u) for u in applied] == ["cmd-1"]


async def test_a_repeat_after_the_case_closed_answers_with_the_applied_decision(
    stack: Stack,
) -> None:
    ref = await stack.refused_case()
    declined = decline(ref).decision
    async with client_for(stack, SCHOOL) as school:
        first = await school.decline_to_share(ref, declined, command_id="decline-1")
        case = stack.system.get_workflow_handle(case_workflow_id(ref))
        await asyncio.wait_for(case.result(), 20)
        again = await school.decline_to_share(ref, declined, command_id="decline-1")
        # A new decision on the closed case is still out of turn.
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await school.decline_to_share(ref, declined, command_id="decline-2")
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The client hands back the receipt: what the decision did, the same for the repeat.
    assert again.applied == first.applied and first.applied.command_id == "decline-1"
    assert first.applied.entry_number > 0
    assert again.case.record.holders[0].outcome == pb.OUTCOME_NOT_SHARED
    assert list(again.case.record.holders[0].decline.reasons) == list(declined.reasons)
    applied = await updates_in(stack, holder_exchange_workflow_id(ref, SCHOOL))
    assert [command_id_of(u) for u in applied] == ["decline-1"]


async def test_a_malformed_command_id_is_refused_with_its_field(stack: Stack) -> None:
    ref = await stack.refused_case()
    stub = stack.stub(SCHOOL)
    call = propose_override(ref)
    for bad in ("has space", "x" * 65, "new\nline", "tilde~"):
        call.command_id = bad
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ProposeOverride(call)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        status = rpc_status.from_call(refused.value)
        assert status is not None
        details = error_details_pb2.BadRequest()
        status.details[0].Unpack(details)
        assert "command_id" in [v.field for v in details.field_violations], bad
    assert await updates_in(stack, holder_exchange_workflow_id(ref, SCHOOL)) == []


async def test_a_consent_withdrawal_after_the_exchange_closed_is_recorded_once(
    stack: Stack,
) -> None:
    call = new_request(SCHOOL)
    ref = case_ref_for(CSC, call.request.request_id)
    await stack.stub(CSC).SubmitRequest(call)
    await stack.until(ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    async with client_for(stack, CSC) as csc, client_for(stack, SCHOOL) as school:
        await csc.acknowledge(ref, acknowledgement(ref).acknowledgement)
        await asyncio.wait_for(stack.system.get_workflow_handle(case_workflow_id(ref)).result(), 20)
        withdrawal = withdraw_consent(ref).withdrawal
        first = await school.withdraw_consent(ref, withdrawal, command_id="wc-1")
        again = await school.withdraw_consent(ref, withdrawal, command_id="wc-1")
        other = pb.ConsentWithdrawal()
        other.CopyFrom(withdrawal)
        other.reason = "another reason"
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await school.withdraw_consent(ref, other, command_id="wc-1")
        with pytest.raises(grpc.aio.AioRpcError) as second:
            await school.withdraw_consent(ref, withdrawal, command_id="wc-2")
    assert first == again
    assert first.case.record.holders[0].consent_withdrawal.recipient_notified
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert second.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    notices = [n for n in stack.fakes.withdrawal_notices if n.case_ref == ref]
    assert len(notices) == 1


async def test_a_requesters_command_on_the_case_is_applied_once_per_command_id(
    stack: Stack,
) -> None:
    ref = await stack.refused_case()
    change = change_urgency(ref).change
    async with client_for(stack, CSC) as csc:
        first = await csc.change_urgency(ref, change, command_id="urgency-1")
        again = await csc.change_urgency(ref, change, command_id="urgency-1")
        other = pb.UrgencyChange()
        other.CopyFrom(change)
        other.reason = "another reason"
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await csc.change_urgency(ref, other, command_id="urgency-1")
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.case.record.urgency == again.case.record.urgency == change.urgency
    assert len(again.case.record.urgency_changes) == 1
    applied = await updates_in(stack, case_workflow_id(ref))
    assert [command_id_of(u) for u in applied] == ["urgency-1"]
