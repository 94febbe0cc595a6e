"""The decision RPCs: one table, one path.

Every decision RPC is the same walk, and its row in ``DECISIONS`` says where it differs:

1. who is calling, and is the call well formed (the row's structural checks, field paths
   prefixed by the command's ``field`` in the request);
2. is the caller party to the case (read once: a non-party never hears the workflow's reason);
3. the row's ``route`` (``safeshare.gateway.routes``): is the caller in the role the command
   needs (PERMISSION_DENIED if not), and which workflow takes it with which update;
4. the update, sealed, with the update id made from the caller's ``command_id``
   (``safeshare.gateway.commands``): a workflow validator's refusal becomes its status
   (``safeshare.gateway.refusals``); a repeat of a command applied before its workflow was
   deleted is answered from the case's copy and the archived history;
5. the reply: the case as the caller may see it, reading again only the workflow the update
   changed (a case or exchange started with compact histories answers with what changed),
   and the receipt of what the command did.

A row's ``instead`` hook answers without an update (WithdrawConsent after its exchange has
closed: a ``ConsentWithdrawalNotice``, ``safeshare.gateway.notice``); its ``step_closed`` hook
may say better why the step is not open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway import commands, notice, parties, validation
from safeshare.gateway import disclosure_validation as dv
from safeshare.gateway.errors import GatewayError, invalid_argument
from safeshare.gateway.fields import (
    FieldViolation,
)
from safeshare.gateway.frame import current, rpc_timeout
from safeshare.gateway.identity import caller_agency
from safeshare.gateway.parts import Parts
from safeshare.gateway.refusals import _refusal
from safeshare.gateway.routes import (
    Acknowledged,
    DisclosureHolder,
    OwnExchange,
    Route,
    Router,
    Target,
    ToCase,
)
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.sharing_case import SharingCase

M = TypeVar("M", bound=Message)
R = TypeVar("R")
Answer = tuple[pb.CaseView, service_pb.CommandReceipt]


@dataclass(frozen=True)
class Command:
    """One decision as the caller sent it: the case, the command message (named by its field
    in the request, which prefixes its field paths) and the structural violations."""

    case_ref: str
    field: str
    message: Message
    violations: list[FieldViolation]
    fallback_field: str = ""
    """Where a workflow refusal that names no field is reported (default: ``field``)."""
    command_id: str = ""
    """The caller's idempotency key (``safeshare.gateway.commands``); empty for a fresh one."""


Hook = Callable[["Decisions", Command, str, pb.CaseView], Awaitable[Answer | None]]
ClosedHook = Callable[["Decisions", Command, Route], Awaitable[None]]


@dataclass(frozen=True)
class Decision:
    """One decision RPC: what differs from every other."""

    field: str
    validate: Callable[[Any], list[FieldViolation]]
    route: Router
    fallback_field: str = ""
    instead: Hook | None = None
    """Answers the command without an update when it returns an answer."""
    step_closed: ClosedHook | None = None
    """Runs when the workflow that owns the step has closed, before FAILED_PRECONDITION."""


DECISIONS: dict[str, Decision] = {
    "RecordConsent": Decision(
        "decision", validation.validate_record_consent, OwnExchange(HolderExchange.record_consent)
    ),
    "ProposeOverride": Decision(
        "proposal",
        validation.validate_propose_override,
        OwnExchange(HolderExchange.propose_override),
    ),
    "DecideOverride": Decision(
        "decision",
        validation.validate_decide_override,
        OwnExchange(HolderExchange.decide_override),
    ),
    "ShareFirst": Decision(
        "decision", validation.validate_share_first, OwnExchange(HolderExchange.share_first)
    ),
    "DeclineToShare": Decision(
        "decision",
        validation.validate_decline_to_share,
        OwnExchange(HolderExchange.decline_to_share),
        fallback_field="decision.reasons",
    ),
    "WithdrawConsent": Decision(
        "withdrawal",
        validation.validate_withdraw_consent,
        OwnExchange(HolderExchange.withdraw_consent),
        instead=notice.after_close,
        step_closed=notice.nothing_delivered,
    ),
    "WithdrawRequest": Decision(
        "withdrawal", validation.validate_withdraw_request, ToCase(SharingCase.withdraw_request)
    ),
    "ChangeUrgency": Decision(
        "change",
        validation.validate_change_urgency,
        ToCase(SharingCase.change_urgency),
        fallback_field="change.urgency",
    ),
    "Acknowledge": Decision("acknowledgement", validation.validate_acknowledge, Acknowledged()),
    "DecideDisclosure": Decision(
        "decision",
        dv.validate_decide_disclosure,
        DisclosureHolder(DisclosureCase.decide_disclosure),
    ),
}
"""Every decision RPC, by name."""


