"""A typed Python client for the Case API, for integrators and SafeShare's own tools.

    async with CaseClient.connect("127.0.0.1:50051", tls) as cases:
        submitted = await cases.submit(request)
        view = await cases.get(submitted.case_ref)
        page = await cases.list_cases(waiting_on=pb.WAITING_ON_HOLDER)
        async for event in cases.watch_case(submitted.case_ref):
            print(event.number, event.entry.event)

Calls raise ``grpc.aio.AioRpcError``; ``rpc_status.from_call(err)`` gives the rich details
(``google.rpc.BadRequest`` field violations).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager

import grpc

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1.case_service_pb2_grpc import CaseServiceStub
from safeshare.tls import TlsFiles, channel_credentials

DEFAULT_TIMEOUT = 10.0

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


class CaseClient:
    """The Case API as typed async calls. Every call has a deadline."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = CaseServiceStub(channel)
        self._timeout = timeout

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        target: str | Sequence[str],
        tls: TlsFiles,
        call_timeout: float = DEFAULT_TIMEOUT,
        server_name: str | None = None,
    ) -> AsyncIterator[CaseClient]:
        """Open an mTLS channel to the gateway as the agency named in ``tls.cert``.

        ``target`` is one ``host:port``, any gRPC target (``dns:///gateway.example:50051``,
        whose name resolves to every gateway), or several ``host:port`` addresses (a list, or
        comma-separated). Calls are spread over every address the target gives, round robin,
        and only to gateways whose ``grpc.health.v1`` says SERVING: a gateway that stops or
        drains is left out until it serves again. ``server_name`` is the name the gateways'
        certificate carries, when the addresses are not it.
        """
        channel_target, options = gateway_channel(target, server_name)
        async with grpc.aio.secure_channel(
            channel_target, channel_credentials(tls), options=options
        ) as channel:
            yield cls(channel, call_timeout)

    async def submit(self, request: pb.SharingRequest) -> service_pb.SubmitRequestResponse:
        """Submit a request; the same ``request_id`` returns the same case."""
        return await self._stub.SubmitRequest(
            service_pb.SubmitRequestRequest(request=request), timeout=self._timeout
        )

    async def submit_disclosure(
        self, disclosure: pb.Disclosure
    ) -> service_pb.SubmitDisclosureResponse:
        """Open a disclosure case as its holder (idempotent on ``disclosure_id``)."""
        return await self._stub.SubmitDisclosure(
            service_pb.SubmitDisclosureRequest(disclosure=disclosure), timeout=self._timeout
        )

    async def get(self, case_ref: str) -> pb.CaseView:
        """Read a case the calling agency is party to."""
        response = await self._stub.GetCase(
            service_pb.GetCaseRequest(case_ref=case_ref), timeout=self._timeout
        )
        return response.case

    async def acknowledge(self, case_ref: str, acknowledgement: pb.Acknowledgement) -> pb.CaseView:
        """Acknowledge a delivery as the recipient."""
        response = await self._stub.Acknowledge(
            service_pb.AcknowledgeRequest(case_ref=case_ref, acknowledgement=acknowledgement),
            timeout=self._timeout,
        )
        return response.case

    async def record_consent(self, case_ref: str, decision: pb.ConsentDecision) -> pb.CaseView:
        """As the holder: record consent, or why it is not sought."""
        response = await self._stub.RecordConsent(
            service_pb.RecordConsentRequest(case_ref=case_ref, decision=decision),
            timeout=self._timeout,
        )
        return response.case

    async def propose_override(self, case_ref: str, proposal: pb.OverrideProposal) -> pb.CaseView:
        """As the holder: propose an override with its justification."""
        response = await self._stub.ProposeOverride(
            service_pb.ProposeOverrideRequest(case_ref=case_ref, proposal=proposal),
            timeout=self._timeout,
        )
        return response.case

    async def decide_override(self, case_ref: str, decision: pb.OverrideDecision) -> pb.CaseView:
        """As an approver at the holder: approve or reject the proposed override."""
        response = await self._stub.DecideOverride(
            service_pb.DecideOverrideRequest(case_ref=case_ref, decision=decision),
            timeout=self._timeout,
        )
        return response.case

    async def share_first(self, case_ref: str, decision: pb.ShareFirstDecision) -> pb.CaseView:
        """As the holder, RED only: share now and justify within the override deadline."""
        response = await self._stub.ShareFirst(
            service_pb.ShareFirstRequest(case_ref=case_ref, decision=decision),
            timeout=self._timeout,
        )
        return response.case

    async def decline_to_share(self, case_ref: str, decision: pb.DeclineDecision) -> pb.CaseView:
        """As the holder: decide not to share, with reasons."""
        response = await self._stub.DeclineToShare(
            service_pb.DeclineToShareRequest(case_ref=case_ref, decision=decision),
            timeout=self._timeout,
        )
        return response.case

    async def withdraw_request(
        self, case_ref: str, withdrawal: pb.RequestWithdrawal
    ) -> pb.CaseView:
        """As the requester: withdraw the request."""
        response = await self._stub.WithdrawRequest(
            service_pb.WithdrawRequestRequest(case_ref=case_ref, withdrawal=withdrawal),
            timeout=self._timeout,
        )
        return response.case

    async def change_urgency(self, case_ref: str, change: pb.UrgencyChange) -> pb.CaseView:
        """As the requester: re-rate the urgency."""
        response = await self._stub.ChangeUrgency(
            service_pb.ChangeUrgencyRequest(case_ref=case_ref, change=change),
            timeout=self._timeout,
        )
        return response.case

    async def withdraw_consent(
        self, case_ref: str, withdrawal: pb.ConsentWithdrawal
    ) -> pb.CaseView:
        """As the holder: record consent withdrawn after delivery; the recipient is told."""
        response = await self._stub.WithdrawConsent(
            service_pb.WithdrawConsentRequest(case_ref=case_ref, withdrawal=withdrawal),
            timeout=self._timeout,
        )
        return response.case

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
        response: service_pb.ListCasesResponse = await self._stub.ListCases(
            request, timeout=self._timeout
        )
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
