"""The client's decision calls hand their callers the whole reply: the case as it stands and
the receipt of what the command did (``applied``), on a real gRPC server over mTLS whose
answers carry a receipt of their own making; a retried call returns the receipt the retry
got, for the one command id the client made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1.case_service_pb2_grpc import (
    CaseServiceServicer,
    add_CaseServiceServicer_to_server,
)
from safeshare.client import CaseClient
from safeshare.pki import DevPki
from safeshare.tls import server_credentials

pytestmark = pytest.mark.asyncio(loop_scope="session")

# client method, RPC, the type of the command it sends
DECISIONS = [
    ("acknowledge", "Acknowledge", pb.Acknowledgement),
    ("record_consent", "RecordConsent", pb.ConsentDecision),
    ("propose_override", "ProposeOverride", pb.OverrideProposal),
    ("decide_override", "DecideOverride", pb.OverrideDecision),
    ("share_first", "ShareFirst", pb.ShareFirstDecision),
    ("decline_to_share", "DeclineToShare", pb.DeclineDecision),
    ("withdraw_request", "WithdrawRequest", pb.RequestWithdrawal),
    ("change_urgency", "ChangeUrgency", pb.UrgencyChange),
    ("withdraw_consent", "WithdrawConsent", pb.ConsentWithdrawal),
    ("decide_disclosure", "DecideDisclosure", pb.DisclosureApproval),
]


def receipt_for(request: Any, attempt: int) -> service_pb.CommandReceipt:
    """The receipt the fake answers the ``attempt``-th call of an RPC with."""
    return service_pb.CommandReceipt(
        command_id=request.command_id,
        entry_number=40 + attempt,
        state=pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT,
        outcome=pb.OUTCOME_SHARED_WITH_CONSENT,
    )


class ReceiptService(CaseServiceServicer):
    """Answers every decision with a receipt and a case; the first call of ``flaky`` answers
    UNAVAILABLE (a gateway going away), as if its reply had been lost."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.flaky: str | None = None


def _answering(rpc: str) -> Any:
    response_type = getattr(service_pb, f"{rpc}Response")

    async def answer(self: ReceiptService, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.requests.append(request)
        attempt = sum(isinstance(r, type(request)) for r in self.requests)
        if self.flaky == rpc and attempt == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        return response_type(
            case=pb.CaseView(case_ref=request.case_ref, state=pb.CASE_STATE_CLOSED),
            applied=receipt_for(request, attempt),
        )

    return answer


for _decision in DECISIONS:
    setattr(ReceiptService, _decision[1], _answering(_decision[1]))


@pytest_asyncio.fixture(loop_scope="session")
async def served(pki: DevPki) -> AsyncIterator[tuple[ReceiptService, int]]:
    service = ReceiptService()  # type: ignore[abstract]
    server = grpc.aio.server()
    add_CaseServiceServicer_to_server(service, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki.gateway()))
    await server.start()
    try:
        yield service, port
    finally:
        await server.stop(None)


@pytest.mark.parametrize(("method", "rpc", "message"), DECISIONS)
async def test_each_decision_returns_the_receipt_and_the_case(
    served: tuple[ReceiptService, int], pki: DevPki, method: str, rpc: str, message: type[Any]
) -> None:
    service, port = served
    service.requests.clear()
    async with CaseClient.connect(f"127.0.0.1:{port}", pki.agency("riverside-gp")) as client:
        chosen = await getattr(client, method)("a" * 20, message(), command_id=f"{method}-1")
        made = await getattr(client, method)("b" * 20, message())

    [first, second] = service.requests
    assert type(first).__name__ == f"{rpc}Request"
    assert chosen.applied == receipt_for(first, 1)
    assert chosen.applied.command_id == f"{method}-1"
    assert chosen.case.case_ref == "a" * 20 and chosen.case.state == pb.CASE_STATE_CLOSED
    # Without a caller's id the client made one, and the receipt names it.
    assert made.applied == receipt_for(second, 2)
    assert made.applied.command_id == second.command_id != ""


async def test_a_retried_decision_returns_the_retrys_receipt_for_the_one_command_id(
    served: tuple[ReceiptService, int], pki: DevPki
) -> None:
    service, port = served
    service.requests.clear()
    service.flaky = "DecideOverride"
    try:
        async with CaseClient.connect(f"127.0.0.1:{port}", pki.agency("riverside-gp")) as client:
            answer = await client.decide_override("c" * 20, pb.OverrideDecision(approve=True))
    finally:
        service.flaky = None

    lost, retried = service.requests
    assert lost.command_id == retried.command_id != ""
    assert answer.applied == receipt_for(retried, 2)
    assert answer.applied.command_id == lost.command_id
