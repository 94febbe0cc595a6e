"""One case walked through every kind of read, and its access history asserted event by event.

Real parts: the gateway over mTLS, the hub worker and fake agencies on the dev server, payloads
encrypted; the codec server with a real OIDC provider; the audit commands. Reads: the
requester's and holders' GetCase (one holder's marked for delayed disclosure), a third agency
refused, a watch and a listing, an operator's decryption and four refused decryptions, an
audit export and report. Then ListAccessEvents, ``safeshare audit access`` and the report's
access section show the history, and an edited event is found by verification.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from partnership.registry import Registry
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.access.events import Action, Channel, Outcome, Purpose
from safeshare.access.log import AccessLog
from safeshare.audit.signing import ensure_signing_key, load_private_key
from safeshare.cli import app
from safeshare.codec import EncryptionCodec, KeyRing, data_converter, write_key_file
from safeshare.codec.oidc import OidcSettings, OidcVerifier
from safeshare.codec.server import CodecAccess, start_codec_server
from safeshare.gateway.server import create_gateway_server
from safeshare.gateway.servicer import CaseServiceServicer
from safeshare.pki import DevPki
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER
from tests.safeshare.gateway_support import (
    CSC,
    GP,
    POLICE,
    SCHOOL,
    new_request,
    refused,
    running_workers,
    violations,
)
from tests.safeshare.oidc_support import (
    AUDIENCE,
    CLERK,
    EXPIRED_OPERATOR,
    OPERATOR,
    Provider,
    oidc_provider,
)
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(180)]
AUDITOR = "auditor-dee"


@dataclass
class Stack:
    raw: Client
    """A client without the keys: histories as stored."""
    gateway_port: int
    codec_url: str
    pki: DevPki
    provider: Provider
    log: AccessLog
    key_path: Path
    keys_file: Path
    address: str
    channels: list[grpc.aio.Channel]

    def stub(self, agency_id: str) -> service_grpc.CaseServiceAsyncStub:
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{self.gateway_port}", tls.channel_credentials(self.pki.agency(agency_id))
        )
        self.channels.append(channel)
        return service_grpc.CaseServiceStub(channel)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    dev_server: WorkflowEnvironment,
    pki: DevPki,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp("access-history")
    ring = KeyRing.generate("history-key")
    keys_file = folder / "keys.json"
    write_key_file(keys_file, ring)
    key_path = folder / "access-signing.key"
    ensure_signing_key(key_path)
    log = AccessLog(folder / "access.db", load_private_key(key_path))
    config = dev_server.client.config()
    config["data_converter"] = data_converter(ring)
    client = Client(**config)
    hub_queue = f"hub-access-{uuid.uuid4()}"
    with oidc_provider() as provider:
        async with running_workers(client, hub_queue, FakeAgencies()):
            servicer = CaseServiceServicer(
                client, registry, hub_queue, access_log=log, signer=TEST_SIGNER
            )
            servicer.poll_interval = dt.timedelta(seconds=0.2)
            server, port = await create_gateway_server(
                client,
                registry,
                tls.server_credentials(pki.gateway()),
                hub_task_queue=hub_queue,
                servicer=servicer,
                signer=TEST_SIGNER,
            )
            verifier = OidcVerifier(OidcSettings(provider.issuer, AUDIENCE))
            runner, codec_port = await start_codec_server(
                EncryptionCodec(ring), CodecAccess(verifier), record=log.append
            )
            address = dev_server.client.service_client.config.target_host
            built = Stack(
                dev_server.client, port, f"http://127.0.0.1:{codec_port}", pki, provider,
                log, key_path, keys_file, address, [],
            )  # fmt: skip
            try:
                yield built
            finally:
                for channel in built.channels:
                    await channel.close()
                await runner.cleanup()
                await server.stop(None)


def read(user: str, purpose: int, delay: bool = False) -> service_pb.ReadContext:
    return service_pb.ReadContext(user_id=user, purpose=purpose, delay_disclosure=delay)  # type: ignore[arg-type]


CASE_WORK = service_pb.ACCESS_PURPOSE_CASE_WORK


async def cli(stack: Stack, *args: str) -> Result:
    env = {"SAFESHARE_ACCESS_LOG": str(stack.log.path), "COLUMNS": "250"}
    env["SAFESHARE_ACCESS_LOG_KEY"] = str(stack.key_path)
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def decode(stack: Stack, payloads: Payloads, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.codec_url}/decode", data=json_format.MessageToJson(payloads), headers=headers
        ) as response,
    ):
        return response.status


async def test_one_case_walked_through_every_read_has_exactly_this_access_history(
    stack: Stack, tmp_path: Path
) -> None:
    requester, school, police, gp = (stack.stub(a) for a in (CSC, SCHOOL, POLICE, GP))
    submit = new_request(SCHOOL, POLICE)
    ref = case_ref_for(CSC, submit.request.request_id)
    await requester.SubmitRequest(submit)
    started = dt.datetime.now(dt.UTC)
    # A holder finds no case before the protocol gate passed it: wait for its exchanges (read
    # straight from Temporal, so the waiting reads nothing through SafeShare).
    for holder in (SCHOOL, POLICE):
        for _ in range(200):
            try:
                await stack.raw.get_workflow_handle(
                    holder_exchange_workflow_id(ref, holder)
                ).describe()
                break
            except RPCError:
                await asyncio.sleep(0.1)

    # The requester and both holders read it; police marks its read for delayed disclosure.
    await requester.GetCase(
        service_pb.GetCaseRequest(case_ref=ref, read=read("sw-0042", CASE_WORK))
    )
    await school.GetCase(service_pb.GetCaseRequest(case_ref=ref, read=read("dsl-7", CASE_WORK)))
    investigation = read("pc-9", service_pb.ACCESS_PURPOSE_INVESTIGATION, delay=True)
    await police.GetCase(service_pb.GetCaseRequest(case_ref=ref, read=investigation))
    # The school may not delay disclosure (the registry gives it no period): nothing recorded.
    bad = await refused(
        school.GetCase(
            service_pb.GetCaseRequest(case_ref=ref, read=read("dsl-7", CASE_WORK, delay=True))
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(bad)] == ["read.delay_disclosure"]
    # A third agency is refused, and the refusal is recorded.
    third = await refused(
        gp.GetCase(service_pb.GetCaseRequest(case_ref=ref, read=read("gp-3", CASE_WORK)))
    )
    assert third.code() == grpc.StatusCode.NOT_FOUND

    # The requester watches (recorded when the stream starts) and lists its cases.
    stream = requester.WatchCase(
        service_pb.WatchCaseRequest(case_ref=ref, read=read("sw-0042", CASE_WORK))
    )
    first = await asyncio.wait_for(stream.read(), 20)
    assert first.event.number == 1  # type: ignore[attr-defined]
    stream.cancel()
    for _ in range(100):  # visibility lags: list until the case is there (empty pages read nothing)
        listed = await requester.ListCases(
            service_pb.ListCasesRequest(page_size=100, read=read("sw-0042", CASE_WORK))
        )
        if ref in {c.case_ref for c in listed.cases}:
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("the case never reached ListCases")

    # An operator decrypts the case's input through the codec server; four others are refused.
    history = await stack.raw.get_workflow_handle(case_workflow_id(ref)).fetch_history()
    started_event = history.events[0].workflow_execution_started_event_attributes
    payloads = Payloads(payloads=started_event.input.payloads)
    assert await decode(stack, payloads, await stack.provider.token(OPERATOR)) == 200
    assert await decode(stack, payloads, await stack.provider.token(EXPIRED_OPERATOR)) == 401
    wrong_audience = await stack.provider.token(OPERATOR, client_id="another-app")
    assert await decode(stack, payloads, wrong_audience) == 401
    assert await decode(stack, payloads, await stack.provider.token(CLERK)) == 403
    assert await decode(stack, payloads, None) == 401

    # An auditor exports the case and reports on it with the keys.
    export = await cli(
        stack, "audit", "export", ref, "--out", str(tmp_path / "export"),
        "--signing-key", str(stack.key_path), "--temporal-address", stack.address,
        "--operator", AUDITOR, "--no-progress",
    )  # fmt: skip
    assert export.exit_code == 0, export.output
    report = await cli(
        stack, "audit", "report", "--case", ref, "--out", str(tmp_path / "report"),
        "--keys-file", str(stack.keys_file), "--temporal-address", stack.address,
        "--operator", AUDITOR,
    )  # fmt: skip
    assert report.exit_code == 0, report.output
    replay = await cli(
        stack, "audit", "replay", "--case", ref, "--keys-file", str(stack.keys_file),
        "--temporal-address", stack.address, "--operator", AUDITOR, "--purpose", "supervision",
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output

    events = stack.log.events(ref)
    assert [
        (e.channel, e.action, e.outcome, e.agency_id, e.user_id, e.purpose, e.reason)
        for e in events
    ] == [
        (Channel.CASE_API, Action.VIEW, Outcome.ALLOWED, CSC, "sw-0042", Purpose.CASE_WORK, ""),
        (Channel.CASE_API, Action.VIEW, Outcome.ALLOWED, SCHOOL, "dsl-7", Purpose.CASE_WORK, ""),
        (Channel.CASE_API, Action.VIEW, Outcome.ALLOWED, POLICE, "pc-9", Purpose.INVESTIGATION, ""),
        (
            Channel.CASE_API,
            Action.VIEW,
            Outcome.REFUSED,
            GP,
            "gp-3",
            Purpose.CASE_WORK,
            "not_a_party",
        ),
        (Channel.CASE_API, Action.WATCH, Outcome.ALLOWED, CSC, "sw-0042", Purpose.CASE_WORK, ""),
        (Channel.CASE_API, Action.LIST, Outcome.ALLOWED, CSC, "sw-0042", Purpose.CASE_WORK, ""),
        (
            Channel.CODEC_SERVER,
            Action.DECRYPT,
            Outcome.ALLOWED,
            "",
            OPERATOR,
            Purpose.OPERATOR_SUPPORT,
            "",
        ),
        (
            Channel.CODEC_SERVER,
            Action.DECRYPT,
            Outcome.REFUSED,
            "",
            "",
            Purpose.OPERATOR_SUPPORT,
            "expired",
        ),
        (
            Channel.CODEC_SERVER,
            Action.DECRYPT,
            Outcome.REFUSED,
            "",
            "",
            Purpose.OPERATOR_SUPPORT,
            "wrong_audience",
        ),
        (
            Channel.CODEC_SERVER,
            Action.DECRYPT,
            Outcome.REFUSED,
            "",
            CLERK,
            Purpose.OPERATOR_SUPPORT,
            "not_operator",
        ),
        (
            Channel.CODEC_SERVER,
            Action.DECRYPT,
            Outcome.REFUSED,
            "",
            "",
            Purpose.OPERATOR_SUPPORT,
            "no_token",
        ),
        (Channel.CLI, Action.EXPORT, Outcome.ALLOWED, "", AUDITOR, Purpose.AUDIT, ""),
        (Channel.CLI, Action.REPORT, Outcome.ALLOWED, "", AUDITOR, Purpose.AUDIT, ""),
        (Channel.CLI, Action.REPLAY, Outcome.ALLOWED, "", AUDITOR, Purpose.SUPERVISION, ""),
    ]
    now = dt.datetime.now(dt.UTC)
    assert all(started - dt.timedelta(seconds=5) <= e.time <= now for e in events)
    # Police's read is hidden from the others for the registry's 28 days; the rest at once.
    delayed = events[2].disclose_after
    assert delayed is not None and delayed - events[2].time == dt.timedelta(days=28)
    assert [e.disclose_after for e in events if e is not events[2]] == [None] * 13

    # The parties read the history over the Case API, paged; police's read shows to police only.
    seen_by_requester: list[service_pb.AccessEvent] = []
    token = ""
    while True:
        page = await requester.ListAccessEvents(
            service_pb.ListAccessEventsRequest(case_ref=ref, page_size=5, page_token=token)
        )
        seen_by_requester += page.events
        token = page.next_page_token
        if not token:
            break
    assert [e.seq for e in seen_by_requester] == [e.seq for e in events if e is not events[2]]
    assert seen_by_requester[0].user_id == "sw-0042"
    assert seen_by_requester[2].reason == "not_a_party"  # police's read is not among them
    police_view = await police.ListAccessEvents(
        service_pb.ListAccessEventsRequest(case_ref=ref, page_size=200)
    )
    assert [e.seq for e in police_view.events] == [e.seq for e in events]
    assert police_view.events[2].disclose_after.ToDatetime(dt.UTC) == delayed
    outsider = await refused(gp.ListAccessEvents(service_pb.ListAccessEventsRequest(case_ref=ref)))
    assert outsider.code() == grpc.StatusCode.NOT_FOUND
    assert len(stack.log.events(ref)) == len(events)  # reading the history reads no case

    # Auditors: `safeshare audit access` verifies the log and lists the case's history...
    shown = await cli(stack, "audit", "access", ref)
    assert shown.exit_code == 0, shown.output
    assert "access log verified" in shown.output
    for who in ("sw-0042", "dsl-7", "pc-9", "gp-3", OPERATOR, CLERK, AUDITOR):
        assert who in shown.output
    # ...and the report's HTML has the access history beneath the timeline.
    html = (tmp_path / "report" / f"case-{ref}.html").read_text()
    section = html.split("<h2>Access history</h2>", 1)[1]
    # Written after its own read was recorded, before the replay.
    assert section.count("<tr><td>") == len(events) - 1
    assert "not_a_party" in section and "not_operator" in section and OPERATOR in section

    # An event edited in storage (a refusal rewritten as allowed) fails verification.
    edited = events[3].entry().replace(b'"refused"', b'"allowed"')
    with sqlite3.connect(stack.log.path) as db:
        db.execute("UPDATE events SET entry = ? WHERE seq = ?", (edited, events[3].seq))
    tampered = await cli(stack, "audit", "access", ref)
    assert tampered.exit_code == 1
    assert "fails verification" in tampered.output


async def test_a_caller_that_is_no_partner_is_refused_and_recorded_under_its_certificate(
    stack: Stack,
) -> None:
    ref = "q" * 20
    stranger = stack.stub("lapsed-provider")  # a partnership certificate, not in the registry
    denied = await refused(
        stranger.GetCase(service_pb.GetCaseRequest(case_ref=ref, read=read("x-1", CASE_WORK)))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    [event] = [e for e in stack.log.events() if e.agency_id == "lapsed-provider"]
    assert (event.outcome, event.reason, event.action) == (
        Outcome.REFUSED,
        "not_a_partner",
        Action.VIEW,
    )
    assert event.case_ref == ""  # not taken from a caller who is no partner
