"""Verify an export: its signature, every digest, the file set, and each history's integrity.

Every finding has a kind that names the tampering (``bytes-altered``, ``event-deleted``,
``events-reordered``, ``event-inserted``, ``truncated``, ``history-swapped``, ``file-added``,
``file-removed``, ``file-renamed``, ``manifest-edited``, ``wrong-key``...). An untouched export
has no finding at all: every check is exact, none is a heuristic that could raise a false alarm.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from safeshare.audit.export import FORMAT, MANIFEST, SIGNATURE
from safeshare.audit.histories import (
    HOLDER_EXCHANGE,
    STARTED,
    HistoryFacts,
    HistoryFileError,
    child_executions,
    event_id,
    parse_history,
)
from safeshare.audit.signing import Signature, SigningError, key_id

# Attributes through which an event points back at an earlier one, and the type suffix the
# event pointed at has (ActivityTaskCompleted.scheduledEventId → ActivityTaskScheduled...).
_BACK_REFERENCES = {
    "scheduledEventId": "_SCHEDULED",
    "startedEventId": "",  # the time-skipping test server points some at other events
    "initiatedEventId": "_INITIATED",
}


class Tampering(StrEnum):
    """The kinds of finding, each named for what was done to the export."""

    MANIFEST_MISSING = "manifest-missing"
    MANIFEST_MALFORMED = "manifest-malformed"
    SIGNATURE_MISSING = "signature-missing"
    SIGNATURE_MALFORMED = "signature-malformed"
    WRONG_KEY = "wrong-key"
    MANIFEST_EDITED = "manifest-edited"
    FILE_ADDED = "file-added"
    FILE_REMOVED = "file-removed"
    FILE_RENAMED = "file-renamed"
    BYTES_ALTERED = "bytes-altered"
    NOT_A_HISTORY = "not-a-history"
    TRUNCATED = "truncated"
    EVENT_DELETED = "event-deleted"
    EVENT_INSERTED = "event-inserted"
    EVENTS_REORDERED = "events-reordered"
    BAD_FIRST_EVENT = "bad-first-event"
    SEVERAL_WORKFLOWS = "several-workflows"
    HISTORY_SWAPPED = "history-swapped"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with an export."""

    kind: Tampering
    file: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.file}: {self.detail}"


@dataclass
class Verification:
    """The result of verifying an export."""

    folder: Path
    files_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing at all was found."""
        return not self.findings

    @property
    def kinds(self) -> set[Tampering]:
        """The kinds of tampering found."""
        return {finding.kind for finding in self.findings}

    def add(self, kind: Tampering, file: str, detail: str) -> None:
        """Record a finding."""
        self.findings.append(Finding(kind, file, detail))


def verify_export(folder: Path, public_key: Ed25519PublicKey) -> Verification:
    """Check everything about the export in ``folder`` that can be checked.

    Returns:
        The findings; ``ok`` is True only if there are none.
    """
    result = Verification(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        result.add(Tampering.MANIFEST_MISSING, MANIFEST, "there is no manifest: nothing to check")
        return result
    manifest_bytes = manifest_path.read_bytes()
    _check_signature(folder, manifest_bytes, public_key, result)
    entries = _manifest_entries(manifest_bytes, result)
    if entries is None:
        return result
    on_disk = {p.name for p in folder.iterdir()} - {MANIFEST, SIGNATURE}
    _check_file_set(folder, entries, on_disk, result)
    parsed: dict[str, list[dict[str, Any]]] = {}
    for name, entry in entries.items():
        if name in on_disk:
            events = _check_file(folder / name, entry, result)
            if events is not None:
                parsed[name] = events
    _check_children(entries, parsed, result)
    return result


def _check_signature(
    folder: Path, manifest_bytes: bytes, public_key: Ed25519PublicKey, result: Verification
) -> None:
    path = folder / SIGNATURE
    if not path.is_file():
        result.add(Tampering.SIGNATURE_MISSING, SIGNATURE, "the manifest is not signed")
        return
    try:
        signature = Signature.from_json(path.read_text())
    except (SigningError, UnicodeDecodeError) as err:
        result.add(Tampering.SIGNATURE_MALFORMED, SIGNATURE, str(err))
        return
    expected = key_id(public_key)
    if signature.key_id != expected:
        result.add(
            Tampering.WRONG_KEY,
            SIGNATURE,
            f"signed by key {signature.key_id}, not by the given public key {expected}",
        )
    elif not signature.valid_for(manifest_bytes, public_key):
        result.add(
            Tampering.MANIFEST_EDITED,
            MANIFEST,
            "the signature does not match the manifest's bytes: the manifest was changed",
        )


def _manifest_entries(
    manifest_bytes: bytes, result: Verification
) -> dict[str, dict[str, Any]] | None:
    try:
        manifest = json.loads(manifest_bytes)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown format {manifest.get('format')!r}")
        entries = {str(entry["name"]): entry for entry in manifest["files"]}
        if len(entries) != len(manifest["files"]):
            raise ValueError("a file is listed twice")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        result.add(Tampering.MANIFEST_MALFORMED, MANIFEST, f"unreadable manifest: {err}")
        return None
    return entries


def _check_file_set(
    folder: Path, entries: dict[str, dict[str, Any]], on_disk: set[str], result: Verification
) -> None:
    removed = {name: entries[name] for name in entries.keys() - on_disk}
    added = on_disk - entries.keys()
    for name in sorted(added):
        path = folder / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        original = next((n for n, e in removed.items() if e.get("sha256") == digest), None)
        if original is not None:
            del removed[original]
            result.add(Tampering.FILE_RENAMED, name, f"is {original} under another name")
        else:
            result.add(Tampering.FILE_ADDED, name, "is not in the manifest")
    for name in sorted(removed):
        result.add(Tampering.FILE_REMOVED, name, "is in the manifest but not in the folder")


def _check_file(
    path: Path, entry: dict[str, Any], result: Verification
) -> list[dict[str, Any]] | None:
    """Check one listed file; return its events if it parses."""
    result.files_checked += 1
    name = path.name
    content = path.read_bytes()
    altered = hashlib.sha256(content).hexdigest() != entry.get("sha256")
    if altered:
        result.add(Tampering.BYTES_ALTERED, name, "its bytes differ from the manifest's SHA-256")
    try:
        events = parse_history(content)
    except HistoryFileError as err:
        if len(content) < int(entry.get("size", 0)):
            result.add(
                Tampering.TRUNCATED, name, f"cut short: {len(content)} of {entry['size']} bytes"
            )
        else:
            result.add(Tampering.NOT_A_HISTORY, name, str(err))
        return None
    found = _check_events(name, events, result)
    facts = HistoryFacts.of(events)
    if _swapped(name, entry, facts, result):
        return events
    if not found and altered:
        _check_extent(name, entry, facts, result)
    return events


def _check_events(name: str, events: list[dict[str, Any]], result: Verification) -> bool:
    """The history's own consistency; True if anything was found."""
    found: dict[Tampering, str] = {}
    ids = [event_id(e) for e in events]
    if not events or None in ids:
        result.add(Tampering.NOT_A_HISTORY, name, "no events, or an event without an id")
        return True
    if ids[0] != 1:
        found.setdefault(Tampering.TRUNCATED, f"starts at event {ids[0]}, not 1")
    if events[0].get("eventType") != STARTED:
        found.setdefault(
            Tampering.BAD_FIRST_EVENT, "the first event is not WorkflowExecutionStarted"
        )
    if sum(e.get("eventType") == STARTED for e in events) > 1:
        found.setdefault(Tampering.SEVERAL_WORKFLOWS, "more than one WorkflowExecutionStarted")
    types = {event_id(e): str(e.get("eventType", "")) for e in events}
    for before, event in zip([None, *events], events, strict=False):
        this = event_id(event)
        assert this is not None
        if before is not None:
            last = event_id(before)
            assert last is not None
            if this == last:
                found.setdefault(Tampering.EVENT_INSERTED, f"event id {this} appears twice")
            elif this < last:
                found.setdefault(Tampering.EVENTS_REORDERED, f"event {this} comes after {last}")
            elif this > last + 1:
                found.setdefault(Tampering.EVENT_DELETED, f"events {last + 1}..{this - 1} missing")
        for attributes in event.values():
            if not isinstance(attributes, dict):
                continue
            for reference, suffix in _BACK_REFERENCES.items():
                target = attributes.get(reference)
                if target is None or not str(target).isdigit():
                    continue
                if int(target) >= this:
                    found.setdefault(
                        Tampering.EVENTS_REORDERED, f"event {this} refers to later event {target}"
                    )
                elif not types.get(int(target), "").endswith(suffix):
                    found.setdefault(
                        Tampering.EVENTS_REORDERED,
                        f"event {this} refers to event {target}, which is not its {suffix[1:]}",
                    )
    for kind, detail in found.items():
        result.add(kind, name, detail)
    return bool(found)


