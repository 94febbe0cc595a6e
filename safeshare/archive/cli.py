"""``safeshare archive``: run the archiver, and the auditors' and operators' archive commands.

- ``run``: the archiver (a loop; the dev stack starts one);
- ``status [--json]``: archived count, lag, latest checkpoint;
- ``verify [--checkpoint FILE]``: every digest, the tree, consistency with an older
  checkpoint; names each finding; exit 1 on any;
- ``prove REF``: a case's inclusion proof as JSON;
- ``purge --closed-before DATE --by USER --reason TEXT``: remove cases past retention,
  leaving a tombstone leaf each.

Known failures print one readable line and exit 2.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from partnership.registry import DEFAULT_REGISTRY_PATH
from safeshare.temporal_options import NO_FLAGS, TemporalFlags, temporal_options

archive_app = typer.Typer(
    help="The case archive: closed cases kept beyond Temporal's retention, with a signed log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
# A path relative to the folder the command runs in (sqlite:/// would make it absolute).
DEFAULT_ARCHIVE_URL = ".safeshare/archive.db"
LAST_SWEEP = "archiver.last_sweep"
LAST_LAG = "archiver.lag_seconds"

ArchiveUrl = Annotated[
    str,
    typer.Option(
        "--archive",
        envvar="SAFESHARE_ARCHIVE_URL",
        help="The archive: sqlite:///PATH or postgresql://USER@HOST:PORT/DB.",
    ),
]
SigningKey = Annotated[
    Path,
    typer.Option(
        envvar="SAFESHARE_ARCHIVE_SIGNING_KEY",
        help="Ed25519 private key that signs checkpoints (PEM, 0600; made if missing).",
    ),
]
PublicKey = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_ARCHIVE_PUBLIC_KEY",
        help="The archive's public key (PEM), or give --vkey.",
    ),
]
Vkey = Annotated[
    str | None,
    typer.Option(envvar="SAFESHARE_ARCHIVE_VKEY", help="The archive's verifier key (name+id+key)."),
]


def _fail(message: object) -> typer.Exit:
    typer.echo(f"safeshare: error: {message}", err=True)
    return typer.Exit(2)


def _guard(action: Callable[[], T]) -> T:
    """Run an action; known failures become one line on stderr and exit code 2."""
    from partnership.registry import RegistryError
    from safeshare.archive.checkpoint import CheckpointError
    from safeshare.archive.errors import ArchiveError
    from safeshare.audit.signing import SigningError
    from safeshare.temporal import TemporalConfigError, TemporalUnavailable

    try:
        return action()
    except (
        ArchiveError, CheckpointError, SigningError, TemporalUnavailable, TemporalConfigError,
        RegistryError, OSError, ValueError,
    ) as err:  # fmt: skip
        raise _fail(err) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _verifier(public_key: Path | None, vkey: str | None) -> Any:
    from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
    from safeshare.audit.signing import load_public_key

    if vkey:
        return VerifierKey.parse(vkey)
    if public_key is None:
        raise _fail("give the archive's public key: --public-key FILE or --vkey TEXT")
    return VerifierKey(DEFAULT_ORIGIN, load_public_key(public_key))


@archive_app.command("run")
@temporal_options
def run_command(
    signing_key: SigningKey,
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    interval: Annotated[float, typer.Option(help="Seconds between sweeps.")] = 15.0,
    retention_days: Annotated[
        float, typer.Option(help="The namespace's retention: the lag alert is a share of it.")
    ] = 7.0,
    lag_alert_fraction: Annotated[float, typer.Option(help="Alert past this share.")] = 0.5,
    metrics_port: Annotated[
        int | None, typer.Option(envvar="SAFESHARE_METRICS_PORT", help="Prometheus port.")
    ] = None,
    temporal: TemporalFlags = NO_FLAGS,
    log_format: Annotated[str | None, typer.Option(envvar="SAFESHARE_LOG_FORMAT")] = None,
) -> None:
    """Run the archiver: archive closed cases, read them back, sign checkpoints."""
    from safeshare.archive.archiver import ArchiverSettings, protocol_version_of
    from safeshare.log import configure_logging

    configure_logging(json=None if log_format is None else log_format == "json",
                      component="archiver")  # fmt: skip
    metrics = None if metrics_port is None else f"127.0.0.1:{metrics_port}"
    connection = _guard(lambda: temporal.settings(metrics_address=metrics))
    archiver = ArchiverSettings(
        interval=interval,
        retention=dt.timedelta(days=retention_days),
        lag_alert_fraction=lag_alert_fraction,
        protocol_version=protocol_version_of(registry),
    )
    _guard(lambda: asyncio.run(run_archiver(connection, archive_url, signing_key, archiver)))


async def run_archiver(temporal: Any, archive_url: str, signing_key: Path, settings: Any) -> None:
    """The archiver's process: connect, sweep until SIGINT or SIGTERM."""
    import structlog

    from safeshare.archive.archiver import Archiver, ArchiverMetrics
    from safeshare.archive.url import open_archive
    from safeshare.audit.signing import ensure_signing_key, load_private_key
    from safeshare.metrics import runtime_for
    from safeshare.shutdown import wait_for_stop_signal
    from safeshare.temporal import connect_temporal_waiting

    log = structlog.get_logger("safeshare.archive")
    ensure_signing_key(signing_key)
    key = load_private_key(signing_key)
    client = await connect_temporal_waiting(temporal)
    meter = runtime_for(temporal.metrics_address).metric_meter if temporal.metrics_address else None
    store = await asyncio.to_thread(_open_with_retry, open_archive, archive_url)
    archiver = Archiver(client, store, key, settings, ArchiverMetrics(meter))
    stop = asyncio.Event()

    async def stopper() -> None:
        await wait_for_stop_signal()
        stop.set()

    waiting = asyncio.ensure_future(stopper())
    log.info("archiver_started", count=int(settings.retention.total_seconds() // 86400))
    try:
        while not stop.is_set():
            result = await archiver.sweep()
            if not result.unavailable:
                await asyncio.to_thread(_record_sweep, store, result.lag.total_seconds())
            try:
                await asyncio.wait_for(stop.wait(), settings.interval)
            except TimeoutError:
                continue
    finally:
        waiting.cancel()
        store.close()
        log.info("archiver_stopped")


def _open_with_retry(open_archive: Callable[[str], Any], url: str) -> Any:
    """Open the archive, waiting for its database to come up (a server starting with us)."""
    import time

    from safeshare.archive.errors import ArchiveUnavailable

    for _ in range(60):
        try:
            return open_archive(url)
        except ArchiveUnavailable:
            time.sleep(1.0)
    return open_archive(url)


def _record_sweep(store: Any, lag_seconds: float) -> None:
    from safeshare.archive.errors import ArchiveUnavailable

    try:
        store.set_meta(LAST_SWEEP, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        store.set_meta(LAST_LAG, f"{lag_seconds:.0f}")
    except ArchiveUnavailable:
        pass


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


@archive_app.command()
def status(
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Archived count, lag and the latest checkpoint."""
    report = _guard(lambda: archive_status(archive_url))
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


@archive_app.command()
def checkpoint(archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL) -> None:
    """Print the latest signed checkpoint exactly as signed (keep it: ``> FILE``)."""

    def latest() -> str:
        store = _open(archive_url)
        try:
            found = store.latest_checkpoint()
        finally:
            store.close()
        if found is None:
            raise _fail("the archive has no checkpoint yet")
        return found[1]

    typer.echo(_guard(latest), nl=False)


@archive_app.command("list")
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

    for record_id, index, status in _guard(rows):
        typer.echo(f"{record_id}  {status}  closed {index.closed_at}  {index.outcome or '-'}")


@archive_app.command()
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

    verifier = _guard(lambda: _verifier(public_key, vkey))
    older = _guard(lambda: checkpoint.read_text()) if checkpoint else None

    def check() -> Any:
        store = _open(archive_url)
        try:
            return verify_archive(store, verifier, older)
        finally:
            store.close()

    result = _guard(check)
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


@archive_app.command()
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
        typer.echo(_guard(proof), nl=False)
    except ExportError as err:
        raise _fail(err) from None


@archive_app.command("check-proof")
def check_proof(
    proof: Annotated[Path, typer.Argument(help="A proof from `safeshare archive prove`.")],
    public_key: PublicKey = None,
    vkey: Vkey = None,
) -> None:
    """Check an inclusion proof offline: the checkpoint's signature and the audit path."""
    from safeshare.archive.proofs import verify_inclusion_document

    verifier = _guard(lambda: _verifier(public_key, vkey))
    document = _guard(lambda: json.loads(proof.read_text()))
    checkpoint = _guard(lambda: verify_inclusion_document(document, verifier))
    typer.echo(f"✓ {document['record_id']} is leaf {document['leaf_index']} of the log of "
               f"{checkpoint.size} signed at {checkpoint.time:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip


def retention_days_of(registry: Path) -> int | None:
    """The partnership's retention for closed cases (the registry's
    ``records_retention_days``)."""
    from partnership.registry import load_registry

    return load_registry(registry).records_retention_days


@archive_app.command()
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
        raise _fail(f"--closed-before {closed_before!r} is not a date (YYYY-MM-DD)") from None
    if not by.strip() or not reason.strip():
        raise _fail("--by and --reason must say who and why")

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

    count, size = _guard(purging)
    typer.echo(f"purged {count} records closed before {before:%Y-%m-%d}; checkpoint of {size}")
