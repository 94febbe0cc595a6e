"""``safeshare cases``: the operators' terminal view of cases, for those without the Temporal UI.

``list`` filters by search attributes (never encrypted, never personal data), so it needs no
payload keys. ``show`` and ``follow`` read the decision record, so they need the keys of an
authorised operator (``--keys-file`` / ``SAFESHARE_KEYS_FILE``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from protos.sharing.v1 import case_pb2 as pb
from safeshare.access.events import Action
from safeshare.access.options import (
    DEFAULT_ACCESS_LOG,
    DEFAULT_ACCESS_LOG_KEY,
    AccessLogKey,
    AccessLogPath,
    Operator,
    PurposeOption,
)
from safeshare.access.record import RecordError, record_reads
from safeshare.archive.store import ArchiveStore
from safeshare.archive.url import default_archive_url, open_archive
from safeshare.cases.reader import CaseNotFound, CaseViews
from safeshare.operators.options import (
    OperatorError,
    run,
    temporal_settings,
)
from safeshare.temporal import connect_temporal
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options
from workflows import search_attributes as sa
from workflows.domain.vocabulary import code
from workflows.ids import CASE_REF_PATTERN

cases_app = typer.Typer(help="List, show and follow cases in the terminal.", no_args_is_help=True)
console = Console(width=160, highlight=False)

WAITING_ON = ("HOLDER", "APPROVER", "RECIPIENT", "OPERATOR", "SYSTEM")
EXCHANGE_STATES = (
    "CHECKING_CONSENT",
    "AWAITING_CONSENT_DECISION",
    "AWAITING_OVERRIDE_DECISION",
    "DELIVERING",
    "AWAITING_ACKNOWLEDGEMENT",
)
CASE_STATES = ("REQUESTED", "EXCHANGING", "CLOSED")
DISCLOSURE_KINDS = ("OPERATION_ENCOMPASS", "CONCERN", "CHILD_PROTECTION_FILE_TRANSFER")
KINDS = ("request", "disclosure", *(k.lower() for k in DISCLOSURE_KINDS))
"""What ``--kind`` takes: requests, every disclosure, or one kind of disclosure."""
QUERY_TIMEOUT = dt.timedelta(seconds=10)


def list_query(
    waiting_on: str | None = None,
    state: str | None = None,
    red: bool = False,
    overdue: bool = False,
    now: dt.datetime | None = None,
    kind: str | None = None,
) -> tuple[str, bool]:
    """The visibility query for these filters, and whether it lists exchanges (one row per
    holding agency: whose move and deadlines live there) rather than cases. A disclosure case
    keeps its own whose-move and deadline, so it is listed beside requests and exchanges
    alike, told apart by its ``CaseKind``; ``kind`` keeps requests or disclosures only.

    Raises:
        OperatorError: an unknown --waiting-on, --state or --kind.
    """
    if kind is not None and kind.lower() not in KINDS:
        raise OperatorError(f"--kind must be one of {', '.join(KINDS)}")
    clauses = []
    exchanges = bool(waiting_on or overdue)
    if waiting_on:
        if waiting_on.upper() not in WAITING_ON:
            raise OperatorError(f"--waiting-on must be one of {', '.join(WAITING_ON).lower()}")
        clauses.append(f"WaitingOn='{waiting_on.upper()}'")
    if state:
        if state.upper() not in EXCHANGE_STATES + CASE_STATES:
            raise OperatorError(
                f"--state must be one of {', '.join(EXCHANGE_STATES + CASE_STATES)}"
            )
        exchanges = exchanges or state.upper() in EXCHANGE_STATES
        clauses.append(f"CaseState='{state.upper()}'")
    if red:
        clauses.append("Urgency='RED'")
    if overdue:
        at = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"NextDeadline < '{at}' AND ExecutionStatus='Running'")
    request_type = f"WorkflowType='{'HolderExchange' if exchanges else 'SharingCase'}'"
    disclosures = "WorkflowType='DisclosureCase'"
    if kind is None:
        types = f"({request_type} OR {disclosures})"
    elif kind.lower() == "request":
        types = request_type
    elif kind.lower() == "disclosure":
        types = disclosures
    else:
        types = f"{disclosures} AND CaseKind='{kind.upper()}'"
    return " AND ".join([types, *clauses]), exchanges


def _when(at: dt.datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else ""


async def list_cases(client: Client, query: str, exchanges: bool, limit: int) -> Table:
    """A table of the cases (or exchanges) the query finds, newest first."""
    table = Table(title=query, title_justify="left")
    columns = (
        ("case", "kind", "holder", "state", "waiting on", "next deadline", "urgency", "outcome")
        if exchanges
        else ("case", "kind", "state", "urgency", "purpose", "requester", "holders",
              "recipients", "outcome", "opened")
    )  # fmt: skip
    for column in columns:
        # A workflow id is what an operator copies into the next command: never cut short.
        table.add_column(column, no_wrap=True, min_width=25 if column == "case" else None)
    async for execution in client.list_workflows(query, limit=limit):
        attributes = execution.typed_search_attributes
        case_id = execution.id.split(".", 1)[0]
        outcome = attributes.get(sa.OUTCOME) or (
            "OPEN" if execution.status == WorkflowExecutionStatus.RUNNING else ""
        )
        # A request sets no CaseKind; a disclosure its kind.
        kind = attributes.get(sa.CASE_KIND) or "REQUEST"
        if exchanges:
            table.add_row(
                case_id, kind, ",".join(attributes.get(sa.HOLDING_AGENCY) or []),
                attributes.get(sa.CASE_STATE) or "", attributes.get(sa.WAITING_ON) or "",
                _when(attributes.get(sa.NEXT_DEADLINE)), attributes.get(sa.URGENCY) or "",
                outcome,
            )  # fmt: skip
        else:
            table.add_row(
                case_id, kind, attributes.get(sa.CASE_STATE) or "",
                attributes.get(sa.URGENCY) or "", attributes.get(sa.PURPOSE) or "",
                attributes.get(sa.REQUESTING_AGENCY) or "",
                ",".join(attributes.get(sa.HOLDING_AGENCY) or []),
                ",".join(attributes.get(sa.RECIPIENT_AGENCY) or []), outcome,
                _when(execution.start_time),
            )  # fmt: skip
    return table


async def read_case(
    client: Client, case_ref: str, archive: ArchiveStore | None = None
) -> pb.CaseView:
    """The case as it stands (``safeshare.cases.reader``): a closed one from the archive (or
    its result until archived), an open one the case workflow's view merged with each
    exchange's record.

    Raises:
        OperatorError: no such case, or its payloads cannot be read with these keys.
    """
    if not CASE_REF_PATTERN.fullmatch(case_ref):
        raise OperatorError(f"{case_ref!r} is not a case reference")
    views = CaseViews(client, archive)
    try:
        case = await views.case(case_ref, QUERY_TIMEOUT)
        holders = list(case.record.request.holding_agency_ids)
        return await views.whole(case, holders, {}, QUERY_TIMEOUT)
    except CaseNotFound:
        raise OperatorError(f"case {case_ref}: not found") from None
    except RPCError as err:
        raise OperatorError(f"case {case_ref}: {err.message}") from None
    except Exception as err:  # a payload these keys cannot decrypt
        raise OperatorError(
            f"case {case_ref}: cannot read its record ({type(err).__name__}); "
            "are these the partnership's payload keys?"
        ) from None


def entries(view: pb.CaseView) -> list[tuple[str, pb.DecisionEntry]]:
    """Every decision entry of the case and its exchanges, in time order, with whose it is."""
    found = [("case", e) for e in view.record.entries]
    found += [(h.holding_agency_id, e) for h in view.record.holders for e in h.entries]
    return sorted(found, key=lambda pair: pair[1].at.ToNanoseconds())


def entry_row(source: str, entry: pb.DecisionEntry) -> tuple[str, ...]:
    """One decision entry as a table row (codes and ids only)."""
    at = entry.at.ToDatetime(dt.UTC)
    return (_when(at), source, entry.event, entry.agency_id, entry.user_id, entry.detail)


def render_case(view: pb.CaseView) -> list[Table | str]:
    """The case's state, deadlines and decision record so far, for the console."""
    record = view.record
    deadline = view.next_deadline.ToDatetime(dt.UTC) if view.HasField("next_deadline") else None
    lines: list[Table | str] = [
        f"[bold]case-{view.case_ref}[/]  state {code(pb.CaseState, view.state)}"
        f"  waiting on {code(pb.WaitingOn, view.waiting_on)}"
        f"  next deadline {_when(deadline) or '-'}"
        f"  outcome {code(pb.Outcome, record.outcome)}",
        f"requester {record.request.requesting_agency_id}  purpose "
        f"{code(pb.Purpose, record.request.purpose)}  urgency "
        f"{code(pb.Urgency, record.urgency)}",
    ]
    holders = Table(title="Holding agencies", title_justify="left")
    for column in ("holder", "state", "waiting on", "next deadline", "outcome", "consent",
                   "override", "escalations"):  # fmt: skip
        holders.add_column(column, no_wrap=True)
    for holder in record.holders:
        due = holder.next_deadline.ToDatetime(dt.UTC) if holder.HasField("next_deadline") else None
        holders.add_row(
            holder.holding_agency_id, code(pb.CaseState, holder.state),
            code(pb.WaitingOn, holder.waiting_on), _when(due),
            code(pb.Outcome, holder.outcome),
            code(pb.ConsentStatus, holder.consent.status),
            "yes" if holder.override_used else "", str(len(holder.escalations)),
        )  # fmt: skip
    lines.append(holders)
    decisions = Table(title="Decision record", title_justify="left")
    for column in ("at", "from", "event", "agency", "user", "detail"):
        decisions.add_column(column, no_wrap=column != "detail")
    for source, entry in entries(view):
        decisions.add_row(*entry_row(source, entry))
    lines.append(decisions)
    for holder in record.holders:
        if holder.HasField("consent_withdrawal"):
            withdrawal = holder.consent_withdrawal
            at = withdrawal.withdrawn_at.ToDatetime(dt.UTC) if withdrawal.HasField(
                "withdrawn_at") else None  # fmt: skip
            told = "told" if withdrawal.recipient_notified else "not yet told"
            lines.append(
                f"consent withdrawn at {holder.holding_agency_id} {_when(at)} "
                f"(by {withdrawal.actor.agency_id or holder.holding_agency_id}); recipient {told}"
            )
    if record.basis:
        lines.append(f"basis: {record.basis}")
    return lines


