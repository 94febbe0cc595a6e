"""WithdrawConsent once the holder's exchange has closed: a ``ConsentWithdrawalNotice``.

Consent withdrawn after delivery is recorded by the open exchange itself (an update, as every
decision is). Once the exchange has closed (the case holds its copy), a
``ConsentWithdrawalNotice`` workflow records the withdrawal and tells the recipient: one per
exchange, so a second withdrawal is FAILED_PRECONDITION, and a repeat of the same command finds
the notice it started (the notice's memo keeps the command's update id).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import grpc
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from safeshare.gateway import commands, parties
from safeshare.gateway.errors import GatewayError
from safeshare.gateway.frame import rpc_timeout
from safeshare.gateway.refusals import _reused
from workflows import seal
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.ids import consent_withdrawal_workflow_id

if TYPE_CHECKING:
    from safeshare.gateway.decisions import Answer, Command, Decisions
    from safeshare.gateway.routes import Route

COMMAND_MEMO = "command"
"""A consent-withdrawal notice's memo key for the update id of the command that started it."""
NOTHING_DELIVERED = "nothing was delivered"
ALREADY_RECORDED = "consent withdrawal already recorded"


async def nothing_delivered(decisions: Decisions, command: Command, route: Route) -> None:
    """FAILED_PRECONDITION "nothing was delivered" when the holder's exchange never started
    (its step is otherwise just not open)."""
    handle = decisions.parts.client.get_workflow_handle(route.workflow_id(command.case_ref))
    try:
        await handle.describe(rpc_timeout=rpc_timeout())
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _failed(NOTHING_DELIVERED) from err
        raise


async def after_close(
    decisions: Decisions, command: Command, agency: str, case: pb.CaseView
) -> Answer | None:
    """The withdrawal as a notice, when the case holds the closed exchange's copy; None while
    the exchange is open (it records the withdrawal itself)."""
    closed = {h.holding_agency_id: h for h in case.record.holders}
    if agency not in closed:
        return None
    record = pb.HolderRecord()
    record.CopyFrom(closed[agency])
    if not record.HasField("receipt"):
        raise _failed(NOTHING_DELIVERED)
    notice = pb.ConsentWithdrawalNoticeInput(
        case_ref=command.case_ref,
        holding_agency_id=agency,
        recipient_agency_id=case.record.request.requesting_agency_id,
        delivery_ids=[record.receipt.delivery_id],
    )
    notice_id = consent_withdrawal_workflow_id(command.case_ref, agency)
    if await _only_archived(decisions, notice_id):
        # Its first notice was archived and Temporal has deleted it: a start would not
        # find it and would tell the recipient twice.
        raise _failed(ALREADY_RECORDED)
    withdrawal = cast(pb.ConsentWithdrawal, commands.as_actor(command.message, agency))
    notice.withdrawal.CopyFrom(decisions.sealed(withdrawal, notice_id, seal.START))
    # The notice is a workflow start, not an update: its memo keeps the command's id, so
    # a repeat of the same command finds the notice it started.
    update_id = decisions.update_id(notice_id, command, withdrawal)
    handle = await _start(decisions, notice, notice_id, update_id)
    try:
        withdrawal = await asyncio.wait_for(handle.result(), rpc_timeout().total_seconds())
    except TimeoutError:
        # Recorded and still being pushed to the recipient (its system may be down).
        withdrawal = notice.withdrawal
    # 👉 No update: the receipt is the closed exchange's record, which no longer changes
    # (its entries and outcome as it closed), so every repeat answers the same.
    receipt = commands.receipt(update_id, record)
    record.consent_withdrawal.CopyFrom(withdrawal)
    return await parties.visible(decisions.parts.views, case, {agency: record}, agency), receipt


async def _start(
    decisions: Decisions, notice: pb.ConsentWithdrawalNoticeInput, notice_id: str, update_id: str
) -> Any:
    """The notice's handle: started now, or the one this command started before."""
    try:
        return await decisions.parts.client.start_workflow(
            ConsentWithdrawalNotice.run,
            decisions.sealed(notice, notice_id, seal.START),
            id=notice_id,
            task_queue=decisions.parts.hub_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=(
                f"Consent withdrawn at {notice.holding_agency_id} for case {notice.case_ref}"
            ),
            memo={COMMAND_MEMO: update_id},
            rpc_timeout=rpc_timeout(),
        )
    except WorkflowAlreadyStartedError as err:
        handle = decisions.parts.client.get_workflow_handle_for(
            ConsentWithdrawalNotice.run, notice_id
        )
        described = await handle.describe(rpc_timeout=rpc_timeout())
        first = await described.memo_value(COMMAND_MEMO, "")
        if first != update_id:
            if first and commands.command_id_of(first) == commands.command_id_of(update_id):
                raise _reused() from err
            raise _failed(ALREADY_RECORDED) from err
        return handle


async def _only_archived(decisions: Decisions, notice_id: str) -> bool:
    """Whether a consent-withdrawal notice is in the archive and no longer in Temporal."""
    archive = decisions.parts.views.archive
    if archive is None or not await asyncio.to_thread(archive.known, [notice_id]):
        return False
    try:
        await decisions.parts.client.get_workflow_handle(notice_id).describe(
            rpc_timeout=rpc_timeout()
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return True
        raise
    return False


def _failed(message: str) -> GatewayError:
    return GatewayError(grpc.StatusCode.FAILED_PRECONDITION, message)
