"""The codec server: the UI's and CLI's /encode and /decode, its token, and CORS."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from safeshare.codec import ENCODING, EncryptionCodec, KeyRing, data_converter
from safeshare.codec.server import CodecAccess, start_codec_server
from tests.conftest import TEMPORAL_CLI
from tests.factories import sharing_request

TOKEN = "test-token-0123456789abcdef"
UI = "http://127.0.0.1:8233"
RING = KeyRing.generate("server-key")


@pytest_asyncio.fixture(loop_scope="session")
async def codec_url() -> AsyncIterator[str]:
    runner, port = await start_codec_server(
        EncryptionCodec(RING), CodecAccess(TOKEN, UI, trust_ui_origin=False)
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'"Okafor-Test"')


async def post(url: str, data: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


async def test_encode_then_decode_with_the_token(codec_url: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, text, _ = await post(f"{codec_url}/encode", body(PLAIN), **auth)
    assert status == 200
    encoded = json_format.Parse(text, Payloads())
    assert encoded.payloads[0].metadata["encoding"] == ENCODING
    assert "Okafor" not in text
    # The UI adds a query string: routing is on the path alone.
    status, text, _ = await post(f"{codec_url}/decode?preserveStorageRefs=true", text, **auth)
    assert status == 200
    assert list(json_format.Parse(text, Payloads()).payloads) == [PLAIN]


async def test_no_token_a_wrong_token_or_a_foreign_origin_get_nothing(codec_url: str) -> None:
    [sealed] = await EncryptionCodec(RING).encode([PLAIN])
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": TOKEN},
        {"Origin": UI},  # the UI's origin alone is not enough unless trusted (dev only)
    ):
        status, text, _ = await post(f"{codec_url}/decode", body(sealed), **headers)
        assert status == 401, headers
        assert "Okafor" not in text


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


async def test_unknown_key_and_bad_bodies_are_clear_400s(codec_url: str) -> None:
    [other] = await EncryptionCodec(KeyRing.generate("retired")).encode([PLAIN])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, text, _ = await post(f"{codec_url}/decode", body(other), **auth)
    assert status == 400
    assert "'retired'" in text
    status, _, _ = await post(f"{codec_url}/decode", "not json", **auth)
    assert status == 400


async def test_trusted_ui_origin_decodes_without_a_token_in_dev() -> None:
    runner, port = await start_codec_server(
        EncryptionCodec(RING), CodecAccess(TOKEN, UI, trust_ui_origin=True)
    )
    try:
        [sealed] = await EncryptionCodec(RING).encode([PLAIN])
        url = f"http://127.0.0.1:{port}/decode"
        status, text, headers = await post(url, body(sealed), Origin=UI)
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == UI
        assert list(json_format.Parse(text, Payloads()).payloads) == [PLAIN]
        status, _, _ = await post(url, body(sealed), Origin="http://evil.example")
        assert status == 401
    finally:
        await runner.cleanup()


def test_access_refuses_short_tokens_and_trust_without_origin() -> None:
    with pytest.raises(ValueError, match="16"):
        CodecAccess("short")
    with pytest.raises(ValueError, match="ui_origin"):
        CodecAccess(TOKEN, None, trust_ui_origin=True)


async def test_temporal_cli_decodes_through_the_codec_server_with_codec_auth(
    dev_server: WorkflowEnvironment, codec_url: str
) -> None:
    config = dev_server.client.config()
    config["data_converter"] = data_converter(RING)
    handle = await Client(**config).start_workflow(
        "SharingCase",
        sharing_request(),
        id=f"case-cli-{uuid.uuid4().hex}",
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
        auth = ("--codec-endpoint", codec_url, "--codec-auth", f"Bearer {TOKEN}")
        encoding, data = started_input(await show(*auth))
        assert encoding == b"json/protobuf"
        assert b"Okafor-Test" in data
        encoding, data = started_input(await show())
        assert encoding == ENCODING
        assert b"Okafor-Test" not in data
    finally:
        await handle.terminate()


async def test_server_stops_cleanly() -> None:
    runner, port = await start_codec_server(EncryptionCodec(RING), CodecAccess(TOKEN, UI))
    await runner.cleanup()
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(f"http://127.0.0.1:{port}/decode", "{}")
    assert isinstance(runner.app, web.Application)
