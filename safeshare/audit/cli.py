"""``safeshare audit``: export, verify, replay and report case histories.

Known failures print one readable line and exit 2; ``verify`` exits 1 on any finding and
``replay`` exits 1 when any history diverges. The options the commands share are in
``options.py``, how they fail in ``exits.py``, what they read through in ``connections.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from temporalio.converter import DataConverter

from safeshare.access.events import Action
from safeshare.access.options import (
    DEFAULT_ACCESS_LOG,
    DEFAULT_ACCESS_LOG_KEY,
    AccessLogKey,
    AccessLogPath,
    Operator,
    PurposeOption,
)
from safeshare.audit.connections import CaseArchive, connect, converter_for
from safeshare.audit.exits import fail, refuse, run
from safeshare.audit.options import (
    ArchivePublicKey,
    ArchiveUrl,
    Cases,
    ExportPublicKey,
    Query,
    Unverified,
    selection,
)
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options

if TYPE_CHECKING:
    from safeshare.audit.replay import ReplayOutcome

audit_app = typer.Typer(
    name="audit",
    help="Auditors' tools: export, verify, replay and report case histories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@audit_app.command()
@temporal_options
def export(
    out: Annotated[Path, typer.Option(help="A new (or empty) folder to export into.")],
    signing_key: Annotated[
        Path,
        typer.Option(envvar="SAFESHARE_AUDIT_SIGNING_KEY", help="Ed25519 private key (PEM, 0600)."),
    ],
    refs: Annotated[list[str] | None, typer.Argument(help="Case refs to export.")] = None,
    query: Query = None,
    closed_since: Annotated[
        dt.datetime | None, typer.Option(help="Cases closed at or after (UTC).")
    ] = None,
    closed_until: Annotated[
        dt.datetime | None, typer.Option(help="Cases closed before (UTC).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="History fetches in flight at most.")] = 20,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    temporal: TemporalFlags = NO_FLAGS,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    operator: Operator = None,
    purpose: PurposeOption = "audit",
    archive: ArchiveUrl = None,
) -> None:
    """Export cases (and their exchanges) as stored, with a manifest signed with Ed25519;
    archived cases are exported from the archive (Temporal may have deleted them). Each case
    exported is recorded in its access history."""
    from safeshare.access.record import record_reads
    from safeshare.audit.export import export_cases
    from safeshare.audit.signing import load_private_key

    async def main() -> None:
        key = load_private_key(signing_key)
        client = await connect(temporal)
        kept = CaseArchive(archive)
        try:
            result = await export_cases(
                client, out, key, refs=refs or [],
                query=selection(query, closed_since, closed_until), concurrency=concurrency,
                show_progress=progress, archived=kept.histories(client),
            )  # fmt: skip
        finally:
            kept.close()
        record_reads(access_log, access_log_key, operator, purpose, Action.EXPORT, result.case_ids)
        typer.echo(f"exported {result.cases} cases ({result.files} histories) to {result.folder}")

    run(main())


@audit_app.command()
def verify(
    folder: Annotated[Path, typer.Argument(help="The export folder.")],
    public_key: Annotated[
        Path,
        typer.Option(envvar="SAFESHARE_AUDIT_PUBLIC_KEY", help="The exporter's public key (PEM)."),
    ],
) -> None:
    """Verify an export: signature, digests, file set and each history. Exit 1 on any finding."""
    from safeshare.audit.signing import SigningError, load_public_key
    from safeshare.audit.verify import verify_export

    try:
        result = verify_export(folder, load_public_key(public_key))
    except (SigningError, OSError) as err:
        raise fail(err) from None
    console = Console(highlight=False)
    for finding in result.findings:
        console.print(f"[red]✗ {finding.kind}[/red]: {finding.file}: {finding.detail}")
    if not result.ok:
        console.print(f"[red]{len(result.findings)} findings[/red] in {folder}")
        raise typer.Exit(1)
    console.print(f"[green]✓ verified[/green] {result.files_checked} histories in {folder}")


@audit_app.command()
@temporal_options
def replay(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Export folders or history files.")
    ] = None,
    cases: Cases = None,
    query: Query = None,
    keys_file: KeysFile = None,
    public_key: ExportPublicKey = None,
    archive: ArchiveUrl = None,
    archive_public_key: ArchivePublicKey = None,
    unverified: Unverified = False,
    temporal: TemporalFlags = NO_FLAGS,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    operator: Operator = None,
    purpose: PurposeOption = "audit",
) -> None:
    """Replay histories through the current workflow code (verified first). Exit 1 if any
    diverged, or if the evidence does not verify. With the keys, each case replayed is
    recorded in its access history (it was decrypted)."""
    from safeshare.access.record import record_reads
    from safeshare.audit.evidence import Evidence, check_paths
    from safeshare.audit.replay import as_replayable, replay_histories
    from safeshare.audit.sources import histories_from_path, histories_from_server

    converter = converter_for(keys_file)
    evidence = Evidence()

    async def main() -> list[ReplayOutcome]:
        histories = [h for path in paths or [] for h in histories_from_path(path)]
        check_paths(paths or [], public_key, evidence)
        if cases or query:
            client = await connect(temporal)
            kept = CaseArchive(archive)
            try:
                histories += await histories_from_server(
                    client, cases or [], selection(query, None, None),
                    archived=kept.histories(client),
                )  # fmt: skip
                kept.check(archive_public_key, evidence)
            finally:
                kept.close()
        if not histories:
            raise fail("nothing to replay: give export folders, files, --case or --query")
        if evidence.findings and not unverified:
            raise refuse(evidence, "replay")
        if converter is not DataConverter.default:
            record_reads(
                access_log, access_log_key, operator, purpose, Action.REPLAY,
                [h.workflow_id for h in histories],
            )  # fmt: skip
        return await replay_histories(as_replayable(histories), converter)

    outcomes = run(main())
    console = Console(highlight=False)
    banner = evidence.banner(unverified)
    if banner:
        console.print(f"[yellow]{banner}[/yellow]")
    mark = "UNVERIFIED " if evidence.findings or unverified else ""
    diverged = 0
    for outcome in outcomes:
        source = outcome.source
        if outcome.replayed:
            console.print(f"{mark}[green]replayed[/green] {source}")
        else:
            diverged += 1
            at = f" at event {outcome.event_id}" if outcome.event_id else ""
            console.print(f"{mark}[red]DIVERGED[/red] {source}{at}: {outcome.failure}")
    if diverged:
        raise typer.Exit(1)


@audit_app.command()
@temporal_options
def report(
    source: Annotated[
        Path | None, typer.Argument(help="An export folder (or omit and use --case/--query).")
    ] = None,
    cases: Cases = None,
    query: Query = None,
    out: Annotated[Path, typer.Option(help="Folder to write the reports into.")] = Path(
        "audit-report"
    ),
    summary: Annotated[
        bool, typer.Option(help="Also write a summary table over every case read.")
    ] = False,
    keys_file: KeysFile = None,
    temporal: TemporalFlags = NO_FLAGS,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    operator: Operator = None,
    purpose: PurposeOption = "audit",
    public_key: ExportPublicKey = None,
    archive: ArchiveUrl = None,
    archive_public_key: ArchivePublicKey = None,
    unverified: Unverified = False,
) -> None:
    """Write each case's decision record (Markdown and HTML), decrypting with the keys; the
    evidence is verified first, and a finding refuses (exit 1) unless --unverified. Each case
    reported is recorded in its access history, and its HTML report shows that history."""
    from safeshare.access.log import AccessLog
    from safeshare.access.record import record_reads
    from safeshare.audit.evidence import Evidence, check_paths
    from safeshare.audit.export import case_id
    from safeshare.audit.render import case_html, case_markdown, summary_html, summary_markdown
    from safeshare.audit.report import case_report, group_by_case, has_case_history
    from safeshare.audit.sources import histories_from_path, histories_from_server

    converter = converter_for(keys_file)
    evidence = Evidence()

    async def main() -> None:
        if source is not None:
            histories = histories_from_path(source)
            check_paths([source], public_key, evidence)
            if cases:
                wanted = {case_id(c) for c in cases}
                histories = [h for h in histories if h.workflow_id.split(".")[0] in wanted]
        elif cases or query:
            client = await connect(temporal)
            kept = CaseArchive(archive)
            try:
                histories = await histories_from_server(
                    client, cases or [], selection(query, None, None),
                    archived=kept.histories(client),
                )  # fmt: skip
                kept.check(archive_public_key, evidence)
            finally:
                kept.close()
        else:
            raise fail("nothing to report: give an export folder, --case or --query")
        if evidence.findings and not unverified:
            raise refuse(evidence, "report")
        banner = evidence.banner(unverified)
        groups = group_by_case(histories)
        # A consent-withdrawal notice outlives its case in Temporal (it can start after the case
        # was deleted), so an export may hold a notice without its case: say so, report the rest.
        caseless = sorted(ref for ref, group in groups.items() if not has_case_history(group))
        if caseless:
            typer.echo(
                f"skipped {len(caseless)} with no SharingCase or DisclosureCase history among "
                f"the files (a notice without its case): {', '.join(caseless)}",
                err=True,
            )
        reports = [
            await case_report(group, converter)
            for ref, group in groups.items()
            if ref not in caseless
        ]
        if not reports:
            raise fail("no case found")
        if converter is not DataConverter.default:
            record_reads(
                access_log, access_log_key, operator, purpose, Action.REPORT,
                [case.case_ref for case in reports],
            )  # fmt: skip
        history = AccessLog(access_log) if access_log.exists() else None
        out.mkdir(parents=True, exist_ok=True)
        for case in reports:
            access = history.events(case.case_ref) if history else []
            (out / f"case-{case.case_ref}.md").write_text(case_markdown(case, banner))
            (out / f"case-{case.case_ref}.html").write_text(case_html(case, access, banner))
        if summary:
            (out / "summary.md").write_text(summary_markdown(reports, banner))
            (out / "summary.html").write_text(summary_html(reports, banner))
        typer.echo(
            f"wrote {len(reports)} case reports{' and a summary' if summary else ''} to {out}"
        )

    run(main())


@audit_app.command("access")
def access_history(
    case_ref: Annotated[str, typer.Argument(help="The case reference (without 'case-').")],
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    verifier_key: Annotated[
        Path | None,
        typer.Option(
            envvar="SAFESHARE_ACCESS_LOG_PUBLIC_KEY",
            help="The access log's public key (PEM); default: the .pub beside "
            "--access-log-key. The log is verified before anything is shown.",
        ),
    ] = None,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A checkpoint note you kept earlier: the log must still extend it."),
    ] = None,
) -> None:
    """A case's access history: every read and refused attempt, verified against the log's
    signed checkpoints first (exit 1 if the log fails verification)."""
    from rich.table import Table

    from safeshare.access.log import KEY_NAME, AccessLog, AccessLogError, verify_log
    from safeshare.archive.checkpoint import VerifierKey
    from safeshare.audit.render import ACCESS_COLUMNS, access_rows
    from safeshare.audit.signing import SigningError, load_public_key, public_key_path

    console = Console(highlight=False)
    try:
        public = load_public_key(verifier_key or public_key_path(access_log_key))
        trusted = checkpoint.read_text() if checkpoint else None
    except (SigningError, OSError) as err:
        raise fail(err) from None
    try:
        verified = verify_log(access_log, VerifierKey(KEY_NAME, public), trusted)
    except AccessLogError as err:
        console.print(f"[red]✗ the access log fails verification[/red]: {err}")
        raise typer.Exit(1) from None
    ref = case_ref.removeprefix("case-")
    events = AccessLog(access_log).events(ref)
    table = Table(title=f"Access history of case {ref}", title_justify="left")
    for column in ACCESS_COLUMNS:
        table.add_column(column)
    for row in access_rows(events):
        table.add_row(*row)
    console.print(table)
    console.print(
        f"[green]✓ access log verified[/green]: {verified.size} entries under "
        f"{verified.checkpoints} signed checkpoints; {len(events)} for this case"
    )
