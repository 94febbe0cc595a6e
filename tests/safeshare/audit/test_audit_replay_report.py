"""``safeshare audit replay`` and ``report`` on an export of the replay corpus (every path):
every history replays, a non-deterministic change is caught at its event, and the decision
record reads as a timeline in Markdown and in an HTML page that a browser shows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from temporalio import workflow
from typer.testing import CliRunner

from protos.sharing.v1 import case_pb2 as pb
from safeshare.audit import replay as replay_module
from safeshare.cli import app
from tests.safeshare.audit.audit_support import corpus_case_count, corpus_histories
from tests.safeshare.test_leak import chromium_or_skip
from workflows.sharing_case import SharingCase

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
OVERRIDE_CASE = "p6tq6ref4wdue55k7ujm"
ESCALATED_CASE = "g4iox6kmtcfi72dftxh2"  # RED share-first, justification missing: escalates


@workflow.defn(name="HolderExchange", sandboxed=False)
class ChangedHolderExchange:
    """A deliberately non-deterministic "new version": it waits before checking consent."""

    @workflow.run
    async def run(self, exchange: pb.HolderExchangeInput) -> pb.HolderRecord:
        await workflow.sleep(dt.timedelta(minutes=1))
        return pb.HolderRecord(holding_agency_id=exchange.holding_agency_id)


def test_every_history_of_the_export_replays(corpus_export: Path, public_key: Path) -> None:
    run = CliRunner().invoke(
        app, ["audit", "replay", str(corpus_export), "--public-key", str(public_key)]
    )
    assert run.exit_code == 0, run.output
    assert run.output.count("replayed") == len(corpus_histories())


def test_a_non_deterministic_change_is_detected_at_its_event(
    corpus_export: Path, public_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "WORKFLOWS", (SharingCase, ChangedHolderExchange))
    exchange = corpus_export / f"case-{OVERRIDE_CASE}.oakfield-primary.json"
    run = CliRunner().invoke(
        app, ["audit", "replay", str(exchange), "--public-key", str(public_key)]
    )
    assert run.exit_code == 1, run.output
    # The history scheduled LookupConsent and upserted search attributes where the new code
    # starts a timer: event 5 is where they part.
    assert "DIVERGED" in run.output and "at event 5" in run.output
    assert "Nondeterminism" in run.output


def test_report_writes_the_decision_record_as_a_timeline(
    corpus_export: Path, public_key: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    run = CliRunner().invoke(app, ["audit", "report", str(corpus_export), "--out", str(out),
                                   "--summary", "--public-key", str(public_key)])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert len(list(out.glob("case-*.md"))) == corpus_case_count()
    # The corpus records consent-withdrawal notices on their own, as an export can hold a notice
    # whose case Temporal already deleted: those are named as skipped, not reported, not fatal.
    ids = {h.workflow_id for h in corpus_histories()}
    caseless = sorted({i.split(".")[0] for i in ids} - ids)
    assert caseless and f"skipped {len(caseless)} " in run.output
    assert all(ref in run.output for ref in caseless)
    markdown = (out / f"case-{OVERRIDE_CASE}.md").read_text()
    steps = [line for line in markdown.splitlines() if line.startswith("### ")]
    assert [s.split(" · ")[1] for s in steps] == [
        "Request received", "Protocol gate checked", "Consent checked — with oakfield-primary",
        "Override proposed — with oakfield-primary", "Override approved — with oakfield-primary",
        "Records delivered — with oakfield-primary", "Acknowledged — with oakfield-primary",
        "Exchange closed — with oakfield-primary", "Case closed",
    ]  # fmt: skip
    assert "oakfield-primary / dsl-1 (designated_safeguarding_lead)" in markdown  # who approved
    assert "threshold for s47 met" in markdown  # why
    assert "Children Act 1989 s47 (SIGNIFICANT_HARM)" in markdown  # on which basis
    escalated = (out / f"case-{ESCALATED_CASE}.md").read_text()
    assert "Shared first" in escalated and "Deadline missed" in escalated
    summary = (out / "summary.md").read_text()
    assert (
        f"| {ESCALATED_CASE} | northshire-csc | oakfield-primary | SHARED_UNDER_OVERRIDE | 1 | 1 | 3 |"
        in summary
    )
    # The by-agency table agrees with the cases table (the corpus grows, so no fixed totals).
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in summary.splitlines()
        if line.startswith("| ")
    ]
    cases = [r for r in rows if len(r) == 7 and r[0] not in ("case", "agency") and "-" not in r[0]]
    oakfield = next(r for r in rows if r[0] == "oakfield-primary")
    asked = sum(
        "oakfield-primary" in r[2].split(", ") and r[3] != "REJECTED_BY_PROTOCOL_GATE"
        for r in cases
    )  # a gate-rejected case opens no exchange
    assert int(oakfield[2]) == asked > 0


def test_the_html_report_shows_its_timeline_in_a_browser(
    corpus_export: Path, public_key: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report"
    run = CliRunner().invoke(app, ["audit", "report", str(corpus_export), "--out", str(out),
                                   "--case", OVERRIDE_CASE, "--public-key", str(public_key)])  # fmt: skip
    assert run.exit_code == 0, run.output
    page_path = out / f"case-{OVERRIDE_CASE}.html"
    html = page_path.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    ARTIFACTS.mkdir(exist_ok=True)
    executable = chromium_or_skip()  # fails under CI, which installs it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.goto(page_path.as_uri())
            timeline = page.locator("#timeline")
            assert timeline.is_visible()
            steps = page.locator("#timeline .step")
            assert steps.count() == 9
            assert page.locator('.step[data-event="OverrideApproved"]').is_visible()
            page.screenshot(path=str(ARTIFACTS / "audit-report-timeline.png"), full_page=True)
        finally:
            browser.close()


def test_report_on_a_tampered_export_refuses_and_names_the_finding(
    corpus_export: Path, public_key: Path, tmp_path: Path
) -> None:
    case = corpus_export / f"case-{OVERRIDE_CASE}.oakfield-primary.json"
    case.write_bytes(case.read_bytes().rstrip() + b" \n")  # one byte changed
    out = tmp_path / "report"
    args = ["audit", "report", str(corpus_export), "--out", str(out), "--public-key",
            str(public_key)]  # fmt: skip

    refused = CliRunner().invoke(app, args)
    nothing_written = not out.exists()
    replayed = CliRunner().invoke(
        app, ["audit", "replay", str(corpus_export), "--public-key", str(public_key)]
    )
    went_on = CliRunner().invoke(app, [*args, "--unverified"])

    assert refused.exit_code == 1, refused.output
    assert f"case-{OVERRIDE_CASE}.oakfield-primary.json" in refused.output
    assert "refusing to report" in refused.output and nothing_written
    assert replayed.exit_code == 1 and "refusing to replay" in replayed.output
    assert went_on.exit_code == 0, went_on.output
    pages = list(out.glob("case-*.md")) + list(out.glob("case-*.html"))
    assert len(pages) > 2 and len(pages) % 2 == 0
    assert all("UNVERIFIED" in page.read_text() for page in pages)
