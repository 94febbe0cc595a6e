"""Every recorded history in tests/histories/ replays through the current workflow code.

A change to SharingCase or HolderExchange that would break running or closed cases fails
here. Record the corpus again after an intended, versioned change with:

    SAFESHARE_RECORD_HISTORIES=1 make pytest PYTEST_ARGS=tests/workflows/test_sharing_case.py

The corpus is append-only: a new shape of paths already recorded goes under a tag
(``SAFESHARE_RECORD_HISTORIES=compact`` wrote the ``compact-*`` histories).
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.runner import strict_runner, workflow_runner
from workflows.sharing_case import SharingCase

CORPUS = Path(__file__).resolve().parent.parent / "histories"
WORKFLOW_IDS: dict[str, str] = json.loads((CORPUS / "workflow-ids.json").read_text())
HISTORIES = sorted(CORPUS / name for name in WORKFLOW_IDS)


def test_every_recorded_history_is_indexed() -> None:
    on_disk = {p.name for p in CORPUS.glob("*.json")} - {"workflow-ids.json"}
    assert on_disk == set(WORKFLOW_IDS)


def test_the_corpus_covers_every_path() -> None:
    names = {path.name.split(".")[0] for path in HISTORIES}
    for path in (
        "consent-covers", "override-approved", "override-rejected", "declined",
        "red-share-first", "red-justification-missing", "urgency-changed",
        "consent-withdrawn-after-delivery", "two-holders", "delivery-failing",
        "gate-rejected", "subject-unknown", "withdrawn-awaiting_acknowledgement",
        "escalation-holder_responds", "not-sought-risk_to_child",
        "ladder-reminder-refused", "ladder-nothing-gets-through",
        "withdrawn-delivery-in-flight", "withdrawn-after-share-first",
        "disclosure-encompass-acknowledged", "disclosure-encompass-missed-acknowledgement",
        "disclosure-encompass-no-school-place", "disclosure-concern-approved",
        "disclosure-cp-file-transfer", "disclosure-not-made",
    ):  # fmt: skip
        assert path in names, f"no recorded history for {path}"


def test_the_corpus_covers_compact_histories() -> None:
    """Cases started with compact histories (small update results, one patch marker) are
    recorded on the main paths too, so their shape stays replayable."""
    names = {path.name.split(".")[0] for path in HISTORIES}
    for path in (
        "consent-covers", "override-approved", "override-rejected", "declined",
        "red-share-first", "red-justification-missing", "urgency-changed",
        "consent-withdrawn-after-delivery", "two-holders", "delivery-failing",
        "withdrawn-awaiting_acknowledgement", "withdrawn-delivery-in-flight",
        "escalation-holder_responds", "ladder-nothing-gets-through", "update-results-small",
    ):  # fmt: skip
        assert f"compact-{path}" in names, f"no compact history for {path}"


def test_the_corpus_covers_views_in_memos() -> None:
    """Cases, exchanges and disclosures that keep their view in their memo are recorded on
    the main paths, and those histories hold the memo upserts."""
    names = {path.name.split(".")[0] for path in HISTORIES}
    for path in (
        "consent-covers", "override-approved", "override-rejected", "declined",
        "red-share-first", "urgency-changed", "consent-withdrawn-after-delivery", "two-holders",
        "delivery-failing", "withdrawn-awaiting_acknowledgement", "escalation-holder_responds",
        "disclosure-encompass-acknowledged", "disclosure-concern-approved", "disclosure-not-made",
    ):  # fmt: skip
        assert f"view-in-memo-{path}" in names, f"no view-in-memo history for {path}"
    for recorded in (CORPUS / "view-in-memo-consent-covers.case.json",
                 CORPUS / "view-in-memo-consent-covers.exchange-1.json"):  # fmt: skip
        events = json.loads(recorded.read_text())["events"]
        kinds = [event["eventType"] for event in events]
        assert "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED" in kinds, recorded.name


RUNNERS = {"shipped": workflow_runner, "strict": strict_runner}
"""The hub's runner, and Temporal's stock sandbox with nothing of SafeShare's passed through:
a recorded path that reaches the clock, randomness, I/O or a thread from workflow code fails
under the strict one, which the shipped runner (passing the workflow modules through for
speed) would not notice."""


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path, runner: str) -> None:
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(WORKFLOW_IDS[path.name], json.loads(text))
    replayer = Replayer(
        workflows=[SharingCase, HolderExchange, DisclosureCase, ConsentWithdrawalNotice],
        workflow_runner=RUNNERS[runner](),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} diverged: {result.replay_failure}"


def _patches(path: Path) -> set[str]:
    """The patch ids a recorded history's markers carry."""
    found = set()
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_patch":
            for payload in marker["details"]["patch-data"]["payloads"]:
                found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def test_the_corpus_replays_sealed_cases_disclosures_and_exchanges() -> None:
    """Cases and exchanges started under the seal check (before compact histories took it as
    applied), disclosures and consent-withdrawal notices started under theirs, are in the corpus (so replay covers the
    sealed branch) and some cases were recorded with a real gateway key in their gate result."""
    markers = {path.name: _patches(path) for path in HISTORIES}
    for patch, kind in (
        ("gateway-sealed-commands", ".case."),
        ("gateway-sealed-commands", ".exchange-"),
        ("gateway-sealed-disclosures", ".case."),
        ("gateway-sealed-notice", ".notice."),
    ):
        assert any(patch in found and kind in name for name, found in markers.items()), patch
    keyed = [
        path for path in HISTORIES
        if path.name.startswith("keyed-") and ".case." in path.name
    ]  # fmt: skip
    assert keyed, "no case recorded with a gateway key"
