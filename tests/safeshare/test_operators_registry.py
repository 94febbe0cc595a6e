"""Administering the partnership registry: each change validated, versioned, logged with who and
when, written atomically, and seen by the running protocol gate without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import tomllib
import uuid
from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner

from partnership.registry_file import DEFAULT_REGISTRY_PATH, load_registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare.cli import app
from safeshare.hub import build_hub_worker
from safeshare.operators.registry_store import renew_signature
from tests.factories import sharing_request
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import gateway_key_file
from tests.workflows.harness import CSC, SCHOOL
from workflows.ids import case_ref_for, case_workflow_id
from workflows.sharing_case import SharingCase


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    shutil.copy(DEFAULT_REGISTRY_PATH, path)
    return path


def cli(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv))
    return result.exit_code, result.output


def test_changes_are_versioned_and_logged_with_who_and_when(registry_copy: Path) -> None:
    before = load_registry(registry_copy).registry_version
    path = str(registry_copy)
    assert cli("registry", "add-agency", "--id", "bright-futures", "--name", "Bright Futures",
               "--kind", "commissioned", "--commissioned-by", "northshire-police",
               "--review-date", "2027-06-30", "--by", "ops-anna",
               "--registry", path)[0] == 0  # fmt: skip
    assert cli("registry", "bind-provider", "--provider", "bright-futures",
               "--commissioner", CSC, "--by", "ops-ben", "--registry", path)[0] == 0  # fmt: skip
    code, out = cli("registry", "renew", "--agency", SCHOOL, "--review-date", "2029-03-31",
                    "--by", "ops-anna", "--registry", path)  # fmt: skip
    assert code == 0 and f"registry version {before + 3}" in out

    registry = load_registry(registry_copy)
    assert registry.registry_version == before + 3
    assert registry.agencies["bright-futures"].commissioned_by == CSC
    assert registry.agencies[SCHOOL].review_date == dt.date(2029, 3, 31)
    changes = tomllib.loads(registry_copy.read_text())["changes"]
    assert [(c["registry_version"], c["by"]) for c in changes] == [
        (before + 1, "ops-anna"), (before + 2, "ops-ben"), (before + 3, "ops-anna"),
    ]  # fmt: skip
    assert all(isinstance(c["at"], dt.datetime) for c in changes)
    assert changes[1]["change"] == "bind-provider bright-futures to northshire-csc"
    # The operators' header comment survives a rewrite.
    assert registry_copy.read_text().startswith("# The partnership registry")

    code, out = cli("registry", "validate", "--registry", path)
    assert code == 0 and f"registry version {before + 3}" in out
    code, out = cli("registry", "show", "--registry", path)
    assert code == 0 and "bright-futures" in out and "ops-ben" in out


def test_a_refused_change_leaves_the_file_as_it_was(registry_copy: Path) -> None:
    original = registry_copy.read_text()
    path = str(registry_copy)
    refused = [
        ("registry", "renew", "--agency", "nobody", "--review-date", "2029-01-01",
         "--by", "ops-1", "--registry", path),
        ("registry", "add-agency", "--id", SCHOOL, "--name", "Again", "--review-date",
         "2029-01-01", "--by", "ops-1", "--registry", path),
        ("registry", "add-agency", "--id", "new-one", "--name", "X", "--review-date",
         "2029-01-01", "--commissioned-by", "not-a-partner", "--by", "ops-1", "--registry", path),
        ("registry", "renew", "--agency", SCHOOL, "--review-date", "2029-01-01",
         "--by", " ", "--registry", path),
    ]  # fmt: skip
    for argv in refused:
        code, out = cli(*argv)
        assert code == 2, out
        assert out.startswith("safeshare: error: ") and "Traceback" not in out
        assert registry_copy.read_text() == original
    # No temporary file is left behind (the writers' lock file stays, empty).
    leftovers = [p.name for p in registry_copy.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [".registry.toml.lock"]
    registry_copy.write_text("registry_version = 'x'\n")
    code, out = cli("registry", "validate", "--registry", path)
    assert code == 2 and "malformed" in out and len(out.strip().splitlines()) == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_the_running_gate_sees_a_renewed_signature(
    time_skipping: WorkflowEnvironment, registry_copy: Path
) -> None:
    client = time_skipping.client
    renew_signature(registry_copy, "ops-1", agency_id=SCHOOL, review_date=dt.date(2020, 1, 1))
    queue = f"hub-{uuid.uuid4().hex[:8]}"
    agencies = FakeAgencies()

    async def gate_of_a_new_case() -> pb.GateResult:
        request = sharing_request()
        ref = case_ref_for(request.requesting_agency_id, request.request_id)
        handle = await client.start_workflow(
            SharingCase.run, request, id=case_workflow_id(ref), task_queue=queue
        )
        for _ in range(600):
            view = await handle.query(SharingCase.case_view)
            if view.record.HasField("gate"):
                with contextlib.suppress(RPCError):  # a rejected case has already closed
                    await handle.terminate("gate seen")
                return view.record.gate
            await asyncio.sleep(0.05)
        raise AssertionError("the case never passed through the gate")

    # One hub worker throughout: the change must be seen without a restart.
    async with (
        build_hub_worker(
            client, registry_copy, task_queue=queue, gateway_key_path=gateway_key_file()
        ),
        Worker(client, task_queue=f"agency.{SCHOOL}", activities=agencies.activities_for(SCHOOL)),
    ):
        lapsed = await gate_of_a_new_case()
        assert not lapsed.passed
        assert lapsed.reasons == [f"holder_signature_review_overdue:{SCHOOL}"]
        renewed = renew_signature(
            registry_copy, "ops-2", agency_id=SCHOOL, review_date=dt.date(2030, 1, 1)
        )
        passed = await gate_of_a_new_case()
    assert passed.passed and passed.registry_version == renewed.registry_version
