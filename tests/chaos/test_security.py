"""Security checks on the chaos stack: every attempt to act as, or see for, another agency is
refused, and the refusals are counted in a summary.

Each refusal is checked against a positive control (the same call made legitimately
succeeds), so a test that passes because everything fails is impossible.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
import trustme
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import DataConverter

from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.sharing.v1 import case_pb2 as pb
from safeshare.client import CaseClient
from safeshare.codec import EncryptionCodec
from safeshare.codec.oidc import OidcSettings, OidcVerifier
from safeshare.codec.server import CodecAccess, start_codec_server
from safeshare.tls import TlsFiles, channel_credentials
from tests.chaos import scenarios as sc
from tests.chaos.stack import ChaosStack
from tests.safeshare.oidc_support import AUDIENCE, OPERATOR, oidc_provider

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="session")]

REFUSED = Counter[str]


async def _code(call: Callable[[], Awaitable[object]]) -> str:
    try:
        await call()
    except grpc.aio.AioRpcError as err:
        return str(err.code().name)
    return "OK"


def _leaf(
    root: Path,
    name: str,
    ca: trustme.CA,
    agency_id: str,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> TlsFiles:
    """A client certificate naming ``agency_id``, issued by ``ca``, trusting the real CA."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(
        "localhost", common_name=agency_id, not_before=not_before, not_after=not_after
    )
    (folder / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    (folder / "key.pem").write_bytes(leaf.private_key_pem.bytes())
    return TlsFiles(ca=root / "pki" / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")


@pytest.mark.timeout(120)
async def test_other_agencies_and_forged_identities_are_refused(chaos_stack: ChaosStack) -> None:
    stack = chaos_stack
    requester, holder, outsider = stack.agencies[:3]
    spec = sc.CaseSpec(
        f"security-{uuid.uuid4().hex[:8]}", requester, holder, "consent-refused",
        sc.Scenario.DECLINED, (pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT,), pb.URGENCY_AMBER,
    )  # fmt: skip
    refused: REFUSED = Counter()
    ca_files = stack.pki.root
    real_ca = trustme.CA.from_pem(
        (ca_files / "ca.pem").read_bytes(), (ca_files / "ca.key").read_bytes()
    )
    now = dt.datetime.now(dt.UTC)
    expired = _leaf(stack.root, "expired", real_ca, requester,
                    not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))  # fmt: skip
    stranger = _leaf(stack.root, "wrong-ca", trustme.CA(), requester)
    async with (
        CaseClient.connect(stack.gateway_target, stack.agency_tls(requester)) as as_requester,
        CaseClient.connect(stack.gateway_target, stack.agency_tls(outsider)) as as_outsider,
    ):
        ref = (await as_requester.submit(sc.sharing_request(spec))).case_ref
        for _ in range(120):  # bounded: until the holder must decide
            view = await as_requester.get(ref)
            if view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION:
                break
            await asyncio.sleep(0.5)
        assert view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION

        # Cross-agency access: a non-party hears "not found", never the case.
        attempts = {
            "cross-agency GetCase": lambda: as_outsider.get(ref),
            "cross-agency DeclineToShare": lambda: as_outsider.decline_to_share(ref, sc.decline(spec)),
            "cross-agency WithdrawRequest": lambda: as_outsider.withdraw_request(ref, sc.withdrawal(spec)),
            "cross-agency Acknowledge": lambda: as_outsider.acknowledge(ref, sc.acknowledgement(spec)),
        }  # fmt: skip
        for name, call in attempts.items():
            code = await _code(call)
            assert code == "NOT_FOUND", (name, code)
            refused[name] += 1

        # Forged identity in the body: the requester claims to be the holder.
        forged = sc.decline(spec)
        forged.actor.agency_id = holder
        code = await _code(lambda: as_requester.decline_to_share(ref, forged))
        assert code == "PERMISSION_DENIED", code
        refused["forged agency id in the body"] += 1
        forged_approval = sc.override_decision(spec, approve=True)
        forged_approval.actor.agency_id = holder
        code = await _code(lambda: as_outsider.decide_override(ref, forged_approval))
        assert code == "NOT_FOUND", code
        refused["forged approver agency id in the body"] += 1

    # Forged identity in metadata: the certificate decides, not a header.
    async with grpc.aio.secure_channel(
        stack.gateway_target, channel_credentials(stack.agency_tls(outsider))
    ) as channel:
        from protos.sharing.v1 import case_service_pb2 as service_pb
        from protos.sharing.v1.case_service_pb2_grpc import CaseServiceStub

        stub = CaseServiceStub(channel)
        for header in ("x-agency-id", "agency-id", "x-forwarded-client-cert"):
            code = await _code(
                functools.partial(
                    stub.GetCase,
                    service_pb.GetCaseRequest(case_ref=ref),
                    metadata=((header, requester),),
                    timeout=10,
                )
            )
            assert code == "NOT_FOUND", (header, code)
            refused[f"forged agency id in metadata ({header})"] += 1

    # Certificates the partnership did not issue, or that have expired: no TLS session.
    for name, files in (("expired certificate", expired), ("wrong-CA certificate", stranger)):
        async with CaseClient.connect(stack.gateway_target, files, call_timeout=5) as client:
            code = await _code(functools.partial(client.get, ref))
        assert code == "UNAVAILABLE", (name, code)
        refused[name] += 1

    # An agency's certificate calling another agency's system directly (only adapters may).
    async with grpc.aio.secure_channel(
        stack.agency_target(holder), channel_credentials(stack.agency_tls(requester))
    ) as channel:
        agency_stub = agency_grpc.AgencyServiceStub(channel)
        code = await _code(
            lambda: agency_stub.LookupConsent(
                agency_pb.LookupConsentRequest(
                    case_ref=ref, subjects=sc.sharing_request(spec).subjects
                ),
                timeout=10,
            )
        )
        assert code == "PERMISSION_DENIED", code
        refused["agency calling another agency's system"] += 1

    # The codec server decrypts only for an operator signed in at the partnership's issuer.
    codec = EncryptionCodec(stack.keys)
    with oidc_provider() as provider:
        verifier = OidcVerifier(OidcSettings(provider.issuer, AUDIENCE))
        runner, port = await start_codec_server(codec, CodecAccess(verifier))
        try:
            plain = DataConverter.default.payload_converter.to_payloads(
                [pb.Subject(given_name="x")]
            )
            body = json_format.MessageToDict(Payloads(payloads=await codec.encode(plain)))
            url = f"http://127.0.0.1:{port}/decode"
            async with aiohttp.ClientSession() as http:
                for name, headers in (
                    ("codec server without a token", {}),
                    ("codec server with a forged token", {"Authorization": "Bearer wrong"}),
                ):
                    async with http.post(url, json=body, headers=headers) as response:
                        assert response.status == 401, (name, response.status)
                        refused[name] += 1
                token = await provider.token(OPERATOR)
                async with http.post(
                    url, json=body, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    assert response.status == 200  # the positive control
        finally:
            await runner.cleanup()

    print("security checks refused:", dict(refused), "total", sum(refused.values()))
    assert sum(refused.values()) == 14
