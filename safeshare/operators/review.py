"""``safeshare review``: run the protocol review now, and set how often the schedule runs it.

The dev stack creates the schedule on start (``ensure_review_schedule``: an existing schedule
is left as the operators set it); ``safeshare review schedule --cron`` changes it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from safeshare.operators.options import (
    OperatorError,
    run,
    temporal_settings,
)
from safeshare.temporal import connect_temporal
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options
from workflows.ids import HUB_TASK_QUEUE
from workflows.protocol_review import ProtocolReview, ReviewInput, ReviewResult

SCHEDULE_ID = "safeshare-protocol-review"
SCHEDULED_WORKFLOW_ID = "protocol-review"
"""The schedule appends the scheduled time to it, so each month's run has its own id."""
MONTHLY = "0 6 1 * *"
"""06:00 UTC on the first day of every month."""
DEFAULT_REPORTS_DIR = Path(".safeshare/reports")

review_app = typer.Typer(
    help="The regular protocol review: the partnership report.", no_args_is_help=True
)

ReportsDir = Annotated[
    Path,
    typer.Option(envvar="SAFESHARE_REPORTS_DIR", help="Folder the hub writes reports to."),
]


def review_schedule(reports_dir: Path, cron: str) -> Schedule:
    """The schedule that runs the review on ``cron`` and writes to ``reports_dir``."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ProtocolReview.run,
            ReviewInput(reports_dir=str(reports_dir)),
            id=SCHEDULED_WORKFLOW_ID,
            task_queue=HUB_TASK_QUEUE,
        ),
        spec=ScheduleSpec(cron_expressions=[cron]),
        # A review still running when the next is due (a large partnership) is not doubled.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        # The server keeps a cron as calendar specs: the note says what the operators set.
        state=ScheduleState(note=f"cron: {cron}"),
    )


async def ensure_review_schedule(
    client: Client, reports_dir: Path, cron: str = MONTHLY, replace: bool = False
) -> str:
    """Create the review schedule, or (``replace``) set its cron and reports folder if it exists.

    Returns:
        The cron expression the schedule now runs on.
    """
    schedule = review_schedule(reports_dir, cron)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
        return cron
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(SCHEDULE_ID)
        if replace:

            def change(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await handle.update(change)
            return cron
        described = await handle.describe()
        return described.schedule.state.note or "(set in the UI)"


async def ensure_dev_review_schedule(
    address: str, keys_file: Path | None, reports_dir: Path
) -> None:
    """The dev stack's part: the monthly review schedule, created once, kept as operators set it."""
    from safeshare.codec import load_key_file
    from safeshare.temporal import TemporalSettings

    keys = load_key_file(keys_file) if keys_file else None
    client = await connect_temporal(TemporalSettings(address=address, keys=keys))
    await ensure_review_schedule(client, reports_dir)


async def run_review(
    client: Client, reports_dir: Path, period_days: int, since: dt.datetime | None
) -> ReviewResult:
    """Run one review now, on the hub worker, and wait for its report."""
    started = dt.datetime.now(dt.UTC)
    return await client.execute_workflow(
        ProtocolReview.run,
        ReviewInput(
            reports_dir=str(reports_dir),
            period_days=period_days,
            period_start=since.isoformat() if since else "",
        ),
        id=f"protocol-review-now-{started:%Y%m%dT%H%M%S%fZ}",
        task_queue=HUB_TASK_QUEUE,
    )


@review_app.command("run")
@temporal_options
def run_command(
    reports_dir: ReportsDir = DEFAULT_REPORTS_DIR,
    period_days: Annotated[int, typer.Option(help="Review cases opened in the last N days.")] = 31,
    since: Annotated[
        str | None, typer.Option(help="Instead: cases opened since this date (YYYY-MM-DD, UTC).")
    ] = None,
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
) -> None:
    """Run the protocol review now and print where the report is."""
    start = None
    reports_dir = reports_dir.resolve()
    if since:
        try:
            start = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC)
        except ValueError:
            raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--since") from None
    settings = temporal_settings(temporal, keys_file, required=True)

    async def review() -> ReviewResult:
        client = await connect_temporal(settings)
        return await run_review(client, reports_dir, period_days, start)

    result = run(review())
    figures = result.figures
    typer.echo(f"cases opened: {figures.cases_opened}; outcomes: {figures.case_outcomes}")
    typer.echo(f"report: {result.files.markdown}")
    typer.echo(f"report: {result.files.html}")


@review_app.command("schedule")
@temporal_options
def schedule_command(
    cron: Annotated[
        str | None,
        typer.Option(help=f"When to run, as a cron expression (UTC; monthly: {MONTHLY!r})."),
    ] = None,
    reports_dir: ReportsDir = DEFAULT_REPORTS_DIR,
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
) -> None:
    """Show the review schedule, or change when it runs (--cron); creates it if missing."""
    settings = temporal_settings(temporal, keys_file, required=True)

    async def schedule() -> str:
        client = await connect_temporal(settings)
        try:
            return await ensure_review_schedule(
                client, reports_dir.resolve(), cron or MONTHLY, replace=cron is not None
            )
        except ValueError as err:  # the server refused the cron expression
            raise OperatorError(f"invalid --cron {cron!r}: {err}") from None

    typer.echo(f"protocol review schedule {SCHEDULE_ID}: {run(schedule())}")