class Decisions:
    """Runs the decision RPCs."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self._command_key = parts.signer.derived_key(b"command-digest")

    async def decide(self, request: Any, context: grpc.aio.ServicerContext, reply: type[M]) -> M:
        """Run the current RPC's decision (its row in ``DECISIONS``) and answer with ``reply``."""
        row = DECISIONS[current().rpc]
        ref = request.case_ref
        command = Command(
            ref,
            row.field,
            getattr(request, row.field),
            row.validate(request),
            row.fallback_field,
            request.command_id,
        )
        agency = self._caller(context, command)
        # Party check before anything else: a non-party never hears the workflow's reason.
        case: pb.CaseView | None = None
        route = None if row.instead else row.route.known(agency, self.parts.views.parties(ref))
        if route is None:
            case = await parties.case_for_party(self.parts.views, ref, agency)
            route = row.route(agency, case, command.message)
            answer = await row.instead(self, command, agency, case) if row.instead else None
            if answer is not None:
                return reply(case=answer[0], applied=answer[1])
        try:
            result, receipt = await self._update(route, command, agency, case)
        except _StepClosed:
            if row.step_closed is not None:
                await row.step_closed(self, command, route)
            raise
        return reply(case=await self._reply(route, agency, ref, case, result), applied=receipt)

    def _caller(self, context: grpc.aio.ServicerContext, command: Command) -> str:
        """The calling agency, once the call is well formed."""
        call = current()
        agency = call.agency_id = caller_agency(context, self.parts.registry())
        if command.violations:
            raise invalid_argument(command.violations)
        call.case_ref = command.case_ref
        return agency

    async def _update(
        self, route: Route, command: Command, agency: str, case: pb.CaseView | None
    ) -> tuple[object, service_pb.CommandReceipt]:
        """The update's result and its receipt; for a repeat of a command applied before its
        workflow's history was deleted, the record the case keeps of that workflow, and the
        receipt from the update's result in the archived history."""
        handle = self.parts.client.get_workflow_handle(route.workflow_id(command.case_ref))
        message = commands.as_actor(command.message, agency)
        update_id = self.update_id(handle.id, command, message)
        try:
            result = await _translated(
                command,
                handle.execute_update(
                    route.update,
                    self.sealed(message, handle.id, update_id),
                    id=update_id,
                    rpc_timeout=rpc_timeout(),
                ),
            )
        except _StepClosed:
            if case is None:
                case = await parties.read_case(self.parts.views, command.case_ref)
            applied = route.closed_record(case)
            if applied is None or not commands.applied_in(applied, update_id):
                raise
            # Applied before the workflow closed, and Temporal has deleted it since: the
            # archived history holds the update's result.
            archived = await self.parts.views.closed.update_result(
                command.case_ref, handle.id, update_id
            )
            result = applied if route.target is Target.EXCHANGE else None
            return result, commands.receipt(update_id, archived)
        return result, commands.receipt(update_id, result)

    async def _reply(
        self, route: Route, agency: str, ref: str, case: pb.CaseView | None, result: object
    ) -> pb.CaseView:
        """The case as the caller may see it after the command: only the workflow the command
        updated is read again, unless its update answered with its whole view."""
        if route.target is Target.EXCHANGE:
            # 👉 The case's own view did not change: the one read before the update serves.
            assert case is not None  # a holder's exchange is routed from the case as read
            fresh = {route.holder: result} if isinstance(result, pb.HolderRecord) else {}
            return await parties.visible(self.parts.views, case, fresh, agency)
        if route.target is Target.CASE:
            view = (
                result
                if isinstance(result, pb.CaseView)
                else await parties.read_case(self.parts.views, ref)
            )
            return await parties.visible(self.parts.views, view, {}, agency)
        # 👉 The update's result is the view as its handler returned it; the workflow may have
        # done more in the same task (the run loop moves on to the next step and its
        # deadline), and its memo is written once that task has done its work, in the same
        # completion as the result: the memo's view is the reply, so that a read right after
        # agrees (the result's, for a workflow that publishes no view).
        if not isinstance(result, pb.CaseView):
            # A repeat answered from the archive (Temporal deleted the disclosure): the case
            # as read before the update is its archived record.
            assert case is not None  # a disclosure's command is routed from the case as read
            return await parties.visible(self.parts.views, case, {}, agency)
        published = await self.parts.views.published_case(ref, rpc_timeout())
        return await parties.visible(self.parts.views, published or result, {}, agency)

    def update_id(self, workflow_id: str, command: Command, message: Message) -> str:
        """The Temporal update id of ``message`` as the caller's command (``commands``)."""
        return commands.update_id(self._command_key, workflow_id, command.command_id, message)

    def sealed(self, message: M, workflow_id: str, command_id: str) -> M:
        """``message`` with the gateway's seal for that workflow and command."""
        return self.parts.signer.sealed(message, workflow_id, command_id)


async def _translated(command: Command, update: Awaitable[R]) -> R:
    """The update's result, or its refusal as a status (``GatewayError``)."""
    try:
        return await update
    except WorkflowUpdateFailedError as err:
        refusal = _refusal(err, command)
        if refusal is None:
            raise  # not a refusal the workflows document: logged as unexpected
        raise refusal from err
    except RPCError as err:
        # The case exists and the caller is a party, so NOT_FOUND means the workflow that
        # owns this step has closed or has not started yet: the command is out of turn.
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _StepClosed() from err
        raise


class _StepClosed(GatewayError):
    """The workflow that owns the step has closed and is gone (while Temporal keeps a closed
    workflow's history it answers a repeat of a command it applied itself), or has not
    started yet."""

    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.FAILED_PRECONDITION, "this step of the case is not open")
