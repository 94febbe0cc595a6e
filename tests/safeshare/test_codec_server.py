"""The codec server: the UI's and CLI's /encode and /decode for operators signed in with
OpenID Connect (a real provider, started here), CORS, the sign-in route, and one access event
per case decrypted or refused."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment

from safeshare.access.events import Action, Channel, Outcome, Purpose
from safeshare.access.log import AccessLog
from safeshare.codec import ENCODING, EncryptionCodec, KeyRing, data_converter
from safeshare.codec.oidc import OidcSettings, OidcVerifier, Refusal, TokenRefused
from safeshare.codec.server import SESSION_COOKIE, CodecAccess, start_codec_server
from tests.conftest import TEMPORAL_CLI
from tests.factories import sharing_request
from tests.safeshare.oidc_support import (
    AUDIENCE,
    CLERK,
    EXPIRED_OPERATOR,
    OPERATOR,
    Provider,
    oidc_provider,
)

UI = "http://127.0.0.1:8233"
RING = KeyRing.generate("server-key")
REF_A, REF_B = "a" * 20, "b" * 20


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider() as running:
        yield running


def access_for(provider: Provider, **extra: object) -> CodecAccess:
    return CodecAccess(OidcVerifier(OidcSettings(provider.issuer, AUDIENCE)), UI, **extra)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def served(provider: Provider, tmp_path: Path) -> AsyncIterator[tuple[str, AccessLog]]:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    runner, port = await start_codec_server(SERVER_CODEC, access_for(provider), record=log.append)
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def codec_url(served: tuple[str, AccessLog]) -> str:
    return served[0]


@pytest_asyncio.fixture(loop_scope="session")
async def operator_token(provider: Provider) -> str:
    return await provider.token(OPERATOR)


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'"Okafor-Test"')
# As `safeshare codec-server` builds it: payloads stored before encryption are shown as they are.
SERVER_CODEC = EncryptionCodec(RING, allow_plaintext=True)


def sealed_for(case_ref: str) -> Payload:
    """PLAIN encrypted as a worker writes it for a case's workflow (labelled with the case)."""
    context = WorkflowSerializationContext(namespace="default", workflow_id=f"case-{case_ref}")
    return EncryptionCodec(RING).with_context(context).encrypt(PLAIN)


