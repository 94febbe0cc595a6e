"""A typed Python client for the Case API, for integrators and SafeShare's own tools.

    async with CaseClient.connect("127.0.0.1:50051", tls) as cases:
        submitted = await cases.submit(request)
        view = await cases.get(submitted.case_ref)

Calls raise ``grpc.aio.AioRpcError``; ``rpc_status.from_call(err)`` gives the rich details
(``google.rpc.BadRequest`` field violations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1.case_service_pb2_grpc import CaseServiceStub
from safeshare.tls import TlsFiles, channel_credentials

DEFAULT_TIMEOUT = 10.0


class CaseClient:
    """The Case API as typed async calls. Every call has a deadline."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = CaseServiceStub(channel)
        self._timeout = timeout

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, target: str, tls: TlsFiles, call_timeout: float = DEFAULT_TIMEOUT
    ) -> AsyncIterator[CaseClient]:
        """Open an mTLS channel to the gateway as the agency named in ``tls.cert``."""
        async with grpc.aio.secure_channel(target, channel_credentials(tls)) as channel:
            yield cls(channel, call_timeout)

    async def submit(self, request: pb.SharingRequest) -> service_pb.SubmitRequestResponse:
        """Submit a request; the same ``request_id`` returns the same case."""
        return await self._stub.SubmitRequest(
            service_pb.SubmitRequestRequest(request=request), timeout=self._timeout
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
