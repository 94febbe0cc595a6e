"""The auditors' and operators' ``safeshare archive`` commands over what is archived.

- ``status [--json]``: archived count, lag, latest checkpoint;
- ``checkpoint``: the latest signed checkpoint; ``list``: the records by close time;
- ``verify [--checkpoint FILE]``: every digest, the tree, consistency with an older
  checkpoint; names each finding; exit 1 on any;
- ``prove REF``: a case's inclusion proof as JSON; ``check-proof FILE``: check one offline;
- ``purge --closed-before DATE --by USER --reason TEXT``: remove cases past retention,
  leaving a tombstone leaf each.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.archive.archiver_cli import LAST_LAG, LAST_SWEEP
from safeshare.archive.cli_options import (
    DEFAULT_ARCHIVE_URL,
    ArchiveUrl,
    PublicKey,
    SigningKey,
    Vkey,
    fail,
    guard,
)


def _verifier(public_key: Path | None, vkey: str | None) -> Any:
    from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
    from safeshare.audit.signing import load_public_key

    if vkey:
        return VerifierKey.parse(vkey)
    if public_key is None:
        raise fail("give the archive's public key: --public-key FILE or --vkey TEXT")
    return VerifierKey(DEFAULT_ORIGIN, load_public_key(public_key))


def _open(url: str) -> Any:
    from safeshare.archive.url import open_archive

    return open_archive(url)


def archive_status(url: str) -> dict[str, Any]:
    """What ``status`` reports, as a dictionary."""
    store = _open(url)
    try:
        counts = store.counts()
        latest = store.latest_checkpoint()
        return {
            "archive": store.url.split("@")[-1] if "@" in store.url else store.url,
            "archived": counts.archived,
            "written_not_confirmed": counts.written,
            "purged": counts.purged,
            "log_size": counts.leaves,
            "lag_seconds": float(store.get_meta(LAST_LAG) or 0),
            "last_sweep": store.get_meta(LAST_SWEEP) or "",
            "checkpoint_size": latest[0] if latest else 0,
            "checkpoint": latest[1] if latest else "",
        }
    finally:
        store.close()


def status(
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Archived count, lag and the latest checkpoint."""
    report = guard(lambda: archive_status(archive_url))
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    typer.echo(f"archive          {report['archive']}")
    typer.echo(f"archived         {report['archived']} ({report['purged']} purged, "
               f"{report['written_not_confirmed']} written, not yet confirmed)")  # fmt: skip
    typer.echo(f"lag              {report['lag_seconds']:.0f} s (at {report['last_sweep'] or '-'})")
    typer.echo(f"log size         {report['log_size']}")
    typer.echo(f"checkpoint       {report['checkpoint_size']} leaves")
    if report["checkpoint"]:
        typer.echo(report["checkpoint"].rstrip("\n"))


def checkpoint(archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL) -> None:
    """Print the latest signed checkpoint exactly as signed (keep it: ``> FILE``)."""

    def latest() -> str:
        store = _open(archive_url)
        try:
            found = store.latest_checkpoint()
        finally:
            store.close()
        if found is None:
            raise fail("the archive has no checkpoint yet")
        return found[1]

    typer.echo(guard(latest), nl=False)


def list_command(
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    closed_since: Annotated[
        str | None, typer.Option(help="Closed at or after (YYYY-MM-DD, UTC).")
    ] = None,
) -> None:
    """The archived records, by close time: record id, status, close time, outcome."""

    def rows() -> list[tuple[str, Any, str]]:
        store = _open(archive_url)
        try:
            since = f"{closed_since}T00:00:00Z" if closed_since else None
            return store.index(closed_since=since)
        finally:
            store.close()

    for record_id, index, status in guard(rows):
        typer.echo(f"{record_id}  {status}  closed {index.closed_at}  {index.outcome or '-'}")