async def post(url: str, data: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


def decrypts(log: AccessLog) -> list[tuple[str, str, str, str]]:
    return [(e.case_ref, e.user_id, e.outcome.value, e.reason) for e in log.events()]


async def test_encode_then_decode_with_an_operators_token(
    codec_url: str, operator_token: str
) -> None:
    auth = {"Authorization": f"Bearer {operator_token}", "Content-Type": "application/json"}
    status, text, _ = await post(f"{codec_url}/encode", body(PLAIN), **auth)
    assert status == 200
    encoded = json_format.Parse(text, Payloads())
    assert encoded.payloads[0].metadata["encoding"] == ENCODING
    assert "Okafor" not in text
    # The UI adds a query string: routing is on the path alone.
    status, text, _ = await post(f"{codec_url}/decode?preserveStorageRefs=true", text, **auth)
    assert status == 200
    assert list(json_format.Parse(text, Payloads()).payloads) == [PLAIN]


async def test_one_access_event_per_case_decrypted_naming_the_operator(
    served: tuple[str, AccessLog], operator_token: str
) -> None:
    codec_url, log = served
    auth = {"Authorization": f"Bearer {operator_token}", "X-SafeShare-Purpose": "audit"}
    payloads = (sealed_for(REF_A), sealed_for(REF_B), sealed_for(REF_A), PLAIN)
    status, text, _ = await post(f"{codec_url}/decode", body(*payloads), **auth)
    assert status == 200
    assert list(json_format.Parse(text, Payloads()).payloads) == [PLAIN] * 4
    events = log.events()
    assert [(e.case_ref, e.user_id, e.action, e.channel, e.outcome, e.purpose) for e in events] == [
        (REF_A, OPERATOR, Action.DECRYPT, Channel.CODEC_SERVER, Outcome.ALLOWED, Purpose.AUDIT),
        (REF_B, OPERATOR, Action.DECRYPT, Channel.CODEC_SERVER, Outcome.ALLOWED, Purpose.AUDIT),
    ]
    assert all(e.agency_id == "" and e.reason == "" for e in events)


async def test_a_payload_moved_under_another_case_does_not_decrypt(
    codec_url: str, operator_token: str
) -> None:
    moved = sealed_for(REF_A)
    moved.metadata["case-ref"] = REF_B.encode()
    status, text, _ = await post(
        f"{codec_url}/decode", body(moved), Authorization=f"Bearer {operator_token}"
    )
    assert status == 400
    assert "Okafor" not in text


async def test_refused_tokens_get_401_or_403_and_are_recorded(
    served: tuple[str, AccessLog], provider: Provider
) -> None:
    codec_url, log = served
    other_app = await provider.token(OPERATOR, client_id="another-app")
    expired = await provider.token(EXPIRED_OPERATOR)
    clerk = await provider.token(CLERK)
    with oidc_provider() as impostor:  # a real provider, but not the one this server trusts
        foreign = await impostor.token(OPERATOR)
    cases = [
        ({}, 401, ""),
        ({"Authorization": f"Bearer {expired}"}, 401, ""),
        ({"Authorization": f"Bearer {other_app}"}, 401, ""),
        ({"Authorization": f"Bearer {clerk}"}, 403, CLERK),
        ({"Authorization": f"Bearer {foreign}"}, 401, ""),
        ({"Authorization": "Bearer not-a-jwt"}, 401, ""),
        ({"Origin": UI}, 401, ""),  # the UI's origin alone is not enough unless trusted (dev)
    ]
    for headers, status, _ in cases:
        got, text, _ = await post(f"{codec_url}/decode", body(sealed_for(REF_A)), **headers)
        assert got == status, headers
        assert "Okafor" not in text
    assert decrypts(log) == [
        (REF_A, "", "refused", "no_token"),
        (REF_A, "", "refused", "expired"),
        (REF_A, "", "refused", "wrong_audience"),
        (REF_A, CLERK, "refused", "not_operator"),
        (REF_A, "", "refused", "bad_token"),  # signed by another issuer's key
        (REF_A, "", "refused", "bad_token"),
        (REF_A, "", "refused", "no_token"),
    ]
    # Encoding needs a sign-in too, but reads nothing: no event.
    got, _, _ = await post(f"{codec_url}/encode", body(PLAIN))
    assert got == 401
    assert len(log.events()) == len(cases)


async def test_sign_in_sets_a_session_cookie_the_ui_then_sends(
    provider: Provider, tmp_path: Path
) -> None:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    access = access_for(provider, public_url="http://127.0.0.1:0")  # replaced below
    runner, port = await start_codec_server(SERVER_CODEC, access, record=log.append)
    await runner.cleanup()
    codec = f"http://127.0.0.1:{port}"
    access = access_for(provider, public_url=codec, client_secret="codec-secret")
    runner, _ = await start_codec_server(SERVER_CODEC, access, port=port, record=log.append)
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP-address host
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(f"{codec}/login", allow_redirects=False) as start:
                assert start.status == 302
                authorize = start.headers["Location"]
            assert authorize.startswith(f"{provider.issuer}/oauth2/authorize?")
            # The operator picks themselves on the provider's sign-in page.
            async with browser.post(
                authorize, data={"sub": OPERATOR}, allow_redirects=False
            ) as signed:
                callback = signed.headers["Location"]
            assert callback.startswith(f"{codec}/callback?")
            async with browser.get(callback, allow_redirects=False) as finished:
                assert finished.status == 302, await finished.text()
                assert finished.headers["Location"] == UI
            assert SESSION_COOKIE in {cookie.key for cookie in jar}
            async with browser.post(
                f"{codec}/decode", data=body(sealed_for(REF_B)), headers={"Origin": UI}
            ) as decoded:
                assert decoded.status == 200
                assert decoded.headers["Access-Control-Allow-Credentials"] == "true"
        async with (
            aiohttp.ClientSession() as stranger,  # no login-state cookie: refused
            stranger.get(callback, allow_redirects=False) as replayed,
        ):
            assert replayed.status == 400
    finally:
        await runner.cleanup()
    assert decrypts(log) == [(REF_B, OPERATOR, "allowed", "")]


async def test_cors_answers_the_ui_origin_only(codec_url: str) -> None:
    preflight = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    async with aiohttp.ClientSession() as session:
        async with session.options(f"{codec_url}/decode", headers=preflight) as ok:
            assert ok.status == 204
            assert ok.headers["Access-Control-Allow-Origin"] == UI
            allowed = ok.headers["Access-Control-Allow-Headers"].split(",")
            assert {"content-type", "x-namespace", "authorization"} <= set(allowed)
        foreign = {**preflight, "Origin": "http://evil.example"}
        async with session.options(f"{codec_url}/decode", headers=foreign) as refused:
            assert refused.status == 403
            assert "Access-Control-Allow-Origin" not in refused.headers


async def test_unknown_key_and_bad_bodies_are_clear_400s(
    codec_url: str, operator_token: str
) -> None:
    [other] = await EncryptionCodec(KeyRing.generate("retired")).encode([PLAIN])
    auth = {"Authorization": f"Bearer {operator_token}"}
    status, text, _ = await post(f"{codec_url}/decode", body(other), **auth)
    assert status == 400
    assert "'retired'" in text
    status, _, _ = await post(f"{codec_url}/decode", "not json", **auth)
    assert status == 400


async def test_trusted_ui_origin_decodes_without_a_token_in_dev(
    provider: Provider, tmp_path: Path
) -> None:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    runner, port = await start_codec_server(
        SERVER_CODEC, access_for(provider, trust_ui_origin=True), record=log.append
    )
    try:
        url = f"http://127.0.0.1:{port}/decode"
        status, text, headers = await post(url, body(sealed_for(REF_A)), Origin=UI)
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == UI
        assert list(json_format.Parse(text, Payloads()).payloads) == [PLAIN]
        status, _, _ = await post(url, body(sealed_for(REF_A)), Origin="http://evil.example")
        assert status == 401
    finally:
        await runner.cleanup()
    assert decrypts(log) == [
        (REF_A, "unauthenticated-ui-origin", "allowed", ""),
        (REF_A, "", "refused", "no_token"),
    ]


def test_trust_without_origin_is_refused(provider: Provider) -> None:
    with pytest.raises(ValueError, match="ui_origin"):
        CodecAccess(
            OidcVerifier(OidcSettings(provider.issuer, AUDIENCE)), None, trust_ui_origin=True
        )


async def test_temporal_cli_decodes_through_the_codec_server_with_codec_auth(
    dev_server: WorkflowEnvironment, served: tuple[str, AccessLog], operator_token: str
) -> None:
    codec_url, log = served
    config = dev_server.client.config()
    config["data_converter"] = data_converter(RING)
    handle = await Client(**config).start_workflow(
        "SharingCase",
        sharing_request(),
        id=f"case-{base64.b32encode(uuid.uuid4().bytes).decode().lower()[:20]}",
        task_queue="nobody-polls",
    )
    address = dev_server.client.service_client.config.target_host

    async def show(*extra: str) -> str:
        process = await asyncio.create_subprocess_exec(
            str(TEMPORAL_CLI), "workflow", "show", "--address", address,
            "--workflow-id", handle.id, "--output", "json", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    def started_input(shown: str) -> tuple[bytes, bytes]:
        event = json.loads(shown)["events"][0]
        [stored] = event["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
        return base64.b64decode(stored["metadata"]["encoding"]), base64.b64decode(stored["data"])

    try:
        auth = ("--codec-endpoint", codec_url, "--codec-auth", f"Bearer {operator_token}")
        encoding, data = started_input(await show(*auth))
        assert encoding == b"json/protobuf"
        assert b"Okafor-Test" in data
        encoding, data = started_input(await show())
        assert encoding == ENCODING
        assert b"Okafor-Test" not in data
        # The client labelled the case's payloads with its ref: the decryption names the case.
        ref = handle.id.removeprefix("case-")
        assert [(e.case_ref, e.user_id) for e in log.events()] == [(ref, OPERATOR)]
    finally:
        await handle.terminate()


async def test_server_stops_cleanly(provider: Provider) -> None:
    runner, port = await start_codec_server(SERVER_CODEC, access_for(provider))
    await runner.cleanup()
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(f"http://127.0.0.1:{port}/decode", "{}")


async def test_a_rotated_issuer_key_is_fetched_again_and_the_old_one_no_longer_verifies() -> None:
    with oidc_provider() as first:
        port = int(first.issuer.rsplit(":", 1)[1])
        verifier = OidcVerifier(OidcSettings(first.issuer, AUDIENCE, refresh_interval=0))
        old_token = await first.token(OPERATOR)
        assert (await verifier.operator(old_token)).subject == OPERATOR
    # The same issuer (same URL) restarted with a new signing key: a key rotation.
    with oidc_provider(port) as second:
        assert second.issuer == first.issuer
        new_token = await second.token(OPERATOR)
        assert (await verifier.operator(new_token)).subject == OPERATOR
        with pytest.raises(TokenRefused) as refused:
            await verifier.operator(old_token)
        assert refused.value.reason is Refusal.BAD_TOKEN
