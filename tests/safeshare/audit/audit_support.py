"""Helpers for the audit tests: the committed replay corpus as exported histories."""

from __future__ import annotations

import json
from pathlib import Path

from safeshare.audit.export import ExportedHistory
from safeshare.audit.histories import HistoryFacts, parse_history

CORPUS = Path(__file__).resolve().parents[2] / "histories"


def corpus_histories() -> list[ExportedHistory]:
    """Every history of tests/histories/, with its workflow id and run id.

    An export holds one history per workflow id; where the corpus recorded the same case (its id
    derives from the agency and its own reference) on several code paths, the first is taken.
    """
    ids: dict[str, str] = json.loads((CORPUS / "workflow-ids.json").read_text())
    histories = []
    seen: set[str] = set()
    for name, workflow_id in ids.items():
        if workflow_id in seen:
            continue
        seen.add(workflow_id)
        content = (CORPUS / name).read_bytes()
        run_id = HistoryFacts.of(parse_history(content)).run_id
        histories.append(ExportedHistory(workflow_id, run_id, content))
    return histories


def corpus_case_count() -> int:
    """How many cases the corpus holds: its SharingCase histories (exchanges have a dotted id)."""
    return sum("." not in history.workflow_id for history in corpus_histories())
