"""The frame of every Case API call: deadline, access history, error mapping, access log line
and metric, as one ``grpc.aio`` server interceptor for unary and streaming RPCs alike.

The handler inside the frame says what the frame needs to know of its call by filling the
call's ``Call`` (``current()``): the caller's agency, the case, and for a read what its access
event records. The frame then, for every RPC:

- remembers the caller's deadline, so each Temporal call made for it gets ``rpc_timeout()``:
  the time left, capped at ``TEMPORAL_RPC_TIMEOUT``, so no Temporal call outlives the call
  that asked for it;
- records the reads it served before the reply leaves (a read that cannot be recorded is not
  served; a watch records itself when it starts serving, ``RpcFrame.record``), and a refused
  read as refused (``safeshare.gateway.access``);
- answers a ``GatewayError`` with its status, Temporal being down or slow with UNAVAILABLE or
  RESOURCE_EXHAUSTED, anything else with INTERNAL (``failure``);
- logs one ``rpc_completed`` line (ids, code and duration only) and counts the call by RPC
  and code.

When the caller's deadline passes or it cancels, grpc cancels the handler task, which cancels
the Temporal call in flight; the call is logged as CANCELLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from partnership.registry import Registry
from safeshare.access.group_commit import GroupCommit
from safeshare.access.log import AccessLog
from safeshare.archive.errors import ArchiveUnavailable, UnreadableRecord
from safeshare.gateway import access
from safeshare.gateway.errors import GatewayError, abort
from safeshare.gateway.interceptor import MethodInterceptor
from safeshare.metrics import count_gateway_request
from safeshare.tls import peer_common_name

# Below a caller's usual deadline, so a stuck Temporal call surfaces as UNAVAILABLE from us
# rather than as the caller's own DEADLINE_EXCEEDED with nothing logged here.
TEMPORAL_RPC_TIMEOUT = timedelta(seconds=10)
# Temporal is overloaded (e.g. too many updates in flight on one case): retry after a pause.
TEMPORAL_BUSY_RETRY_SECONDS = 1.0
# CANCELLED is what the client reports when our own rpc_timeout ends a call (an update the
# workflow has not answered in time): the caller may retry later, so it is not INTERNAL.
# FAILED_PRECONDITION from Temporal (never a workflow's refusal: those arrive as update
# failures) means the workflow cannot answer yet: its first workflow task has not completed
# (WorkflowNotReadyFailure), or the server is settling after a restart; the chaos runs see both.
_TEMPORAL_DOWN = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.FAILED_PRECONDITION,
)

log = structlog.get_logger(__name__)


@dataclass
class Call:
    """One RPC as its frame sees it; the handler fills in what only it knows."""

    rpc: str
    agency_id: str = ""
    """The calling agency, once the handler has established it."""
    case_ref: str = ""
    """The case the call is about, if one."""
    read: access.Read | None = None
    """Set by a read RPC: what its access event records."""
    deadline: float | None = None
    """The monotonic time the caller's deadline passes, if it set one."""
    started: float = field(default_factory=time.perf_counter)
    sent: int = 0
    """Messages a streaming RPC has sent."""


_CALL: contextvars.ContextVar[Call | None] = contextvars.ContextVar("gateway_call", default=None)


def current() -> Call:
    """The call being served by this handler task.

    Raises:
        RuntimeError: the handler does not run inside an ``RpcFrame``.
    """
    call = _CALL.get()
    if call is None:
        raise RuntimeError("a Case API handler runs inside the RpcFrame interceptor")
    return call


def rpc_timeout() -> timedelta:
    """The timeout for a Temporal call made for the current RPC: what is left of the
    caller's deadline, at most ``TEMPORAL_RPC_TIMEOUT`` (and at least a moment, so an
    expiring call fails fast rather than with a zero timeout's odd errors)."""
    call = _CALL.get()
    if call is None or call.deadline is None:
        return TEMPORAL_RPC_TIMEOUT
    left = timedelta(seconds=max(call.deadline - time.monotonic(), 0.05))
    return min(left, TEMPORAL_RPC_TIMEOUT)


