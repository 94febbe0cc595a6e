"""Who may call what: every non-party agency against every case-scoped RPC, forged identities,
certificates from an unknown CA, and oversized messages. Real mTLS, real gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway.server import MAX_RECEIVE_BYTES
from safeshare.pki import DevPki
from tests.safeshare.gateway_support import (
    AGENCIES,
    CSC,
    SCHOOL,
    Gateway,
    acknowledgement,
    assert_no_case,
    change_urgency,
    decide_override,
    decline,
    new_request,
    propose_override,
    record_consent,
    refused,
    share_first,
    wait_for_state,
    withdraw_consent,
    withdraw_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
FORGED = (("x-agency-id", CSC), ("x-safeshare-agency", SCHOOL))


async def _watch(stub: service_grpc.CaseServiceAsyncStub, case_ref: str, **kw: Any) -> Any:
    return [r async for r in stub.WatchCase(service_pb.WatchCaseRequest(case_ref=case_ref), **kw)]


def _unary(name: str, build: Callable[[str], Any]) -> Callable[..., Awaitable[Any]]:
    def send(stub: service_grpc.CaseServiceAsyncStub, case_ref: str, **kw: Any) -> Awaitable[Any]:
        method: Callable[..., Awaitable[Any]] = getattr(stub, name)
        return method(build(case_ref), **kw)

    return send


CASE_RPCS: dict[str, Callable[..., Awaitable[Any]]] = {
    "GetCase": _unary("GetCase", lambda ref: service_pb.GetCaseRequest(case_ref=ref)),
    "WatchCase": _watch,
    "RecordConsent": _unary("RecordConsent", record_consent),
    "ProposeOverride": _unary("ProposeOverride", propose_override),
    "DecideOverride": _unary("DecideOverride", decide_override),
    "ShareFirst": _unary("ShareFirst", share_first),
    "DeclineToShare": _unary("DeclineToShare", decline),
    "WithdrawConsent": _unary("WithdrawConsent", withdraw_consent),
    "WithdrawRequest": _unary("WithdrawRequest", withdraw_request),
    "ChangeUrgency": _unary("ChangeUrgency", change_urgency),
    "Acknowledge": _unary("Acknowledge", acknowledgement),
}
NON_PARTIES = [a for a in AGENCIES if a not in (CSC, SCHOOL)]


@pytest.mark.parametrize("rpc", list(CASE_RPCS))
@pytest.mark.parametrize("agency", NON_PARTIES)
async def test_every_non_party_is_refused_every_rpc_and_nothing_changes(
    gateway: Gateway, agency: str, rpc: str
) -> None:
    # A fresh CSC -> SCHOOL case waiting on the holder: every command would be in turn for a party.
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    before = await gateway.history_lengths(case_ref)
    stranger = gateway.cached(agency)

    # The metadata names the parties; only the certificate counts.
    theirs = await refused(CASE_RPCS[rpc](stranger, case_ref, metadata=FORGED))
    nobodys = await refused(CASE_RPCS[rpc](stranger, "a" * 20, metadata=FORGED))

    assert theirs.code() == nobodys.code() == grpc.StatusCode.NOT_FOUND
    assert theirs.details() == nobodys.details()
    assert await gateway.history_lengths(case_ref) == before
    listing = await stranger.ListCases(service_pb.ListCasesRequest(page_size=100), metadata=FORGED)
    assert case_ref not in {s.case_ref for s in listing.cases}


async def test_a_certificate_from_an_unknown_ca_is_refused(
    gateway: Gateway, tmp_path: Path
) -> None:
    # Same agency name, same shape, but issued by a CA the partnership never trusted.
    rogue = DevPki(tmp_path / "rogue").agency(CSC)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=gateway.pki.ca_path.read_bytes(),
        private_key=rogue.key.read_bytes(),
        certificate_chain=rogue.cert.read_bytes(),
    )
    stub = gateway.stub_with(credentials)
    call = new_request()

    submit = await refused(stub.SubmitRequest(call, timeout=10))
    listing = await refused(stub.ListCases(service_pb.ListCasesRequest(), timeout=10))

    assert submit.code() == listing.code() == grpc.StatusCode.UNAVAILABLE
    # And a client that trusts only the rogue CA does not trust the real gateway either.
    ours = gateway.pki.agency(CSC)
    distrusting = gateway.stub(tls.TlsFiles(ca=rogue.ca, cert=ours.cert, key=ours.key))
    mistrust = await refused(distrusting.ListCases(service_pb.ListCasesRequest(), timeout=10))
    assert mistrust.code() == grpc.StatusCode.UNAVAILABLE


async def test_an_oversized_request_is_refused_before_it_is_read(gateway: Gateway) -> None:
    call = new_request()
    call.request.lawful_basis = "x" * (MAX_RECEIVE_BYTES + 1)

    too_big = await refused(gateway.cached(CSC).SubmitRequest(call))

    assert too_big.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await assert_no_case(gateway.client, CSC, call.request.request_id)
