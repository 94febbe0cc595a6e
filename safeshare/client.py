"""A typed Python client for the Case API, for integrators and SafeShare's own tools.

    async with CaseClient.connect("127.0.0.1:50051", tls) as cases:
        submitted = await cases.submit(request)
        view = await cases.get(submitted.case_ref)
        page = await cases.list_cases(waiting_on=pb.WAITING_ON_HOLDER)
        async for event in cases.watch_case(submitted.case_ref):
            print(event.number, event.entry.event)

Calls raise ``grpc.aio.AioRpcError``; ``rpc_status.from_call(err)`` gives the rich details
(``google.rpc.BadRequest`` field violations).

Retries: every unary call of the Case API is safe to repeat (SubmitRequest and SubmitDisclosure
on their request's id, each decision on its ``command_id``, reads anyway), so the client retries
UNAVAILABLE and DEADLINE_EXCEEDED itself, up to ``attempts`` times with a growing pause (the
server's ``google.rpc.RetryInfo`` when it gives one). Each decision call makes one command id
(a UUID) unless the caller passes its own, and keeps it for every retry: a decision whose reply
was lost is applied once and the retry answers as the first call did.

Decisions answer with their reply: ``case``, the case as it stands at this call, and
``applied``, the receipt of what the command did as it was applied (its ``command_id``, the
``entry_number`` its record's entries end at, the ``state`` and ``outcome`` right after it),
identical for every repeat of the command, also after the case has moved on or closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1.case_service_pb2_grpc import CaseServiceStub
from safeshare.tls import TlsFiles, channel_credentials

DEFAULT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 4
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""The codes a call is repeated on: the call may or may not have reached SafeShare."""
FIRST_PAUSE = 0.2
MAX_PAUSE = 5.0
R = TypeVar("R")

SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        # The client watches each gateway's health and leaves out any not SERVING.
        "healthCheckConfig": {"serviceName": ""},
    }
)


def gateway_channel(
    target: str | Sequence[str], server_name: str | None = None
) -> tuple[str, list[tuple[str, str | int]]]:
    """The channel target and options that reach every gateway in ``target``, round robin,
    health-checked (see ``CaseClient.connect``)."""
    addresses = [target] if isinstance(target, str) else list(target)
    addresses = [a.strip() for item in addresses for a in item.split(",") if a.strip()]
    if not addresses:
        raise ValueError("no gateway address")
    options: list[tuple[str, str | int]] = [("grpc.service_config", SERVICE_CONFIG)]
    if len(addresses) == 1:
        channel_target = addresses[0]
    else:
        # The ipv4:/ipv6: schemes take a list; names must be resolved first (or use dns:///).
        scheme = "ipv6" if addresses[0].startswith("[") else "ipv4"
        channel_target = f"{scheme}:{','.join(addresses)}"
        server_name = server_name or addresses[0].rsplit(":", 1)[0].strip("[]")
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
        options.append(("grpc.default_authority", server_name))
    return channel_target, options


def new_command_id() -> str:
    """A fresh idempotency key for one decision."""
    return str(uuid.uuid4())