def _swapped(name: str, entry: dict[str, Any], facts: HistoryFacts, result: Verification) -> bool:
    """Whether the file holds another workflow's history than the manifest says."""
    workflow_id = str(entry.get("workflow_id", ""))
    reasons = []
    if name != f"{workflow_id}.json":
        reasons.append(f"the manifest lists it for workflow {workflow_id}")
    if facts.run_id and facts.run_id != entry.get("run_id"):
        reasons.append(f"its run is {facts.run_id}, the manifest's {entry.get('run_id')}")
    if facts.workflow_type != entry.get("workflow_type"):
        reasons.append(f"it is a {facts.workflow_type or '?'} history")
    if (
        facts.workflow_type == HOLDER_EXCHANGE
        and facts.parent_workflow_id != workflow_id.split(".")[0]
    ):
        reasons.append(f"its parent is {facts.parent_workflow_id}")
    if reasons:
        result.add(
            Tampering.HISTORY_SWAPPED, name, "another workflow's history: " + "; ".join(reasons)
        )
    return bool(reasons)


def _check_extent(
    name: str, entry: dict[str, Any], facts: HistoryFacts, result: Verification
) -> None:
    """Events renumbered to hide an edit: compare the extent with the manifest's."""
    count = int(entry.get("event_count", -1))
    if facts.event_count > count:
        result.add(
            Tampering.EVENT_INSERTED, name, f"{facts.event_count} events, the manifest {count}"
        )
    elif facts.event_count < count:
        if facts.last_event_type == entry.get("last_event_type"):
            result.add(
                Tampering.EVENT_DELETED, name, f"{facts.event_count} events, the manifest {count}"
            )
        else:
            result.add(Tampering.TRUNCATED, name, f"ends at event {facts.last_event_id} of {count}")


def _check_children(
    entries: dict[str, dict[str, Any]],
    parsed: dict[str, list[dict[str, Any]]],
    result: Verification,
) -> None:
    """Each case's exchanges in the export are the very runs the case started."""
    runs = {str(e.get("workflow_id")): str(e.get("run_id")) for e in entries.values()}
    for name, events in parsed.items():
        for workflow_id, run_id in child_executions(events):
            if workflow_id in runs and runs[workflow_id] != run_id:
                result.add(
                    Tampering.HISTORY_SWAPPED,
                    f"{workflow_id}.json",
                    f"{name} started run {run_id}, the export holds run {runs[workflow_id]}",
                )
