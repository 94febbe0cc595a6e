"""The archiver against a real Temporal dev server and a real gateway: a closed case (and a
consent withdrawn after it closed) is archived once, read back and logged; after Temporal
deletes it, GetCase gives the same answer byte for byte. Faults: the archive database down,
a killed archiver, a history that changed between two reads."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from structlog.testing import capture_logs
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from typer.testing import CliRunner

from activities.review import ProtocolReviewActivities
from activities.review_figures import ReviewWindow
from partnership.registry import Registry
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.archive.archiver import WATERMARK, Archiver, ArchiverSettings, SweepResult
from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
from safeshare.archive.reader import review_source
from safeshare.archive.records import ARCHIVED, WRITTEN
from safeshare.archive.store import ArchiveStore
from safeshare.archive.url import open_archive
from safeshare.archive.verify import verify_archive
from safeshare.audit.export import HistoryFetcher
from safeshare.audit.signing import ensure_signing_key, public_key_path
from safeshare.cli import app
from safeshare.gateway import CaseServiceServicer, create_gateway_server
from safeshare.pki import DevPki
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER
from tests.safeshare.archive.postgres_server import PostgresServer, running_postgres
from tests.safeshare.gateway_support import (
    CSC,
    GP,
    SCHOOL,
    WAIT,
    acknowledgement,
    new_request,
    running_workers,
    wait_for_state,
    withdraw_consent,
)
from workflows.ids import (
    case_ref_for,
    case_workflow_id,
    consent_withdrawal_workflow_id,
    holder_exchange_workflow_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Only what closed in this test counts: the session's dev server holds other tests' cases.
SETTINGS = ArchiverSettings(protocol_version="2026.1")


@dataclass
class Stack:
    client: Client
    csc: service_grpc.CaseServiceAsyncStub
    school: service_grpc.CaseServiceAsyncStub
    archive: ArchiveStore
    key: Ed25519PrivateKey
    fakes: FakeAgencies
    gp: service_grpc.CaseServiceAsyncStub

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey(DEFAULT_ORIGIN, self.key.public_key())

    def archiver(self, store: ArchiveStore | None = None) -> Archiver:
        return Archiver(self.client, store or self.archive, self.key, SETTINGS)

    async def closed_case(self) -> str:
        """A case run to its close: consent given, delivered, acknowledged."""
        call = new_request()
        case_ref = case_ref_for(CSC, call.request.request_id)
        await self.csc.SubmitRequest(call)
        await wait_for_state(self.csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await self.csc.Acknowledge(acknowledgement(case_ref))
        handle = self.client.get_workflow_handle(case_workflow_id(case_ref))
        await asyncio.wait_for(handle.result(), WAIT.total_seconds())
        return case_ref

    async def archive_until(self, record_ids: set[str], archiver: Archiver | None = None) -> None:
        """Sweep until these records are archived (visibility catches up within seconds)."""
        sweeper = archiver or self.archiver()

        async def swept() -> dict[str, str]:
            await sweeper.sweep()
            return dict(self.archive.known(sorted(record_ids)))

        await eventually(
            swept,
            lambda known: all(known.get(r) == ARCHIVED for r in record_ids),
            what=f"archived {sorted(record_ids)}",
            every=0.2,
        )


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry, tmp_path: Path
) -> AsyncIterator[Stack]:
    client = dev_server.client
    archive = open_archive(f"sqlite:///{tmp_path / 'archive.db'}")
    hub_queue = f"hub-archive-{uuid.uuid4()}"
    fakes = FakeAgencies()
    servicer = CaseServiceServicer(client, registry, hub_queue, archive, signer=TEST_SIGNER)
    server, port = await create_gateway_server(
        client, registry, tls.server_credentials(pki.gateway()), hub_task_queue=hub_queue,
        servicer=servicer, signer=TEST_SIGNER,
    )  # fmt: skip
    channels = [
        grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(a)))
        for a in (CSC, SCHOOL, GP)
    ]
    try:
        async with running_workers(client, hub_queue, fakes):
            csc: service_grpc.CaseServiceAsyncStub = service_grpc.CaseServiceStub(channels[0])
            school: service_grpc.CaseServiceAsyncStub = service_grpc.CaseServiceStub(channels[1])
            gp: service_grpc.CaseServiceAsyncStub = service_grpc.CaseServiceStub(channels[2])
            yield Stack(client, csc, school, archive, Ed25519PrivateKey.generate(), fakes, gp)
    finally:
        for channel in channels:
            await channel.close()
        await server.stop(None)
        archive.close()


async def _delete(client: Client, *workflow_ids: str) -> None:
    """What retention does: the workflow and its history are gone from Temporal, and from
    visibility (which forgets it later, by seconds on a loaded machine)."""
    for workflow_id in workflow_ids:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )  # fmt: skip

    async def described(workflow_id: str) -> bool:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return False
        return True

    async def listed(workflow_id: str) -> int:
        return len([w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")])

    for workflow_id in workflow_ids:
        await eventually(
            functools.partial(described, workflow_id), lambda found: not found,
            what=f"Temporal deleted {workflow_id}", within=120, every=0.2,
        )  # fmt: skip
        await eventually(
            functools.partial(listed, workflow_id), lambda count: count == 0,
            what=f"visibility forgot {workflow_id}", within=120, every=0.2,
        )  # fmt: skip


async def test_a_closed_case_reads_the_same_after_temporal_deleted_it(stack: Stack) -> None:
    case_ref = await stack.closed_case()
    # Consent withdrawn after the exchange closed: its notice is part of the case's record.
    await stack.school.WithdrawConsent(withdraw_consent(case_ref))
    notice_id = consent_withdrawal_workflow_id(case_ref, SCHOOL)
    await asyncio.wait_for(stack.client.get_workflow_handle(notice_id).result(), 20)
    before = await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=case_ref), timeout=10)
    exported = await HistoryFetcher(stack.client).case(case_workflow_id(case_ref), notices=False)

    await stack.archive_until({case_workflow_id(case_ref), notice_id})
    await _delete(
        stack.client, case_workflow_id(case_ref), holder_exchange_workflow_id(case_ref, SCHOOL),
        notice_id,
    )  # fmt: skip
    after = await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=case_ref), timeout=10)

    assert after.SerializeToString(deterministic=True) == before.SerializeToString(
        deterministic=True
    )
    holder = after.case.record.holders[0]
    assert holder.HasField("consent_withdrawal")
    assert holder.consent_withdrawal.recipient_notified
    stored = stack.archive.get(case_workflow_id(case_ref))
    assert stored is not None and stored.status == ARCHIVED
    assert {h.workflow_id: h.content for h in stored.record.histories} == {
        h.workflow_id: h.content for h in exported
    }
    assert stored.record.index.requesting_agency == CSC
    assert stored.record.index.holding_agencies == (SCHOOL,)
    assert stored.record.index.outcome == "SHARED_WITH_CONSENT"
    assert verify_archive(stack.archive, stack.verifier).findings == []
    # A party is still the only one who may read it.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.school.GetCase(service_pb.GetCaseRequest(case_ref="a" * 20), timeout=10)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_cases_lists_a_closed_case_once_before_and_after_temporal_deleted_it(
    stack: Stack,
) -> None:
    """ListCases' closed filter (and the unfiltered listing) reads the archive too: a case is
    listed once while only visibility has it, once while both have it, and once from the
    archive after Temporal deleted it, with the same entry; a non-party never lists it."""
    from tests.safeshare.test_gateway_disclosures import listed, listed_eventually

    case_ref = await stack.closed_case()
    closed: dict[str, Any] = {"state": pb.CASE_STATE_CLOSED}
    before = await listed_eventually(stack.csc, case_ref, **closed)
    assert before.outcome == pb.OUTCOME_SHARED_WITH_CONSENT

    await stack.archive_until({case_workflow_id(case_ref)})
    for filters in (closed, {}):  # listed() fails on a ref listed twice
        assert (await listed(stack.csc, **filters))[case_ref] == before
        assert case_ref in await listed(stack.school, **filters)
    await _delete(
        stack.client, case_workflow_id(case_ref), holder_exchange_workflow_id(case_ref, SCHOOL)
    )

    for filters in (closed, {}):
        assert (await listed(stack.csc, **filters))[case_ref] == before
        held = (await listed(stack.school, **filters))[case_ref]
        assert list(held.holding_agency_ids) == [SCHOOL]
        assert case_ref not in await listed(stack.gp, **filters)
    # Small pages walk the archive, then visibility, each case once (listed() checks).
    token, seen = "", []
    while True:
        page = await stack.csc.ListCases(
            service_pb.ListCasesRequest(state=pb.CASE_STATE_CLOSED, page_size=2, page_token=token)
        )
        seen += [s.case_ref for s in page.cases]
        if not (token := page.next_page_token):
            break
    assert seen.count(case_ref) == 1 and len(seen) == len(set(seen))
    # A token of this listing is refused with other filters.
    first = await stack.csc.ListCases(
        service_pb.ListCasesRequest(page_size=1, state=pb.CASE_STATE_CLOSED)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.csc.ListCases(
            service_pb.ListCasesRequest(page_size=1, page_token=first.next_page_token)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _cli(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_cases_show_and_every_audit_command_read_the_same_after_the_delete(
    stack: Stack, dev_server: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFESHARE_PLAINTEXT_PAYLOADS", "1")  # this dev server stores plaintext
    monkeypatch.delenv("SAFESHARE_ARCHIVE_URL", raising=False)
    temporal = ["--temporal-address", dev_server.client.service_client.config.target_host]
    signing = tmp_path / "audit-signing.key"
    ensure_signing_key(signing)
    audit_public = str(public_key_path(signing))
    archive_public = tmp_path / "archive-log.pub"
    archive_public.write_bytes(
        stack.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    case_ref = await stack.closed_case()
    await stack.school.WithdrawConsent(withdraw_consent(case_ref))
    notice_id = consent_withdrawal_workflow_id(case_ref, SCHOOL)
    await asyncio.wait_for(stack.client.get_workflow_handle(notice_id).result(), 20)

    async def read_all(name: str, *archive: str) -> dict[str, bytes]:
        """cases show, audit export -> verify -> replay -> report, as an auditor runs them."""
        folder, out = tmp_path / f"export-{name}", tmp_path / f"report-{name}"
        keyed = [*archive, "--archive-public-key", str(archive_public)] if archive else []
        access = ["--access-log", str(tmp_path / "access.db"), "--access-log-key",
                  str(tmp_path / "access.key")]  # fmt: skip
        shown = await _cli("cases", "show", case_ref, *temporal, *archive, *access)
        exported = await _cli("audit", "export", case_ref, "--out", str(folder), "--signing-key",
                              str(signing), "--no-progress", *temporal, *archive, *access)  # fmt: skip
        verified = await _cli("audit", "verify", str(folder), "--public-key", audit_public)
        replayed = await _cli("audit", "replay", "--case", case_ref, *temporal, *keyed, *access)
        reported = await _cli("audit", "report", "--case", case_ref, "--out", str(out),
                              *temporal, *keyed, *access)  # fmt: skip
        for result in (shown, exported, verified, replayed, reported):
            assert result.exit_code == 0, result.output
        files = {p.name: p.read_bytes() for p in folder.glob("case-*.json")}
        # The HTML report ends with the case's access history, which these reads extend.
        files |= {
            p.name: p.read_bytes().split(b"<h2>Access history</h2>")[0] for p in out.iterdir()
        }
        return {**files, "cases show": shown.stdout.encode(), "replay": replayed.stdout.encode()}

    before = await read_all("before")
    await stack.archive_until({case_workflow_id(case_ref), notice_id})
    await _delete(
        stack.client, case_workflow_id(case_ref), holder_exchange_workflow_id(case_ref, SCHOOL),
        notice_id,
    )  # fmt: skip
    after = await read_all("after", "--archive", stack.archive.url)

    assert sorted(after) == sorted(before)
    assert f"{notice_id}.json" in before  # the notice is part of the record everywhere
    for name in before:
        assert after[name] == before[name], name
    assert b"consent withdrawn at oakfield-primary" in after["cases show"]
    assert b"withdrawn by mother" in after[f"case-{case_ref}.md"]


async def test_consent_withdrawn_after_temporal_deleted_the_case_reaches_the_recipient(
    stack: Stack, dev_server: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case is only in the archive: the withdrawal is still recorded, pushed to the
    recipient, and shown by GetCase, ``cases show``, the report and the archive; a repeat is
    refused, also once Temporal deleted the notice too."""
    case_ref = await stack.closed_case()
    case_id, notice_id = (
        case_workflow_id(case_ref),
        consent_withdrawal_workflow_id(case_ref, SCHOOL),
    )
    await stack.archive_until({case_id})
    await _delete(stack.client, case_id, holder_exchange_workflow_id(case_ref, SCHOOL))

    withdrawn = await stack.school.WithdrawConsent(withdraw_consent(case_ref), timeout=30)

    recorded = withdrawn.case.record.holders[0].consent_withdrawal
    assert recorded.actor.agency_id == SCHOOL and recorded.recipient_notified
    notices = [n for n in stack.fakes.withdrawal_notices if n.case_ref == case_ref]
    assert [(n.holding_agency_id, list(n.delivery_ids)) for n in notices] == [
        (SCHOOL, [f"{case_ref}.{SCHOOL}.1"])
    ]
    # The requester's view shows it at once (the notice is still in Temporal).
    seen = await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=case_ref), timeout=10)
    assert seen.case.record.holders[0].consent_withdrawal.recipient_notified
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stack.school.WithdrawConsent(withdraw_consent(case_ref), timeout=30)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Archived, then deleted from Temporal too: the same view, and still no second notice.
    await stack.archive_until({notice_id})
    await _delete(stack.client, notice_id)
    after = await stack.csc.GetCase(service_pb.GetCaseRequest(case_ref=case_ref), timeout=10)
    assert after.SerializeToString(deterministic=True) == seen.SerializeToString(deterministic=True)
    with pytest.raises(grpc.aio.AioRpcError) as repeated:
        await stack.school.WithdrawConsent(withdraw_consent(case_ref), timeout=30)
    assert repeated.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len([n for n in stack.fakes.withdrawal_notices if n.case_ref == case_ref]) == 1
    assert {r.record.record_id for r in stack.archive.records_of_case(case_ref)} == {
        case_id, notice_id,
    }  # fmt: skip
    assert verify_archive(stack.archive, stack.verifier).findings == []

    monkeypatch.setenv("SAFESHARE_PLAINTEXT_PAYLOADS", "1")  # this dev server stores plaintext
    temporal = ["--temporal-address", dev_server.client.service_client.config.target_host]
    archive_public = tmp_path / "archive-log.pub"
    archive_public.write_bytes(
        stack.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    archive = ["--archive", stack.archive.url]
    access = ["--access-log", str(tmp_path / "access.db"), "--access-log-key",
              str(tmp_path / "access.key")]  # fmt: skip
    shown = await _cli("cases", "show", case_ref, *temporal, *archive, *access)
    out = tmp_path / "report"
    reported = await _cli("audit", "report", "--case", case_ref, "--out", str(out), *temporal,
                          *archive, "--archive-public-key", str(archive_public), *access)  # fmt: skip
    assert shown.exit_code == 0 and reported.exit_code == 0, shown.output + reported.output
    assert "consent withdrawn at oakfield-primary" in shown.stdout
    assert "withdrawn by mother" in (out / f"case-{case_ref}.md").read_text()


async def _watched(
    stub: service_grpc.CaseServiceAsyncStub, case_ref: str, from_event: int = 0
) -> list[service_pb.CaseEvent]:
    """Every event a watch of the case sends until its stream ends (a closed case's last)."""
    call = stub.WatchCase(
        service_pb.WatchCaseRequest(case_ref=case_ref, from_event=from_event), timeout=30
    )
    return [response.event async for response in call]


async def test_watch_case_sends_a_deleted_cases_events_from_the_archive(stack: Stack) -> None:
    """After Temporal deleted a closed case, WatchCase sends each party the same numbered
    events as before, from the case's record in the archive, and resumes from an event number
    the same way; a non-party still finds no case."""
    case_ref = await stack.closed_case()
    parties = {"requester": stack.csc, "holder": stack.school}
    before = {who: await _watched(stub, case_ref) for who, stub in parties.items()}
    await stack.archive_until({case_workflow_id(case_ref)})
    await _delete(
        stack.client, case_workflow_id(case_ref), holder_exchange_workflow_id(case_ref, SCHOOL)
    )

    for who, stub in parties.items():
        after = await _watched(stub, case_ref)
        assert after == before[who], who
        assert [e.number for e in after] == list(range(1, len(after) + 1))
        assert SCHOOL in {e.holding_agency_id for e in after}, who
        middle = len(after) // 2 + 1
        assert await _watched(stub, case_ref, from_event=middle) == after[middle - 1 :], who
        assert await _watched(stub, case_ref, from_event=len(after) + 1) == []
    assert len(before["requester"]) > 3
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _watched(stack.gp, case_ref)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_protocol_review_counts_a_case_temporal_deleted(stack: Stack) -> None:
    case_ref = await stack.closed_case()
    await stack.archive_until({case_workflow_id(case_ref)})
    opened = stack.archive.get(case_workflow_id(case_ref))
    assert opened is not None
    at = dt.datetime.fromisoformat(opened.record.index.opened_at.replace("Z", "+00:00"))
    window = ReviewWindow(
        (at - dt.timedelta(seconds=1)).isoformat(), (at + dt.timedelta(minutes=5)).isoformat()
    )
    temporal_only = ProtocolReviewActivities(stack.client, DEFAULT_REGISTRY_PATH)
    with_archive = ProtocolReviewActivities(
        stack.client, DEFAULT_REGISTRY_PATH, archive=review_source(stack.archive)
    )
    environment = ActivityEnvironment()
    before = await environment.run(temporal_only.gather_figures, window)
    await _delete(
        stack.client, case_workflow_id(case_ref), holder_exchange_workflow_id(case_ref, SCHOOL)
    )

    forgotten = await environment.run(temporal_only.gather_figures, window)
    kept = await environment.run(with_archive.gather_figures, window)

    assert forgotten.cases_opened == before.cases_opened - 1  # what the review did before
    assert kept.cases_opened == before.cases_opened
    assert kept.case_outcomes == before.case_outcomes
    assert kept.cases_by_requesting_agency == before.cases_by_requesting_agency
    assert kept.exchanges_by_holding_agency == before.exchanges_by_holding_agency


async def test_the_same_case_swept_twice_is_archived_once(stack: Stack) -> None:
    case_ref = await stack.closed_case()
    record_id = case_workflow_id(case_ref)
    await stack.archive_until({record_id})
    leaves = len(stack.archive.leaves())

    again = await stack.archiver().sweep()
    second = Archiver(stack.client, stack.archive, stack.key, SETTINGS)  # another archiver
    stack.archive.set_meta("archiver.watermark", "2000-01-01T00:00:00+00:00")
    await second.sweep()

    assert record_id not in again.archived
    assert len(stack.archive.leaves()) == leaves
    assert [leaf.record_id for leaf in stack.archive.leaves()].count(record_id) == 1


async def test_a_killed_archiver_leaves_nothing_counted_that_was_not_read_back(
    stack: Stack,
) -> None:
    case_ref = await stack.closed_case()
    record_id = case_workflow_id(case_ref)
    archiver = stack.archiver()
    for _ in range(100):  # wait until visibility lists it
        closed = await archiver._closed_since(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        if any(e.id == record_id for e in closed):
            break
        await asyncio.sleep(0.2)
    execution = next(e for e in closed if e.id == record_id)
    # Killed after the write, before the read back: written, never counted.
    stack.archive.put(await archiver.builder.build(execution))
    assert stack.archive.known([record_id]) == {record_id: WRITTEN}
    assert record_id not in {leaf.record_id for leaf in stack.archive.leaves()}

    await stack.archive_until({record_id})  # the next archiver picks it up

    assert [leaf.record_id for leaf in stack.archive.leaves()].count(record_id) == 1


async def test_a_history_that_changed_between_two_reads_is_not_archived(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_ref = await stack.closed_case()
    record_id = case_workflow_id(case_ref)
    archiver = stack.archiver()
    real = archiver._fetcher.history

    reads: list[str] = []

    async def changed(workflow_id: str, run_id: str | None = None) -> Any:
        """The case's history differs on every second read (a reset between the reads)."""
        fetched = await real(workflow_id, run_id)
        reads.append(workflow_id)
        if workflow_id == record_id and reads.count(workflow_id) % 2 == 0:
            return type(fetched)(fetched.workflow_id, fetched.run_id, fetched.content + b" ")
        return fetched

    monkeypatch.setattr(archiver._fetcher, "history", changed)
    for _ in range(50):
        result = await archiver.sweep()
        if record_id in result.failed:
            break
        await asyncio.sleep(0.2)

    assert record_id in result.failed and record_id not in result.archived
    assert stack.archive.known([record_id]).get(record_id) != ARCHIVED
    monkeypatch.undo()
    await stack.archive_until({record_id})


async def test_a_workflow_the_archiver_cannot_read_is_counted_unreadable_and_the_sweep_goes_on(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed workflow of a kind the archiver keeps whose id is not a SafeShare case's (what
    another test or application leaves in the namespace), and a case whose history does not
    parse: each is counted a failure with reason ``unreadable``, logged by run id without its
    workflow id, never counted archived, and the cases closed after it are archived in the
    same sweeps. The watermark waits at its close time; it is tried again on every sweep, and
    archived once it reads."""
    foreign = await stack.client.start_workflow(
        "SharingCase", sharing_request(), id=f"case-stored-{uuid.uuid4().hex}",
        task_queue="nobody-polls",
    )  # fmt: skip
    await foreign.terminate()
    try:
        closed_at = (await foreign.describe()).close_time
        assert closed_at is not None
        archiver = stack.archiver()
        with capture_logs() as logs:
            await eventually(
                archiver.sweep, lambda swept: foreign.id in swept.unreadable,
                what="the foreign workflow listed", every=0.2,
            )  # fmt: skip
            case_ref = await stack.closed_case()
            record_id = case_workflow_id(case_ref)
            sweeps: list[SweepResult] = []

            async def swept() -> dict[str, str]:
                sweeps.append(await archiver.sweep())
                return dict(stack.archive.known([record_id]))

            await eventually(
                swept, lambda known: known.get(record_id) == ARCHIVED, what="archived",
                every=0.2,
            )  # fmt: skip
        # Every sweep went on past it, the one that archived the case too.
        assert all(foreign.id in s.unreadable and foreign.id in s.failed for s in sweeps)
        assert record_id in sweeps[-1].archived
        assert archiver.metrics.failures_by_reason["unreadable"] >= len(sweeps) + 1
        assert foreign.id not in stack.archive.known([foreign.id])
        assert foreign.id not in {leaf.record_id for leaf in stack.archive.leaves()}
        watermark = stack.archive.get_meta(WATERMARK)
        assert watermark is not None and dt.datetime.fromisoformat(watermark) <= closed_at
        assert sweeps[-1].lag > dt.timedelta(0)  # it is closed and not archived
        lines = [line for line in logs if line["event"] == "archive_unreadable"]
        assert len(lines) >= len(sweeps) + 1
        for line in lines:
            assert line["reason"] == "unreadable" and line["run_id"] == foreign.result_run_id
            assert line["temporal_workflow"] == "SharingCase"
            assert foreign.id not in repr(line) and "stored" not in repr(line)

        # A case of SafeShare's whose history does not parse: unreadable, not passed over,
        # archived on the first sweep that reads it.
        garbled_ref = await stack.closed_case()
        garbled_id = case_workflow_id(garbled_ref)
        real = archiver._fetcher.history

        async def garbled(workflow_id: str, run_id: str | None = None) -> Any:
            fetched = await real(workflow_id, run_id)
            if workflow_id != garbled_id:
                return fetched
            return type(fetched)(fetched.workflow_id, fetched.run_id, b"{not json")

        monkeypatch.setattr(archiver._fetcher, "history", garbled)
        unread = await eventually(
            archiver.sweep, lambda swept: garbled_id in swept.unreadable,
            what="the garbled case listed", every=0.2,
        )  # fmt: skip
        assert garbled_id not in unread.archived
        assert stack.archive.known([garbled_id]) == {}
        monkeypatch.undo()
        await stack.archive_until({garbled_id}, archiver)
        assert [leaf.record_id for leaf in stack.archive.leaves()].count(garbled_id) == 1
        assert verify_archive(stack.archive, stack.verifier).findings == []
    finally:
        await _delete(stack.client, foreign.id)


async def test_an_archive_database_outage_is_retried_and_nothing_is_lost(
    stack: Stack, postgres_server: PostgresServer
) -> None:
    store = open_archive(postgres_server.new_database())
    try:
        case_ref = await stack.closed_case()
        record_id = case_workflow_id(case_ref)
        archiver = stack.archiver(store)
        postgres_server.stop()
        try:
            down = await archiver.sweep()
        finally:
            postgres_server.start()

        assert down.unavailable and down.archived == []
        assert archiver.metrics.failures >= 1
        for _ in range(100):
            result = await archiver.sweep()
            if (
                record_id in store.known([record_id])
                and store.known([record_id])[record_id] == ARCHIVED
            ):
                break
            await asyncio.sleep(0.2)
        assert store.known([record_id]) == {record_id: ARCHIVED}
        assert not result.unavailable
        assert verify_archive(store, stack.verifier).findings == []
    finally:
        store.close()


@contextlib.contextmanager
def _small_disk(folder: Path) -> Iterator[Path]:
    """A real 4 MiB filesystem (tmpfs) mounted at ``folder``; skipped where mounting is not
    permitted (not root)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the filesystem at ``folder`` to the last byte; the filler file."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):  # down to the last byte
            with contextlib.suppress(OSError):
                while os.write(descriptor, b"\0" * size):
                    pass
    finally:
        os.close(descriptor)
    return filler


async def test_a_full_disk_counts_nothing_archived_says_so_and_recovers(
    stack: Stack, tmp_path: Path
) -> None:
    """The archive's disk fills up: the sweep writes nothing, counts nothing, logs
    ``archive_full``; once there is room again the next sweep archives the case, once."""
    case_ref = await stack.closed_case()
    record_id = case_workflow_id(case_ref)
    with _small_disk(tmp_path / "disk") as disk:
        store = open_archive(f"sqlite:///{disk / 'archive.db'}")
        try:
            archiver = stack.archiver(store)
            filler = _fill(disk)
            with capture_logs() as logs:
                full = await archiver.sweep()
            assert full.unavailable and full.archived == []
            assert store.known([record_id]).get(record_id) != ARCHIVED
            assert store.counts().archived == 0 and store.leaves() == []
            assert archiver.metrics.failures >= 1
            [line] = [x for x in logs if x["event"] == "archive_full"]
            assert line["reason"] == "disk_full"

            filler.unlink()  # room again
            for _ in range(100):
                if record_id in (await archiver.sweep()).archived:
                    break
                await asyncio.sleep(0.2)
            assert store.known([record_id]) == {record_id: ARCHIVED}
            assert store.counts().archived == len(store.leaves()) >= 1
            assert verify_archive(store, stack.verifier).findings == []
        finally:
            store.close()


@pytest.fixture
def small_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own whose data directory is a 96 MiB filesystem (tmpfs);
    skipped where mounting is not permitted (not root)."""
    with running_postgres(data_size="96m") as server:
        yield server


async def test_a_full_disk_under_postgresql_counts_nothing_archived_says_so_and_recovers(
    stack: Stack, small_postgres: PostgresServer
) -> None:
    """The PostgreSQL server's disk fills up: the write fails as disk_full, the sweep counts
    nothing archived and logs ``archive_full`` naming the reason; once there is room again the
    next sweep archives the case, once, and the archive verifies."""
    case_ref = await stack.closed_case()
    record_id = case_workflow_id(case_ref)
    store = open_archive(small_postgres.new_database())
    try:
        archiver = stack.archiver(store)
        filler = _fill(small_postgres.data)
        with capture_logs() as logs:
            full = await archiver.sweep()
        assert full.unavailable and full.archived == []
        assert archiver.metrics.failures_by_reason.get("archive_full") == 1
        [line] = [x for x in logs if x["event"] == "archive_full"]
        assert (line["reason"], line["error_type"]) == ("disk_full", "ArchiveFull")
        # The server still answers reads, and holds nothing counted archived.
        assert store.known([record_id]).get(record_id) != ARCHIVED
        assert store.counts().archived == 0 and store.leaves() == []
        assert not [x for x in logs if x["event"] == "case_archived"]

        filler.unlink()  # room again

        async def swept() -> dict[str, str]:
            await archiver.sweep()
            return dict(store.known([record_id]))

        await eventually(
            swept, lambda known: known == {record_id: ARCHIVED}, what="archived", every=0.2
        )
        assert [leaf.record_id for leaf in store.leaves()].count(record_id) == 1
        assert store.counts().archived == len(store.leaves())
        assert verify_archive(store, stack.verifier).findings == []
    finally:
        store.close()
