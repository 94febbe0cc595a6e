"""`safeshare dev` as a newcomer runs it: the whole system in real processes, demo cases
flowing, a case submitted over mTLS closing with the records in the recipient's sandbox, a
clean stop on Ctrl-C, and a second start that reuses the same data."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from temporalio.client import Client
from temporalio.service import RPCError

from protos.sharing.v1 import case_pb2 as pb
from safeshare.client import CaseClient
from safeshare.codec import data_converter, load_key_file
from safeshare.demo import DEMO_CASES
from safeshare.pki import DevPki
from tests.conftest import TEMPORAL_CLI
from tests.eventually import eventually
from tests.factories import sharing_request
from workflows import search_attributes as sa
from workflows.ids import case_ref_for, case_workflow_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="session")]

AGENCIES = ("northshire-csc", "northshire-police", "oakfield-primary", "riverside-gp")


@dataclass
class Ports:
    temporal: int
    ui: int
    gateway: int
    first_agency: int
    codec: int

    @property
    def agency(self) -> dict[str, int]:
        return {a: self.first_agency + i for i, a in enumerate(sorted(AGENCIES))}


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_ports() -> Ports:
    """Ten consecutive free loopback ports (the agencies' must be consecutive)."""
    for _ in range(200):
        # Below Linux's ephemeral range (32768+), so no outgoing connection of another process
        # takes one of them between this check and the stack binding it.
        base = random.randrange(20000, 32000)
        if all(_free(base + offset) for offset in range(10)):
            return Ports(
                temporal=base, ui=base + 1, gateway=base + 2, first_agency=base + 3, codec=base + 7
            )
    raise RuntimeError("no free ports")


# The dev stack's metrics ports from a base (--metrics-port): hub, gateway, archiver, adapters,
# sandbox agencies.
METRICS_OFFSETS = (0, 1, 2, 10, 11, 12, 13, 30, 31, 32, 33)


def free_metrics_base() -> int:
    """A base for ``--metrics-port`` whose every dev-stack offset is free."""
    for _ in range(200):
        base = random.randrange(12000, 19000)
        if all(_free(base + offset) for offset in METRICS_OFFSETS):
            return base
    raise RuntimeError("no free metrics ports")


@dataclass
class RunningStack:
    process: asyncio.subprocess.Process
    ready_line: str
    demo_refs: dict[str, str]
    stderr_path: Path


@contextlib.asynccontextmanager
async def dev_stack(data_dir: Path, ports: Ports, *extra_args: str) -> AsyncIterator[RunningStack]:
    """Run `python -m safeshare dev` until it prints its ready line; SIGINT it afterwards."""
    stderr_path = data_dir.parent / f"dev-{uuid.uuid4().hex[:6]}.err"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "safeshare", "dev",
            "--data-dir", str(data_dir),
            "--temporal-port", str(ports.temporal), "--ui-port", str(ports.ui),
            "--gateway-port", str(ports.gateway), "--agency-port", str(ports.first_agency),
            "--codec-port", str(ports.codec), *extra_args,
            stdout=asyncio.subprocess.PIPE, stderr=stderr, stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "140"},
        )  # fmt: skip
    assert process.stdout is not None
    try:
        ready, refs = "", {}
        async with asyncio.timeout(180):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    pytest.fail(f"safeshare dev exited early:\n{stderr_path.read_text()}")
                if line.startswith("safeshare-dev-ready"):
                    ready = line
                elif line.startswith("safeshare-dev-case"):
                    _, request_id, ref = line.split()
                    refs[request_id] = ref
                    if len(refs) == len(DEMO_CASES):
                        break
        yield RunningStack(process, ready, refs, stderr_path)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(60):
                await process.wait()


async def connect(data_dir: Path, ports: Ports) -> Client:
    """A Temporal client holding the dev stack's payload keys, as every SafeShare part does."""
    keys = load_key_file(data_dir / "dev" / "keys.json")
    return await Client.connect(f"127.0.0.1:{ports.temporal}", data_converter=data_converter(keys))


async def until(condition, what: str, seconds: float = 60.0):
    """``condition`` (an async callable returning a value or None) until it gives a value."""
    return await eventually(
        condition, lambda value: value is not None, what=what, within=seconds, every=0.25
    )