def verify(
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    public_key: PublicKey = None,
    vkey: Vkey = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="An older checkpoint you kept: the log must extend it.")
    ] = None,
) -> None:
    """Verify every digest, the tree and the checkpoints. Exit 1 on any finding."""
    from safeshare.archive.verify import verify_archive

    verifier = guard(lambda: _verifier(public_key, vkey))
    older = guard(lambda: checkpoint.read_text()) if checkpoint else None

    def check() -> Any:
        store = _open(archive_url)
        try:
            return verify_archive(store, verifier, older)
        finally:
            store.close()

    result = guard(check)
    for purged in result.purged:
        typer.echo(f"purged {purged.record_id}: tombstone leaf {purged.tombstone_leaf}, "
                   f"by {purged.by} at {purged.at}: {purged.reason}")  # fmt: skip
    for finding in result.findings:
        typer.echo(f"✗ {finding.kind}: {finding.subject}: {finding.detail}")
    if result.findings:
        typer.echo(f"{len(result.findings)} findings")
        raise typer.Exit(1)
    signed = result.checkpoint.size if result.checkpoint else 0
    consistent = " and extends the given checkpoint" if checkpoint else ""
    typer.echo(f"✓ verified {result.records_checked} records, {result.leaves} leaves; "
               f"checkpoint of {signed} verifies{consistent}"
               + (f"; {result.unsigned_leaves} leaves await the next checkpoint"
                  if result.unsigned_leaves else ""))  # fmt: skip


def prove(
    case_ref: Annotated[str, typer.Argument(help="The case reference (with or without 'case-').")],
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
) -> None:
    """Print the inclusion proof of a case in the latest checkpoint, as JSON."""
    from safeshare.archive.proofs import dumps, inclusion_proof
    from safeshare.audit.export import case_id

    def proof() -> str:
        record_id = case_id(case_ref)
        store = _open(archive_url)
        try:
            return dumps(inclusion_proof(store, record_id))
        finally:
            store.close()

    from safeshare.audit.export import ExportError

    try:
        typer.echo(guard(proof), nl=False)
    except ExportError as err:
        raise fail(err) from None


def check_proof(
    proof: Annotated[Path, typer.Argument(help="A proof from `safeshare archive prove`.")],
    public_key: PublicKey = None,
    vkey: Vkey = None,
) -> None:
    """Check an inclusion proof offline: the checkpoint's signature and the audit path."""
    from safeshare.archive.proofs import verify_inclusion_document

    verifier = guard(lambda: _verifier(public_key, vkey))
    document = guard(lambda: json.loads(proof.read_text()))
    checkpoint = guard(lambda: verify_inclusion_document(document, verifier))
    typer.echo(f"✓ {document['record_id']} is leaf {document['leaf_index']} of the log of "
               f"{checkpoint.size} signed at {checkpoint.time:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip


def retention_days_of(registry: Path) -> int | None:
    """The partnership's retention for closed cases (the registry's
    ``records_retention_days``)."""
    from partnership.registry_file import load_registry

    return load_registry(registry).records_retention_days


def purge(
    closed_before: Annotated[str, typer.Option(help="Purge cases closed before (YYYY-MM-DD).")],
    by: Annotated[str, typer.Option(help="Who authorised the purge (a user id).")],
    reason: Annotated[str, typer.Option(help="Why (the retention schedule's reference).")],
    signing_key: SigningKey,
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
) -> None:
    """Remove cases past the registry's retention, leaving a tombstone leaf for each."""
    from safeshare.archive.errors import RetentionError
    from safeshare.archive.proofs import sign_checkpoint
    from safeshare.archive.records import ARCHIVED
    from safeshare.audit.signing import load_private_key

    try:
        before = dt.datetime.fromisoformat(closed_before).replace(tzinfo=dt.UTC)
    except ValueError:
        raise fail(f"--closed-before {closed_before!r} is not a date (YYYY-MM-DD)") from None
    if not by.strip() or not reason.strip():
        raise fail("--by and --reason must say who and why")

    def purging() -> tuple[int, int]:
        days = retention_days_of(registry)
        if days is None:
            raise RetentionError(f"no records_retention_days in {registry}: nothing is purged")
        limit = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        if before > limit:
            raise RetentionError(
                f"cases closed before {before:%Y-%m-%d} are inside the {days}-day retention "
                f"(the earliest allowed is {limit:%Y-%m-%d})"
            )
        key = load_private_key(signing_key)
        store = _open(archive_url)
        try:
            cutoff = before.strftime("%Y-%m-%dT%H:%M:%SZ")
            records = store.index(closed_before=cutoff, status=ARCHIVED)
            now = dt.datetime.now(dt.UTC)
            for record_id, _, _ in records:
                store.purge(record_id, by, reason, now)
            signed = sign_checkpoint(store, key)
            return len(records), signed[0] if signed else 0
        finally:
            store.close()

    count, size = guard(purging)
    typer.echo(f"purged {count} records closed before {before:%Y-%m-%d}; checkpoint of {size}")
