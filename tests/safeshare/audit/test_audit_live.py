"""The round trip on live, encrypted cases: run cases on a real Temporal dev server with the
real workflows and fake agencies, then export (by ref and by query) → verify → replay with the
keys → report with the keys. The export holds only ciphertext."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from protos.sharing.v1 import case_pb2 as pb
from safeshare.audit.signing import load_public_key
from safeshare.audit.verify import verify_export
from safeshare.cli import app
from safeshare.codec import KeyRing, data_converter, write_key_file
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.workflows.harness import SCHOOL, actor, running_case
from workflows.holder_exchange import HolderExchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEACHER = actor(SCHOOL, "teacher-1", "teacher")


async def cli(args: list[str]) -> Result:
    """Run ``safeshare`` in a thread: the commands run their own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, args)


async def run_cases(env: Any) -> tuple[list[str], str]:
    """Three cases: shared and acknowledged, declined, and one left open; their refs."""
    refs = []
    async with running_case(env, FakeAgencies(), "live-shared") as case:
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await case.exchange().execute_update(HolderExchange.acknowledge, pb.Acknowledgement(
            practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
            status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED, use="strategy discussion",
            agency_id="northshire-csc"))  # fmt: skip
        await case.handle.result()
        refs.append(case.ref)
    refused = FakeAgencies(consent={SCHOOL: given_consent(status=pb.CONSENT_STATUS_REFUSED)})
    async with running_case(env, refused, "live-declined") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(HolderExchange.decline_to_share, pb.DeclineDecision(
            actor=TEACHER, reasons=["not_proportionate"], explanation="low risk"))  # fmt: skip
        await case.handle.result()
        refs.append(case.ref)
    async with running_case(env, refused, "live-open") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        open_ref = case.ref
    return refs, open_ref


async def test_export_verify_replay_report_on_encrypted_live_cases(
    dev_server: WorkflowEnvironment, tmp_path: Path, signing_key: Path, public_key: Path
) -> None:
    keys = KeyRing.generate("audit-test")
    keys_file = tmp_path / "keys.json"
    write_key_file(keys_file, keys)
    target = dev_server.client.service_client.config.target_host
    client = await Client.connect(target, namespace=dev_server.client.namespace,
                                  data_converter=data_converter(keys))  # fmt: skip
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    closed_refs, open_ref = await run_cases(SimpleNamespace(client=client))
    temporal = ["--temporal-address", target, "--namespace", client.namespace]

    by_ref = tmp_path / "by-ref"
    run = await cli(["audit", "export", *closed_refs, open_ref, "--out", str(by_ref),
                              "--signing-key", str(signing_key), "--no-progress", *temporal])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "exported 3 cases (6 histories)" in run.output
    for path in by_ref.glob("case-*.json"):  # stored as is: ciphertext only
        content = path.read_text()
        assert "YmluYXJ5L2VuY3J5cHRlZA==" in content  # base64 of binary/encrypted
        assert "c2hhcmluZy52MS5TaGFyaW5nUmVxdWVzdA" not in content  # no clear message type
    assert verify_export(by_ref, load_public_key(public_key)).findings == []

    # By query: the closed cases since the test started, found by the server's visibility.
    ids = " OR ".join(f"WorkflowId = 'case-{ref}'" for ref in [*closed_refs, open_ref])
    by_query = tmp_path / "by-query"
    for _ in range(100):  # visibility is eventually consistent: bounded poll
        if by_query.exists():
            for child in by_query.iterdir():
                child.unlink()
        run = await cli(["audit", "export", "--query", ids, "--closed-since",
                                  started.isoformat(timespec="seconds").replace("+00:00", ""),
                                  "--out", str(by_query), "--signing-key", str(signing_key),
                                  "--no-progress", *temporal])  # fmt: skip
        if "exported 2 cases (4 histories)" in run.output:
            break
    assert "exported 2 cases (4 histories)" in run.output, run.output
    verify = await cli(["audit", "verify", str(by_query), "--public-key", str(public_key)])
    assert verify.exit_code == 0, verify.output

    replay = await cli(["audit", "replay", str(by_ref), "--keys-file", str(keys_file),
                        "--public-key", str(public_key)])  # fmt: skip
    assert replay.exit_code == 0, replay.output
    assert replay.output.count("replayed") == 6
    live = await cli(["audit", "replay", "--case", open_ref, "--keys-file",
                               str(keys_file), *temporal])  # fmt: skip
    assert live.exit_code == 0 and live.output.count("replayed") == 2, live.output

    out = tmp_path / "report"
    report = await cli(["audit", "report", str(by_ref), "--out", str(out), "--summary",
                        "--keys-file", str(keys_file), "--public-key", str(public_key)])  # fmt: skip
    assert report.exit_code == 0, report.output
    declined = (out / f"case-{closed_refs[1]}.md").read_text()
    assert "Declined to share" in declined and "not_proportionate: low risk" in declined
    assert "oakfield-primary / teacher-1 (teacher)" in declined
    still_open = (out / f"case-{open_ref}.md").read_text()
    assert "| Status | open |" in still_open
    assert "Request received" in still_open
    summary = (out / "summary.md").read_text()
    assert "| SHARED_WITH_CONSENT | 1 |" in summary and "| OPEN | 1 |" in summary

    other_keys = tmp_path / "other-keys.json"
    write_key_file(other_keys, KeyRing.generate("not-the-key"))
    wrong = await cli(["audit", "report", str(by_ref), "--out", str(out),
                       "--keys-file", str(other_keys), "--public-key", str(public_key)])  # fmt: skip
    assert wrong.exit_code == 2
    assert (
        wrong.output.startswith("safeshare: error: cannot decrypt") and "audit-test" in wrong.output
    )