async def test_dev_stack_runs_a_case_end_to_end_and_restarts_on_the_same_data(
    tmp_path: Path,
) -> None:
    data_dir, ports = tmp_path / "data", free_ports()
    async with dev_stack(data_dir, ports) as stack:
        assert f"gateway=127.0.0.1:{ports.gateway}" in stack.ready_line
        pki = DevPki(data_dir / "dev" / "pki")
        gateway = f"127.0.0.1:{ports.gateway}"
        temporal = await connect(data_dir, ports)

        # The demo cases flowed: each came to rest where its story says.
        async with CaseClient.connect(gateway, pki.agency("northshire-csc")) as csc:
            demo_1 = await csc.get(stack.demo_refs["demo-1"])
        assert demo_1.state == pb.CASE_STATE_CLOSED
        assert demo_1.record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
        async with CaseClient.connect(gateway, pki.agency("northshire-police")) as police:
            demo_3 = await police.get(stack.demo_refs["demo-3"])
        assert demo_3.record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
        [exchange] = demo_3.record.holders
        # The requester sees the outcome; the holder's consent record and decisions are its own.
        assert exchange.override_used and not exchange.HasField("consent")
        async with CaseClient.connect(gateway, pki.agency("northshire-csc")) as csc:
            [own] = (await csc.get(stack.demo_refs["demo-3"])).record.holders
        assert own.override_decision.approve and own.consent.status == pb.CONSENT_STATUS_REFUSED
        async with CaseClient.connect(gateway, pki.agency("riverside-gp")) as gp:
            demo_4 = await gp.get(stack.demo_refs["demo-4"])
        assert demo_4.record.outcome == pb.OUTCOME_NOT_SHARED
        assert demo_4.record.holders[0].basis == "Not shared by oakfield-primary: declined"
        async with CaseClient.connect(gateway, pki.agency("oakfield-primary")) as school:
            [own] = (await school.get(stack.demo_refs["demo-4"])).record.holders
        assert list(own.decline.reasons)
        async with CaseClient.connect(gateway, pki.agency("northshire-csc")) as csc:
            demo_5 = await csc.get(stack.demo_refs["demo-5"])
        assert demo_5.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
        assert demo_5.waiting_on == pb.WAITING_ON_HOLDER

        # A new case, submitted over mTLS as the GP practice, asking the school.
        request = sharing_request(
            requesting_agency_id="ignored-the-certificate-decides",
            holding_agency_id="oakfield-primary",
            categories=(
                pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
                pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
            ),
        )
        async with CaseClient.connect(gateway, pki.agency("riverside-gp")) as gp:
            submitted = await gp.submit(request)
            assert submitted.created
            assert submitted.case_ref == case_ref_for("riverside-gp", request.request_id)

            async def awaiting_ack() -> pb.CaseView | None:
                view = await gp.get(submitted.case_ref)
                ok = view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
                return view if ok else None

            view = await until(awaiting_ack, "the delivery")
            assert view.record.request.requesting_agency_id == "riverside-gp"
            await gp.acknowledge(
                submitted.case_ref,
                pb.Acknowledgement(
                    practitioner=pb.Practitioner(user_id="gp-9", role="gp"),
                    status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
                    use="reviewed at the practice safeguarding meeting",
                ),
            )
            handle = temporal.get_workflow_handle(
                case_workflow_id(submitted.case_ref), result_type=pb.DecisionRecord
            )
            record = await handle.result()
        assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
        [exchange] = record.holders
        shared = {item.item_id for item in exchange.shared_items}
        assert shared, "the school holds attendance and welfare records for this child"

        # The records are in the recipient's own sandbox store, exactly once each.
        with contextlib.closing(
            sqlite3.connect(data_dir / "agencies" / "riverside-gp.db")
        ) as store:
            rows = store.execute(
                "SELECT item_id FROM delivered_items WHERE delivery_id = ?",
                (exchange.receipt.delivery_id,),
            ).fetchall()
        assert sorted(r[0] for r in rows) == sorted(shared)

        # Operators see it: search attributes, and `temporal workflow list`.
        described = await handle.describe()
        assert described.typed_search_attributes.get(sa.OUTCOME) == "SHARED_WITH_CONSENT"
        assert described.typed_search_attributes.get(sa.REQUESTING_AGENCY) == "riverside-gp"
        listed = await asyncio.to_thread(
            subprocess.run,
            [str(TEMPORAL_CLI), "workflow", "list", "--address", f"127.0.0.1:{ports.temporal}",
             "--query", "RequestingAgency='riverside-gp' AND Outcome='SHARED_WITH_CONSENT'"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        assert case_workflow_id(submitted.case_ref) in listed.stdout

        # A malformed request gets field-level reasons and starts no workflow.
        bad = sharing_request()
        del bad.subjects[:]
        async with CaseClient.connect(gateway, pki.agency("riverside-gp")) as gp:
            with pytest.raises(grpc.aio.AioRpcError) as rejected:
                await gp.submit(bad)
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(rejected.value)
        assert status is not None
        violations = error_details_pb2.BadRequest()
        status.details[0].Unpack(violations)
        assert "request.subjects" in [v.field for v in violations.field_violations]
        with pytest.raises(RPCError):
            await temporal.get_workflow_handle(
                case_workflow_id(case_ref_for("riverside-gp", bad.request_id))
            ).describe()

    # Ctrl-C stopped everything it started.
    assert stack.process.returncode == 0, stack.stderr_path.read_text()
    assert "Stopped." in stack.stderr_path.read_text()
    for port in (ports.temporal, ports.gateway, ports.codec, *ports.agency.values()):
        assert not _listening(port), f"something still listens on {port} after stop"

    # A second start reuses the data: the same demo cases, the earlier case still there.
    async with dev_stack(data_dir, ports) as again:
        assert again.demo_refs == stack.demo_refs
        temporal = await connect(data_dir, ports)
        described = await temporal.get_workflow_handle(
            case_workflow_id(submitted.case_ref)
        ).describe()
        assert described.status is not None and described.status.name == "COMPLETED"
        count = await temporal.count_workflows("WorkflowType='SharingCase'")
        assert count.count == len(DEMO_CASES) + 1
    assert again.process.returncode == 0
