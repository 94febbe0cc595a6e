"""``safeshare audit verify``: every kind of tampering is detected and named; an untouched
export raises no alarm. The export is of the committed replay corpus (every path)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from safeshare.audit.export import MANIFEST, SIGNATURE
from safeshare.audit.signing import Signature, ensure_signing_key, load_public_key, public_key_path
from safeshare.audit.verify import Tampering, Verification, verify_export
from safeshare.cli import app
from tests.safeshare.audit.audit_support import corpus_histories

CASE = "case-p6tq6ref4wdue55k7ujm"  # override approved: a case with one exchange
EXCHANGE = f"{CASE}.oakfield-primary.json"
OTHER_EXCHANGE = "case-vqyocqkybcedxddrt6ot.oakfield-primary.json"  # another case's


def verify(folder: Path, public_key: Path) -> Verification:
    return verify_export(folder, load_public_key(public_key))


def edit_events(path: Path, change: Callable[[list[dict[str, Any]]], object]) -> None:
    document = json.loads(path.read_bytes())
    change(document["events"])
    path.write_text(json.dumps(document, indent=1) + "\n")


def test_an_untouched_export_of_every_path_verifies(corpus_export: Path, public_key: Path) -> None:
    result = verify(corpus_export, public_key)
    assert result.findings == []
    assert result.files_checked == len(corpus_histories())


def test_the_cli_says_verified_and_exits_0(corpus_export: Path, public_key: Path) -> None:
    run = CliRunner().invoke(app, ["audit", "verify", str(corpus_export),
                                   "--public-key", str(public_key)])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert f"verified {len(corpus_histories())} histories" in run.output


def flip_a_byte(folder: Path) -> None:
    path = folder / EXCHANGE
    content = bytearray(path.read_bytes())
    at = content.index(b'"data": "') + len(b'"data": "') + 10  # inside a payload's base64
    content[at] = ord("A") if content[at] != ord("A") else ord("B")
    path.write_bytes(bytes(content))


def delete_an_event(folder: Path) -> None:
    edit_events(folder / EXCHANGE, lambda events: events.pop(10))


def reorder_events(folder: Path) -> None:
    def swap(events: list[dict[str, Any]]) -> None:
        events[10], events[11] = events[11], events[10]

    edit_events(folder / EXCHANGE, swap)


def reorder_and_renumber(folder: Path) -> None:
    def swap(events: list[dict[str, Any]]) -> None:
        events[10], events[11] = events[11], events[10]
        events[10]["eventId"], events[11]["eventId"] = events[11]["eventId"], events[10]["eventId"]

    edit_events(folder / EXCHANGE, swap)


def insert_an_event(folder: Path) -> None:
    edit_events(folder / EXCHANGE, lambda events: events.insert(12, dict(events[12])))


def insert_and_renumber(folder: Path) -> None:
    def insert(events: list[dict[str, Any]]) -> None:
        events.append(dict(events[-1]))
        events[-1]["eventId"] = str(len(events))
        events[-2]["eventType"] = "EVENT_TYPE_TIMER_STARTED"

    edit_events(folder / EXCHANGE, insert)


def truncate_events(folder: Path) -> None:
    edit_events(folder / EXCHANGE, lambda events: events.__delitem__(slice(-5, None)))


def truncate_bytes(folder: Path) -> None:
    path = folder / EXCHANGE
    path.write_bytes(path.read_bytes()[:5000])


def swap_in_another_case(folder: Path) -> None:
    (folder / EXCHANGE).write_bytes((folder / OTHER_EXCHANGE).read_bytes())


def edit_the_manifest(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_bytes())
    manifest["files"][0]["event_count"] += 1
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def alter_a_file_and_its_digest(folder: Path) -> None:
    """The attacker changes a history and writes its new digest into the manifest."""
    flip_a_byte(folder)
    manifest = json.loads((folder / MANIFEST).read_bytes())
    for entry in manifest["files"]:
        if entry["name"] == EXCHANGE:
            entry["sha256"] = hashlib.sha256((folder / EXCHANGE).read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def re_sign_with_another_key(folder: Path) -> None:
    edit_the_manifest(folder)
    signature = Signature.make((folder / MANIFEST).read_bytes(), Ed25519PrivateKey.generate())
    (folder / SIGNATURE).write_text(signature.to_json())


def add_a_file(folder: Path) -> None:
    (folder / "case-aaaaaaaaaaaaaaaaaaaa.json").write_bytes((folder / EXCHANGE).read_bytes()[:-2])


def remove_a_file(folder: Path) -> None:
    (folder / EXCHANGE).unlink()


def rename_a_file(folder: Path) -> None:
    (folder / EXCHANGE).rename(folder / "renamed.json")


def remove_the_signature(folder: Path) -> None:
    (folder / SIGNATURE).unlink()


TAMPERING = {
    "byte flip": (flip_a_byte, Tampering.BYTES_ALTERED),
    "event deleted": (delete_an_event, Tampering.EVENT_DELETED),
    "events reordered": (reorder_events, Tampering.EVENTS_REORDERED),
    "events reordered and renumbered": (reorder_and_renumber, Tampering.EVENTS_REORDERED),
    "event inserted": (insert_an_event, Tampering.EVENT_INSERTED),
    "event inserted and renumbered": (insert_and_renumber, Tampering.EVENT_INSERTED),
    "truncated (events)": (truncate_events, Tampering.TRUNCATED),
    "truncated (bytes)": (truncate_bytes, Tampering.TRUNCATED),
    "history swapped from another case": (swap_in_another_case, Tampering.HISTORY_SWAPPED),
    "manifest edited": (edit_the_manifest, Tampering.MANIFEST_EDITED),
    "file and digest edited": (alter_a_file_and_its_digest, Tampering.MANIFEST_EDITED),
    "re-signed with another key": (re_sign_with_another_key, Tampering.WRONG_KEY),
    "file added": (add_a_file, Tampering.FILE_ADDED),
    "file removed": (remove_a_file, Tampering.FILE_REMOVED),
    "file renamed": (rename_a_file, Tampering.FILE_RENAMED),
    "signature removed": (remove_the_signature, Tampering.SIGNATURE_MISSING),
}


@pytest.mark.parametrize("name", TAMPERING)
def test_each_kind_of_tampering_is_detected_and_named(
    name: str, corpus_export: Path, public_key: Path
) -> None:
    tamper, expected = TAMPERING[name]
    tamper(corpus_export)
    result = verify(corpus_export, public_key)
    assert expected in result.kinds, [str(f) for f in result.findings]
    # Only the tampered file (or the manifest) is named: no collateral false alarms.
    assert {f.file for f in result.findings} <= {
        EXCHANGE, MANIFEST, SIGNATURE, "renamed.json", "case-aaaaaaaaaaaaaaaaaaaa.json",
        f"{CASE}.json",
    }  # fmt: skip


def test_the_cli_prints_one_line_per_finding_and_exits_1(
    corpus_export: Path, public_key: Path
) -> None:
    delete_an_event(corpus_export)
    run = CliRunner().invoke(app, ["audit", "verify", str(corpus_export),
                                   "--public-key", str(public_key)])  # fmt: skip
    assert run.exit_code == 1
    lines = [line for line in run.output.splitlines() if line.startswith("✗")]
    assert any(line.startswith("✗ event-deleted") and EXCHANGE in line for line in lines)
    assert any(line.startswith("✗ bytes-altered") for line in lines)


def test_the_wrong_public_key_is_named(corpus_export: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.key"
    ensure_signing_key(stranger)
    result = verify(corpus_export, public_key_path(stranger))
    assert [f.kind for f in result.findings] == [Tampering.WRONG_KEY]


def test_a_missing_public_key_is_one_line_not_a_traceback(corpus_export: Path) -> None:
    run = CliRunner().invoke(app, ["audit", "verify", str(corpus_export),
                                   "--public-key", "/nonexistent.pub"])  # fmt: skip
    assert run.exit_code == 2
    assert run.output.strip().startswith("safeshare: error: cannot read public key")