class CaseClient:
    """The Case API as typed async calls. Every call has a deadline (per attempt)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self._stub = CaseServiceStub(channel)
        self._timeout = timeout
        self._attempts = max(attempts, 1)

    async def _call(self, method: Callable[..., Awaitable[R]], request: object) -> R:
        """``method(request)``, repeated on UNAVAILABLE or DEADLINE_EXCEEDED (the same request:
        the same idempotency key)."""
        pause = FIRST_PAUSE
        for attempt in range(1, self._attempts + 1):
            try:
                return await method(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRIED or attempt == self._attempts:
                    raise
                wait = _retry_delay(err)
                await asyncio.sleep(wait if wait is not None else random.uniform(0, pause))
                pause = min(pause * 2, MAX_PAUSE)
        raise AssertionError("unreachable")

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        target: str | Sequence[str],
        tls: TlsFiles,
        call_timeout: float = DEFAULT_TIMEOUT,
        server_name: str | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> AsyncIterator[CaseClient]:
        """Open an mTLS channel to the gateway as the agency named in ``tls.cert``.

        ``target`` is one ``host:port``, any gRPC target (``dns:///gateway.example:50051``,
        whose name resolves to every gateway), or several ``host:port`` addresses (a list, or
        comma-separated). Calls are spread over every address the target gives, round robin,
        and only to gateways whose ``grpc.health.v1`` says SERVING: a gateway that stops or
        drains is left out until it serves again. ``server_name`` is the name the gateways'
        certificate carries, when the addresses are not it. ``attempts``: how many times a
        call is sent when it answers UNAVAILABLE or DEADLINE_EXCEEDED (1: never repeated).
        """
        channel_target, options = gateway_channel(target, server_name)
        async with grpc.aio.secure_channel(
            channel_target, channel_credentials(tls), options=options
        ) as channel:
            yield cls(channel, call_timeout, attempts)

    async def submit(self, request: pb.SharingRequest) -> service_pb.SubmitRequestResponse:
        """Submit a request; the same ``request_id`` returns the same case."""
        return await self._call(
            self._stub.SubmitRequest, service_pb.SubmitRequestRequest(request=request)
        )

    async def submit_disclosure(
        self, disclosure: pb.Disclosure
    ) -> service_pb.SubmitDisclosureResponse:
        """Open a disclosure case as its holder (idempotent on ``disclosure_id``)."""
        return await self._call(
            self._stub.SubmitDisclosure, service_pb.SubmitDisclosureRequest(disclosure=disclosure)
        )

    async def get(self, case_ref: str) -> pb.CaseView:
        """Read a case the calling agency is party to."""
        response = await self._call(
            self._stub.GetCase, service_pb.GetCaseRequest(case_ref=case_ref)
        )
        return response.case

    async def acknowledge(
        self, case_ref: str, acknowledgement: pb.Acknowledgement, command_id: str | None = None
    ) -> service_pb.AcknowledgeResponse:
        """Acknowledge a delivery as the recipient."""
        return await self._call(
            self._stub.Acknowledge,
            service_pb.AcknowledgeRequest(
                case_ref=case_ref,
                acknowledgement=acknowledgement,
                command_id=command_id or new_command_id(),
            ),
        )

    async def record_consent(
        self, case_ref: str, decision: pb.ConsentDecision, command_id: str | None = None
    ) -> service_pb.RecordConsentResponse:
        """As the holder: record consent, or why it is not sought."""
        return await self._call(
            self._stub.RecordConsent,
            service_pb.RecordConsentRequest(
                case_ref=case_ref, decision=decision, command_id=command_id or new_command_id()
            ),
        )

    async def propose_override(
        self, case_ref: str, proposal: pb.OverrideProposal, command_id: str | None = None
    ) -> service_pb.ProposeOverrideResponse:
        """As the holder: propose an override with its justification."""
        return await self._call(
            self._stub.ProposeOverride,
            service_pb.ProposeOverrideRequest(
                case_ref=case_ref, proposal=proposal, command_id=command_id or new_command_id()
            ),
        )

    async def decide_override(
        self, case_ref: str, decision: pb.OverrideDecision, command_id: str | None = None
    ) -> service_pb.DecideOverrideResponse:
        """As an approver at the holder: approve or reject the proposed override."""
        return await self._call(
            self._stub.DecideOverride,
            service_pb.DecideOverrideRequest(
                case_ref=case_ref, decision=decision, command_id=command_id or new_command_id()
            ),
        )

    async def share_first(
        self, case_ref: str, decision: pb.ShareFirstDecision, command_id: str | None = None
    ) -> service_pb.ShareFirstResponse:
        """As the holder, RED only: share now and justify within the override deadline."""
        return await self._call(
            self._stub.ShareFirst,
            service_pb.ShareFirstRequest(
                case_ref=case_ref, decision=decision, command_id=command_id or new_command_id()
            ),
        )

    async def decline_to_share(
        self, case_ref: str, decision: pb.DeclineDecision, command_id: str | None = None
    ) -> service_pb.DeclineToShareResponse:
        """As the holder: decide not to share, with reasons."""
        return await self._call(
            self._stub.DeclineToShare,
            service_pb.DeclineToShareRequest(
                case_ref=case_ref, decision=decision, command_id=command_id or new_command_id()
            ),
        )

    async def withdraw_request(
        self, case_ref: str, withdrawal: pb.RequestWithdrawal, command_id: str | None = None
    ) -> service_pb.WithdrawRequestResponse:
        """As the requester: withdraw the request."""
        return await self._call(
            self._stub.WithdrawRequest,
            service_pb.WithdrawRequestRequest(
                case_ref=case_ref, withdrawal=withdrawal, command_id=command_id or new_command_id()
            ),
        )

    async def change_urgency(
        self, case_ref: str, change: pb.UrgencyChange, command_id: str | None = None
    ) -> service_pb.ChangeUrgencyResponse:
        """As the requester: re-rate the urgency."""
        return await self._call(
            self._stub.ChangeUrgency,
            service_pb.ChangeUrgencyRequest(
                case_ref=case_ref, change=change, command_id=command_id or new_command_id()
            ),
        )

    async def withdraw_consent(
        self, case_ref: str, withdrawal: pb.ConsentWithdrawal, command_id: str | None = None
    ) -> service_pb.WithdrawConsentResponse:
        """As the holder: record consent withdrawn after delivery; the recipient is told."""
        return await self._call(
            self._stub.WithdrawConsent,
            service_pb.WithdrawConsentRequest(
                case_ref=case_ref, withdrawal=withdrawal, command_id=command_id or new_command_id()
            ),
        )

    async def decide_disclosure(
        self, case_ref: str, decision: pb.DisclosureApproval, command_id: str | None = None
    ) -> service_pb.DecideDisclosureResponse:
        """As an approver at the holder: approve or reject a disclosure without consent. The
        reply: ``case`` and the receipt ``applied``."""
        return await self._call(
            self._stub.DecideDisclosure,
            service_pb.DecideDisclosureRequest(
                case_ref=case_ref, decision=decision, command_id=command_id or new_command_id()
            ),
        )

    async def list_cases(
        self,
        *,
        state: pb.CaseState.ValueType = pb.CASE_STATE_UNSPECIFIED,
        waiting_on: pb.WaitingOn.ValueType = pb.WAITING_ON_UNSPECIFIED,
        deadline_before: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> service_pb.ListCasesResponse:
        """One page of the calling agency's cases; pass ``next_page_token`` for the next.

        A case-level ``state`` (REQUESTED, EXCHANGING, CLOSED) lists whole cases; any other
        filter lists the matching holders' exchanges, one entry each.
        """
        request = service_pb.ListCasesRequest(
            state=state, waiting_on=waiting_on, page_size=page_size, page_token=page_token
        )
        if deadline_before is not None:
            request.deadline_before.FromDatetime(deadline_before)
        response: service_pb.ListCasesResponse = await self._call(self._stub.ListCases, request)
        return response

    async def watch_case(
        self, case_ref: str, from_event: int = 0, deadline: float | None = None
    ) -> AsyncGenerator[service_pb.CaseEvent, None]:
        """The case's events as they happen, until the case closes.

        After a disconnect, call again with ``from_event`` = the last number received + 1:
        no event is lost or repeated.

        Args:
            case_ref: a case the calling agency is party to.
            from_event: the first event number wanted; 0 for the whole case.
            deadline: seconds the whole watch may last; None to follow the case until it
                closes (a case may stay open for days: reconnect as needed).
        """
        call = self._stub.WatchCase(
            service_pb.WatchCaseRequest(case_ref=case_ref, from_event=from_event),
            timeout=deadline,
        )
        try:
            async for response in call:
                yield response.event
        finally:
            call.cancel()


def _retry_delay(err: grpc.aio.AioRpcError) -> float | None:
    """The pause the server asks for (``google.rpc.RetryInfo``), if it names one."""
    status = rpc_status.from_call(err)
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return min(info.retry_delay.ToTimedelta().total_seconds(), MAX_PAUSE)
    return None
