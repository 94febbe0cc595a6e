"""``safeshare archive status/verify/prove/purge`` on a SQLite archive, as an auditor runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safeshare.archive.proofs import sign_checkpoint
from safeshare.archive.url import open_archive
from safeshare.audit.signing import ensure_signing_key, load_private_key
from safeshare.cli import app
from tests.safeshare.archive.archive_support import a_record, archive

runner = CliRunner()


def _archive(tmp_path: Path, count: int = 3) -> tuple[str, Path, list[str]]:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    key_path = tmp_path / "archive-log.key"
    ensure_signing_key(key_path)
    store = open_archive(url)
    refs = []
    for _ in range(count):
        record = a_record()
        archive(store, record)
        refs.append(record.case_ref)
    sign_checkpoint(store, load_private_key(key_path))
    store.close()
    return url, key_path, refs


def test_status_verify_and_prove_on_an_untouched_archive(tmp_path: Path) -> None:
    url, key, refs = _archive(tmp_path)
    public = str(key.with_suffix(".pub"))

    status = runner.invoke(app, ["archive", "status", "--archive", url, "--json"])
    verified = runner.invoke(app, ["archive", "verify", "--archive", url, "--public-key", public])
    proof = runner.invoke(app, ["archive", "prove", refs[1], "--archive", url])

    assert status.exit_code == 0 and json.loads(status.stdout)["archived"] == 3
    assert json.loads(status.stdout)["checkpoint_size"] == 3
    assert verified.exit_code == 0, verified.output
    assert "verified 3 records" in verified.stdout
    assert proof.exit_code == 0 and json.loads(proof.stdout)["leaf_index"] == 1
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(proof.stdout)
    checked = runner.invoke(
        app, ["archive", "check-proof", str(proof_file), "--public-key", public]
    )
    assert checked.exit_code == 0, checked.output


def test_verify_names_a_finding_and_exits_1(tmp_path: Path) -> None:
    url, key, _ = _archive(tmp_path)
    store = open_archive(url)
    with store._transaction() as cursor:  # type: ignore[attr-defined]
        cursor.execute("UPDATE records SET urgency = 'GREEN'")
    store.close()

    result = runner.invoke(
        app, ["archive", "verify", "--archive", url, "--public-key", str(key.with_suffix(".pub"))]
    )

    assert result.exit_code == 1
    assert "index-changed" in result.stdout and "urgency" in result.stdout


def test_purge_refuses_cases_inside_retention_and_records_a_tombstone_past_it(
    tmp_path: Path,
) -> None:
    url, key, _ = _archive(tmp_path)  # closed 2026-11-30: inside any retention
    inside = runner.invoke(app, [
        "archive", "purge", "--closed-before", "2026-12-01", "--by", "auditor-1",
        "--reason", "schedule 4.2", "--signing-key", str(key), "--archive", url,
    ])  # fmt: skip
    registry = tmp_path / "registry.toml"
    source = (Path(__file__).parents[3] / "partnership" / "registry.toml").read_text()
    registry.write_text(
        source.replace("records_retention_days = 9131", "records_retention_days = 1")
    )
    past = runner.invoke(app, [
        "archive", "purge", "--closed-before", "2026-12-01", "--by", "auditor-1",
        "--reason", "schedule 4.2", "--signing-key", str(key), "--archive", url,
        "--registry", str(registry),
    ])  # fmt: skip
    verified = runner.invoke(
        app, ["archive", "verify", "--archive", url, "--public-key", str(key.with_suffix(".pub"))]
    )

    assert inside.exit_code == 2 and "inside the 9131-day retention" in inside.output
    assert past.exit_code == 0, past.output
    assert "purged 3 records" in past.stdout
    assert verified.exit_code == 0
    assert verified.stdout.count("purged case-") == 3 and "by auditor-1" in verified.stdout


def test_without_archive_the_commands_read_the_folders_own_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/audit.md runs the commands in the folder `make run` ran in, with no --archive: they
    read its .safeshare/archive.db (not /.safeshare/archive.db at the filesystem's root)."""
    monkeypatch.delenv("SAFESHARE_ARCHIVE_URL", raising=False)
    (tmp_path / ".safeshare").mkdir()
    _archive(tmp_path / ".safeshare", count=2)
    monkeypatch.chdir(tmp_path)
    status = runner.invoke(app, ["archive", "status", "--json"])
    assert status.exit_code == 0, status.output
    found = json.loads(status.stdout)
    assert (found["archived"], found["checkpoint_size"]) == (2, 2)
    assert found["archive"] == f"sqlite:///{(tmp_path / '.safeshare' / 'archive.db').resolve()}"