class RpcFrame(MethodInterceptor):
    """Frames every method of ``service`` (innermost: the handler runs inside it).

    Args:
        service: the full name of the service whose methods are framed.
        registry: the partnership registry now (who the recorded agency is).
        access_log: where reads and refused reads are recorded; None records nothing.
    """

    def __init__(
        self, service: str, registry: Callable[[], Registry], access_log: AccessLog | None
    ) -> None:
        super().__init__(service)
        self._registry = registry
        self._access_log = None if access_log is None else GroupCommit(access_log)

    def around(
        self, rpc: str, request: Any, context: grpc.aio.ServicerContext, stream: bool
    ) -> contextlib.AbstractAsyncContextManager[Call]:
        return self._framed(rpc, context, stream=stream)

    def streamed(self, around: Any) -> None:
        around.sent += 1

    @contextlib.asynccontextmanager
    async def _framed(
        self, rpc: str, context: grpc.aio.ServicerContext, *, stream: bool
    ) -> AsyncIterator[Call]:
        """One call's frame, around its handler."""
        remaining = context.time_remaining()
        call = Call(rpc, deadline=None if remaining is None else time.monotonic() + remaining)
        _CALL.set(call)
        code = grpc.StatusCode.OK
        try:
            yield call
            # 👉 Before the reply leaves: a read that cannot be recorded is not served.
            await self.record(context)
        except (asyncio.CancelledError, GeneratorExit):
            # The caller went away or its deadline passed: the call stops here.
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as err:
            error = await self._answer(call, err, context)
            code = error.code
            await abort(context, error)
        finally:
            # A stream's line says how many messages it sent.
            extra = {"events_sent": call.sent} if stream else {}
            _log_line(call, code, **extra)

    async def record(self, context: grpc.aio.ServicerContext) -> None:
        """Record the cases the current call has served so far (raises if the log cannot
        take them): a long read, such as a watch, records them when it starts serving."""
        await self._append(current(), grpc.StatusCode.OK, context)

    async def _answer(
        self, call: Call, err: Exception, context: grpc.aio.ServicerContext
    ) -> GatewayError:
        """The status for the handler's failure; a refused read is recorded as refused (a log
        that fails then is logged, the refusal still sent)."""
        if not isinstance(err, GatewayError):
            return failure(call.rpc, err)
        try:
            await self._append(call, err.code, context)
        except Exception as failed:
            log.error("access_log_failed", rpc=call.rpc, error_type=type(failed).__name__)
        return err

    async def _append(
        self, call: Call, code: grpc.StatusCode, context: grpc.aio.ServicerContext
    ) -> None:
        if call.read is None or self._access_log is None:
            return
        # A caller turned away as no partner is named by its certificate all the same.
        agency_id = call.agency_id or peer_common_name(context) or ""
        found = access.events(
            call.read,
            code,
            agency_id,
            self._registry().get(call.agency_id),
            call.case_ref,
            datetime.now(UTC),
        )
        if found:
            # 👉 With the other calls' events waiting then: one transaction and fsync for all.
            await self._access_log.append(found)


def failure(rpc: str, err: Exception) -> GatewayError:
    """The status for a failure that is not a refusal: UNAVAILABLE when Temporal is down or
    slow (the caller may retry), DATA_LOSS when the case's archived record no longer reads,
    INTERNAL for anything else (logged by type only: the exception's message may quote a
    payload)."""
    if isinstance(err, UnreadableRecord):
        # 👉 Never answered as if the case were not there: a repeat of its request must not
        # open it again, and a reader must not take a damaged record for no record.
        log.error("archive_record_unreadable", rpc=rpc, error=str(err))
        return GatewayError(
            grpc.StatusCode.DATA_LOSS,
            "the archived record of this case does not read (altered or damaged); the "
            "partnership's operators can check the archive with `safeshare archive verify`",
        )
    down = isinstance(
        err,
        RPCTimeoutOrCancelledError | WorkflowUpdateRPCTimeoutOrCancelledError | ArchiveUnavailable,
    )
    if isinstance(err, RPCError):
        down = err.status in _TEMPORAL_DOWN
    if isinstance(err, RPCError) and err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        log.warning("temporal_busy", rpc=rpc, **_temporal_status(err))
        return GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "case store busy; retry later",
            retry_after=TEMPORAL_BUSY_RETRY_SECONDS,
        )
    if down:
        # Temporal's status and detail types (never its message) say which kind it was.
        log.warning(
            "temporal_unavailable", rpc=rpc, error_type=type(err).__name__, **_temporal_status(err)
        )
        return GatewayError(
            grpc.StatusCode.UNAVAILABLE,
            "case store unavailable; retry later",
            retry_after=TEMPORAL_BUSY_RETRY_SECONDS,
        )
    if isinstance(err, RPCError):
        log.error("temporal_call_failed", rpc=rpc, **_temporal_status(err))
    else:
        log.error("unexpected_error", rpc=rpc, error_type=type(err).__name__)
    return GatewayError(grpc.StatusCode.INTERNAL, "internal error")


def _temporal_status(err: Exception) -> dict[str, str]:
    if not isinstance(err, RPCError):
        return {}
    details = ",".join(d.TypeName() for d in err.grpc_status.details)
    return {"temporal_status": err.status.name, "temporal_details": details}


def _log_line(call: Call, code: grpc.StatusCode, **extra: object) -> None:
    """The access log line of one call: ids, status and duration only; and its metric."""
    count_gateway_request(call.rpc, code.name)
    log.info(
        "rpc_completed",
        rpc=call.rpc,
        agency_id=call.agency_id,
        case_ref=call.case_ref,
        code=code.name,
        duration_ms=round((time.perf_counter() - call.started) * 1000, 1),
        **extra,
    )