async def follow_case(
    client: Client, case_ref: str, interval: float, first_read: Callable[[], None] | None = None
) -> None:
    """Print each new decision entry as it happens, until the case closes; ``first_read``
    runs once, after the case was first read and before anything of it is printed."""
    seen: set[bytes] = set()
    while True:
        view = await read_case(client, case_ref)
        if first_read is not None:
            first_read()
            first_read = None
        for source, entry in entries(view):
            key = source.encode() + entry.SerializeToString(deterministic=True)
            if key not in seen:
                seen.add(key)
                console.print("  ".join(entry_row(source, entry)))
        if view.state == pb.CASE_STATE_CLOSED:
            console.print(f"case-{case_ref} closed: "
                          f"{code(pb.Outcome, view.record.outcome)}")  # fmt: skip
            return
        await asyncio.sleep(interval)


@cases_app.command("list")
@temporal_options
def list_command(
    waiting_on: Annotated[
        str | None, typer.Option(help=f"Whose move: {', '.join(WAITING_ON).lower()}.")
    ] = None,
    state: Annotated[str | None, typer.Option(help="A case or exchange state.")] = None,
    red: Annotated[bool, typer.Option("--red", help="RED cases only.")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="Deadline passed.")] = False,
    kind: Annotated[
        str | None, typer.Option(help=f"Requests or disclosures only: {', '.join(KINDS)}.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
) -> None:
    """List cases (or, filtered by whose move or deadline, exchanges): no keys needed."""
    settings = temporal_settings(temporal, keys_file)

    async def listing() -> Table:
        query, exchanges = list_query(waiting_on, state, red, overdue, kind=kind)
        return await list_cases(await connect_temporal(settings), query, exchanges, limit)

    console.print(run(listing()))


@cases_app.command()
@temporal_options
def show(
    case_ref: Annotated[str, typer.Argument(help="The case reference (without 'case-').")],
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    operator: Operator = None,
    purpose: PurposeOption = "operator_support",
    archive: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_ARCHIVE_URL",
            help="The case archive (default: .safeshare/archive.db when it exists).",
        ),
    ] = None,
) -> None:
    """Show a case's state, deadlines and decision record so far (needs the payload keys).
    The read is recorded in the case's access history."""
    settings = temporal_settings(temporal, keys_file, required=True)
    ref = case_ref.removeprefix("case-")

    async def reading() -> pb.CaseView:
        url = archive or default_archive_url()
        store = await asyncio.to_thread(open_archive, url) if url else None
        try:
            view = await read_case(await connect_temporal(settings), ref, store)
        finally:
            if store is not None:
                store.close()
        _record(access_log, access_log_key, operator, purpose, Action.VIEW, ref)
        return view

    for part in render_case(run(reading())):
        console.print(part)


@cases_app.command()
@temporal_options
def follow(
    case_ref: Annotated[str, typer.Argument(help="The case reference (without 'case-').")],
    interval: Annotated[float, typer.Option(help="Seconds between looks.")] = 2.0,
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    operator: Operator = None,
    purpose: PurposeOption = "operator_support",
) -> None:
    """Print each new decision entry as it happens until the case closes (Ctrl-C stops).
    The read is recorded in the case's access history when following starts."""
    settings = temporal_settings(temporal, keys_file, required=True)
    ref = case_ref.removeprefix("case-")

    async def following() -> None:
        client = await connect_temporal(settings)
        await follow_case(
            client, ref, interval,
            lambda: _record(access_log, access_log_key, operator, purpose, Action.WATCH, ref),
        )  # fmt: skip

    run(following())


def _record(
    log: Path, key: Path, operator: str | None, purpose: str, action: Action, case_ref: str
) -> None:
    try:
        record_reads(log, key, operator, purpose, action, [case_ref])
    except RecordError as err:
        raise OperatorError(str(err)) from None
