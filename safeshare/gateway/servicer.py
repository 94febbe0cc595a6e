"""The ``sharing.v1.CaseService`` servicer: proto in, Temporal call, proto out.

No business logic lives here. The SharingCase workflow decides what may happen to a case (its
update validators reject out-of-turn or unpermitted decisions); the servicer establishes who
is calling, rejects malformed calls before they reach Temporal, and maps every outcome to a
gRPC status code. "Not yours" and "does not exist" are the same answer, NOT_FOUND, so a caller
cannot learn that another agency's case exists.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import grpc
import structlog
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare.gateway import validation
from safeshare.gateway.errors import GatewayError, abort, invalid_argument
from safeshare.gateway.identity import caller_agency
from safeshare.gateway.validation import FieldViolation
from workflows.ids import HUB_TASK_QUEUE, case_ref_for, case_workflow_id
from workflows.rejections import Rejection
from workflows.sharing_case import SharingCase

T = TypeVar("T")

# Below a caller's usual deadline, so a stuck Temporal call surfaces as UNAVAILABLE from us
# rather than as the caller's own DEADLINE_EXCEEDED with nothing logged here.
TEMPORAL_RPC_TIMEOUT = timedelta(seconds=10)

_REJECTION_CODES = {
    Rejection.OUT_OF_TURN: grpc.StatusCode.FAILED_PRECONDITION,
    Rejection.NOT_PERMITTED: grpc.StatusCode.PERMISSION_DENIED,
    Rejection.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
}
# Rejection messages of the acknowledge validator start with the field at fault.
_LEADING_FIELD = re.compile(r"^(acknowledgement(?:\.[a-z_]+)+)\b")
_TEMPORAL_DOWN = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)

CaseHandle = WorkflowHandle[SharingCase, pb.DecisionRecord]


@dataclass
class _Call:
    """What the access log line of one RPC says: ids and codes only."""

    rpc: str
    agency_id: str = ""
    case_ref: str = ""


class CaseServiceServicer(service_grpc.CaseServiceServicer):
    """Serves the Case API by starting, querying and updating SharingCase workflows.

    Args:
        client: the Temporal client (with the payload codec, when one is configured).
        registry: the partnership registry that says which agencies are partners.
        hub_task_queue: the task queue the hub worker running SharingCase polls.
    """

    def __init__(
        self, client: Client, registry: Registry, hub_task_queue: str = HUB_TASK_QUEUE
    ) -> None:
        self._client = client
        self._registry = registry
        self._hub_task_queue = hub_task_queue

    async def SubmitRequest(
        self, request: service_pb.SubmitRequestRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.SubmitRequestResponse:
        """Open a case for a request, or return the case its request id already opened."""
        return await self._serve(
            "SubmitRequest", context, lambda call: self._submit(request, context, call)
        )

    async def GetCase(
        self, request: service_pb.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.GetCaseResponse:
        """The case as it stands, for an agency that is party to it."""
        return await self._serve(
            "GetCase", context, lambda call: self._get_case(request, context, call)
        )

    async def Acknowledge(
        self, request: service_pb.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.AcknowledgeResponse:
        """Record the recipient's acknowledgement of a delivery."""
        return await self._serve(
            "Acknowledge", context, lambda call: self._acknowledge(request, context, call)
        )

    async def _submit(
        self,
        request: service_pb.SubmitRequestRequest,
        context: grpc.aio.ServicerContext,
        call: _Call,
    ) -> service_pb.SubmitRequestResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(validation.validate_submit(request))
        unknown = validation.unknown_holders(request, self._registry)
        if unknown:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, validation.NOT_A_PARTNER, unknown)
        _raise_if(validation.self_holders(request, agency))

        sharing = pb.SharingRequest()
        sharing.CopyFrom(request.request)
        # The requesting agency is whoever holds the certificate, whatever the body says.
        sharing.requesting_agency_id = agency
        case_ref = call.case_ref = case_ref_for(agency, sharing.request_id)
        try:
            await self._client.start_workflow(
                SharingCase.run,
                sharing,
                id=case_workflow_id(case_ref),
                task_queue=self._hub_task_queue,
                # 👉 The workflow id is derived from the idempotency key, and neither a running
                # nor a closed case with that id may be replaced: a resubmission finds its case.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=_summary(sharing),
                rpc_timeout=TEMPORAL_RPC_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return service_pb.SubmitRequestResponse(case_ref=case_ref, created=False)
        return service_pb.SubmitRequestResponse(case_ref=case_ref, created=True)

    async def _get_case(
        self, request: service_pb.GetCaseRequest, context: grpc.aio.ServicerContext, call: _Call
    ) -> service_pb.GetCaseResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(validation.validate_case_ref(request.case_ref))
        call.case_ref = request.case_ref
        view = await self._view_for_party(self._handle(request.case_ref), agency)
        return service_pb.GetCaseResponse(case=view)

    async def _acknowledge(
        self,
        request: service_pb.AcknowledgeRequest,
        context: grpc.aio.ServicerContext,
        call: _Call,
    ) -> service_pb.AcknowledgeResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(validation.validate_acknowledge(request))
        call.case_ref = request.case_ref
        handle = self._handle(request.case_ref)
        # Party check first: a non-party must get NOT_FOUND, never the workflow's reason.
        await self._view_for_party(handle, agency)

        ack = pb.Acknowledgement()
        ack.CopyFrom(request.acknowledgement)
        ack.agency_id = agency
        ack.ClearField("acknowledged_at")  # the workflow stamps it with workflow time
        try:
            view = await handle.execute_update(
                SharingCase.acknowledge, ack, rpc_timeout=TEMPORAL_RPC_TIMEOUT
            )
        except WorkflowUpdateFailedError as err:
            rejection = _rejection(err)
            if rejection is None:
                raise  # not a rejection the workflow documents: logged as unexpected
            raise rejection from err
        except RPCError as err:
            # The party check found the case, so NOT_FOUND now means it has closed.
            if err.status == RPCStatusCode.NOT_FOUND:
                raise GatewayError(grpc.StatusCode.FAILED_PRECONDITION, "case is closed") from err
            raise
        return service_pb.AcknowledgeResponse(case=view)

    def _handle(self, case_ref: str) -> CaseHandle:
        return self._client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))

    async def _view_for_party(self, handle: CaseHandle, agency: str) -> pb.CaseView:
        try:
            # 👉 Queries reach closed workflows too, as long as a hub worker is running.
            view: pb.CaseView = await handle.query(
                SharingCase.case_view, rpc_timeout=TEMPORAL_RPC_TIMEOUT
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise _case_not_found() from err
            raise
        request = view.record.request
        if agency != request.requesting_agency_id and agency not in request.holding_agency_ids:
            raise _case_not_found()
        return view

    async def _serve(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[_Call], Awaitable[T]],
    ) -> T:
        """Run one RPC: map every failure to a status and log one access line."""
        call = _Call(rpc)
        log = structlog.get_logger(__name__)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await handler(call)
        except GatewayError as err:
            code = err.code
            await abort(context, err)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except (
            RPCError,
            RPCTimeoutOrCancelledError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
        ) as err:
            if isinstance(err, RPCError) and err.status not in _TEMPORAL_DOWN:
                code = grpc.StatusCode.INTERNAL
                log.error("temporal_call_failed", rpc=rpc, temporal_status=err.status.name)
                await abort(context, GatewayError(code, "internal error"))
            code = grpc.StatusCode.UNAVAILABLE
            log.warning("temporal_unavailable", rpc=rpc, error_type=type(err).__name__)
            await abort(context, GatewayError(code, "case store unavailable; retry later"))
        except Exception as err:
            # The exception's message may quote a payload, so only its type is logged.
            code = grpc.StatusCode.INTERNAL
            log.error("unexpected_error", rpc=rpc, error_type=type(err).__name__)
            await abort(context, GatewayError(code, "internal error"))
        finally:
            log.info(
                "rpc_completed",
                rpc=rpc,
                agency_id=call.agency_id,
                case_ref=call.case_ref,
                code=code.name,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        raise invalid_argument(violations)


def _case_not_found() -> GatewayError:
    return GatewayError(grpc.StatusCode.NOT_FOUND, "case not found")


def _summary(request: pb.SharingRequest) -> str:
    """The case's static summary in the Temporal UI: codes and agency ids, no personal data."""
    urgency = pb.Urgency.Name(request.urgency).removeprefix("URGENCY_")
    purpose = pb.Purpose.Name(request.purpose).removeprefix("PURPOSE_")
    holders = ", ".join(request.holding_agency_ids)
    return f"{urgency} {purpose}: {request.requesting_agency_id} asks {holders}"


def _rejection(err: WorkflowUpdateFailedError) -> GatewayError | None:
    """The status for an update the workflow rejected by its type, or None if unknown."""
    cause = err.cause
    code = _REJECTION_CODES.get(cause.type or "") if isinstance(cause, ApplicationError) else None
    if not isinstance(cause, ApplicationError) or code is None:
        return None
    # Rejection messages hold codes and agency ids only (workflows/rejections.py).
    violations: list[FieldViolation] = []
    named = _LEADING_FIELD.match(cause.message)
    if code == grpc.StatusCode.INVALID_ARGUMENT and named:
        violations.append(FieldViolation(named.group(1), cause.message[named.end() :].strip()))
    return GatewayError(code, cause.message, violations)
