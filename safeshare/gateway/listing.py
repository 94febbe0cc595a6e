"""ListCases: the caller's own cases from Temporal's visibility store.

The list query is built here from validated values only: the caller's agency id (from its
certificate, checked against a strict pattern), enum names from the proto schema and a
timestamp the gateway formats itself. Nothing a caller sends is ever pasted into query text,
so a caller cannot widen the query to another agency's cases.

Cases and exchanges publish the same search attributes (``workflows.search_attributes``):

- a case-level state (REQUESTED, EXCHANGING, CLOSED) lists ``SharingCase`` workflows, one
  entry per case;
- any other state, ``waiting_on`` or ``deadline_before`` lists ``HolderExchange`` workflows, one
  entry per matching exchange (``holding_agency_id`` set). A requester sees every exchange of
  its cases; a holder only its own, and a case only once the protocol gate has passed it.

Disclosure cases (``DisclosureCase``: a holder told partners without a request) are listed
beside requests, as whole cases, with their kind and recipients (``disclosure_kind`` set): to
the holder always, and to a recipient only once the disclosure is on its way to it (past the
protocol gate and its routing, ``LISTED_FOR_RECIPIENT_*``). A disclosure considered and not
made, refused by the gate or by its approver, or routed elsewhere, is never listed to the
recipient named first. Filters that list exchanges list disclosures too (a disclosure's
state, ``waiting_on`` and ``deadline_before`` are its own).

With an archive, the case-level listing of every state and of CLOSED also lists the cases
the archive keeps, Temporal's retention notwithstanding (``safeshare.gateway.closed_listing``).

Page tokens are Temporal's, prefixed with a digest of the query they continue, so a token
replayed with other filters is refused as INVALID_ARGUMENT rather than passed to Temporal.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowExecution

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway.fields import (
    FieldViolation,
)
from safeshare.gateway.party_view import LISTED_FOR_HOLDER_OUTCOMES, LISTED_FOR_HOLDER_STATES
from workflows import search_attributes as sa
from workflows.domain.vocabulary import code
from workflows.ids import case_ref_from_workflow_id

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE_TOKEN_LENGTH = 4096
_DIGEST_BYTES = 16
CASE_WORKFLOW_TYPE = "SharingCase"
EXCHANGE_WORKFLOW_TYPE = "HolderExchange"
DISCLOSURE_WORKFLOW_TYPE = "DisclosureCase"
# A recipient lists a disclosure in these states, or closed with these outcomes: once it is
# past the protocol gate and routed to it, and never one that was not made.
LISTED_FOR_RECIPIENT_STATES = (
    "AWAITING_OVERRIDE_DECISION",
    "DELIVERING",
    "AWAITING_ACKNOWLEDGEMENT",
)
LISTED_FOR_RECIPIENT_OUTCOMES = ("SHARED_WITH_CONSENT", "SHARED_UNDER_OVERRIDE", "PARTLY_SHARED")
CASE_LEVEL_STATES = frozenset(
    {pb.CASE_STATE_REQUESTED, pb.CASE_STATE_EXCHANGING, pb.CASE_STATE_CLOSED}
)
# Agency ids are registry codes; anything else never reaches a query (defence in depth: the
# id already came from a verified certificate and the registry).
_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,127}$")
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


class BadPageToken(ValueError):
    """A page token that is not one this listing gave out for the same filters."""


@dataclass(frozen=True)
class ListQuery:
    """One page's visibility query, ready to run."""

    query: str
    page_size: int
    temporal_token: bytes | None
    exchanges: bool
    """True when the entries are holders' exchanges, False when whole cases."""


def validate_list_cases(request: service_pb.ListCasesRequest) -> list[FieldViolation]:
    """Every violation in a ListCases request (the page token is checked with its query)."""
    found: list[FieldViolation] = []
    if request.state and request.state not in pb.CaseState.values():
        found.append(FieldViolation("state", "must be a known value"))
    if request.waiting_on and request.waiting_on not in pb.WaitingOn.values():
        found.append(FieldViolation("waiting_on", "must be a known value"))
    if request.HasField("deadline_before"):
        deadline = request.deadline_before
        if not 0 <= deadline.nanos < 1_000_000_000 or not (
            _EARLIEST.timestamp() <= deadline.seconds <= _LATEST.timestamp()
        ):
            found.append(FieldViolation("deadline_before", "must be a time between 2000 and 2200"))
    if request.state in CASE_LEVEL_STATES:
        for name in ("waiting_on", "deadline_before"):
            if _is_set(request, name):
                found.append(FieldViolation(name, "cannot be combined with a case-level state"))
    if request.page_size < 0:
        found.append(FieldViolation("page_size", "must not be negative"))
    if len(request.page_token) > MAX_PAGE_TOKEN_LENGTH:
        found.append(FieldViolation("page_token", "not a page token of this listing"))
    return found


def build_query(request: service_pb.ListCasesRequest, agency_id: str) -> ListQuery:
    """The visibility query for a validated request made by ``agency_id``.

    Raises:
        BadPageToken: the page token does not belong to this query.
        ValueError: ``agency_id`` is not an agency code (a registry fault, never the caller's).
    """
    if not _AGENCY_ID.fullmatch(agency_id):
        raise ValueError("not an agency id")
    exchanges = request.state not in CASE_LEVEL_STATES and (
        bool(request.state) or bool(request.waiting_on) or request.HasField("deadline_before")
    )
    holder = f"{sa.HOLDING_AGENCY.name} = '{agency_id}'"
    if not exchanges:
        # A holder lists a case only once the protocol gate has passed it (party_view); an
        # exchange exists only then.
        holder += f" AND ({sa.CASE_STATE.name} IN ({_quoted(LISTED_FOR_HOLDER_STATES)}) OR "
        holder += f"{sa.OUTCOME.name} IN ({_quoted(LISTED_FOR_HOLDER_OUTCOMES)}))"
    party = f"{sa.REQUESTING_AGENCY.name} = '{agency_id}' OR ({holder})"
    requests = f"WorkflowType = '{EXCHANGE_WORKFLOW_TYPE if exchanges else CASE_WORKFLOW_TYPE}'"
    clauses = [
        f"(({requests} AND ({party})) OR "
        f"(WorkflowType = '{DISCLOSURE_WORKFLOW_TYPE}' AND ({disclosure_party(agency_id)})))"
    ]
    if request.state:
        name = code(pb.CaseState, request.state)
        clauses.append(f"{sa.CASE_STATE.name} = '{name}'")
    if request.waiting_on:
        name = code(pb.WaitingOn, request.waiting_on)
        clauses.append(f"{sa.WAITING_ON.name} = '{name}'")
    if request.HasField("deadline_before"):
        before = request.deadline_before.ToDatetime(dt.UTC)
        clauses.append(f"{sa.NEXT_DEADLINE.name} < '{before.isoformat().replace('+00:00', 'Z')}'")
    query = " AND ".join(clauses)
    page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return ListQuery(query, page_size, _temporal_token(request.page_token, query), exchanges)


def disclosure_party(agency_id: str) -> str:
    """The visibility clause for the disclosures ``agency_id`` may list (a validated id)."""
    recipient = (
        f"{sa.RECIPIENT_AGENCY.name} = '{agency_id}' AND "
        f"({sa.CASE_STATE.name} IN ({_quoted(LISTED_FOR_RECIPIENT_STATES)}) OR "
        f"{sa.OUTCOME.name} IN ({_quoted(LISTED_FOR_RECIPIENT_OUTCOMES)}))"
    )
    return f"{sa.HOLDING_AGENCY.name} = '{agency_id}' OR ({recipient})"


def page_token(query: str, temporal_token: bytes | None) -> str:
    """The caller's token for the page after this one; empty on the last page."""
    if not temporal_token:
        return ""
    return base64.urlsafe_b64encode(_digest(query) + temporal_token).decode("ascii")


def summaries(
    executions: Sequence[WorkflowExecution], exchanges: bool
) -> list[service_pb.CaseSummary]:
    """A summary per listed workflow, from its search attributes; others are skipped."""
    found = []
    for execution in executions:
        try:
            case_ref = case_ref_from_workflow_id(execution.id)
        except ValueError:
            continue  # not a case's workflow: never listed
        found.append(_summary(execution, case_ref, exchanges))
    return found


def _summary(execution: WorkflowExecution, case_ref: str, exchange: bool) -> service_pb.CaseSummary:
    attributes = execution.typed_search_attributes
    if execution.workflow_type == DISCLOSURE_WORKFLOW_TYPE:
        return _disclosure_summary(execution, case_ref)
    holders = list(attributes.get(sa.HOLDING_AGENCY) or [])
    summary = service_pb.CaseSummary(
        case_ref=case_ref,
        holding_agency_id=holders[0] if exchange and holders else "",
        state=_enum(pb.CaseState, "CASE_STATE_", attributes.get(sa.CASE_STATE)),
        waiting_on=_enum(
            pb.WaitingOn, "WAITING_ON_", attributes.get(sa.WAITING_ON) if exchange else None
        ),
        urgency=_enum(pb.Urgency, "URGENCY_", attributes.get(sa.URGENCY)),
        requesting_agency_id=attributes.get(sa.REQUESTING_AGENCY) or "",
        holding_agency_ids=holders,
        outcome=_enum(pb.Outcome, "OUTCOME_", attributes.get(sa.OUTCOME)),
    )
    deadline = attributes.get(sa.NEXT_DEADLINE)
    if exchange and deadline is not None and summary.state != pb.CASE_STATE_CLOSED:
        summary.next_deadline.FromDatetime(deadline)
    summary.started_at.FromDatetime(execution.start_time)
    return summary


def _disclosure_summary(execution: WorkflowExecution, case_ref: str) -> service_pb.CaseSummary:
    """A disclosure, listed as a whole case: its holder, kind and recipients."""
    attributes = execution.typed_search_attributes
    summary = service_pb.CaseSummary(
        case_ref=case_ref,
        state=_enum(pb.CaseState, "CASE_STATE_", attributes.get(sa.CASE_STATE)),
        waiting_on=_enum(pb.WaitingOn, "WAITING_ON_", attributes.get(sa.WAITING_ON)),
        urgency=_enum(pb.Urgency, "URGENCY_", attributes.get(sa.URGENCY)),
        holding_agency_ids=list(attributes.get(sa.HOLDING_AGENCY) or []),
        outcome=_enum(pb.Outcome, "OUTCOME_", attributes.get(sa.OUTCOME)),
        disclosure_kind=_enum(pb.DisclosureKind, "DISCLOSURE_KIND_", attributes.get(sa.CASE_KIND)),
        recipient_agency_ids=list(attributes.get(sa.RECIPIENT_AGENCY) or []),
    )
    deadline = attributes.get(sa.NEXT_DEADLINE)
    if deadline is not None and summary.state != pb.CASE_STATE_CLOSED:
        summary.next_deadline.FromDatetime(deadline)
    summary.started_at.FromDatetime(execution.start_time)
    return summary


def _enum(enum: Any, prefix: str, value: str | None) -> Any:
    """The proto enum number for a search attribute's code; 0 for a code it does not know
    (the case workflow's WaitingOn ``HOLDERS``, say)."""
    name = f"{prefix}{value}"
    return enum.Value(name) if value and name in enum.DESCRIPTOR.values_by_name else 0


def _is_set(request: service_pb.ListCasesRequest, name: str) -> bool:
    if name == "deadline_before":
        return request.HasField("deadline_before")
    return bool(getattr(request, name))


def _quoted(codes: Sequence[str]) -> str:
    return ", ".join(f"'{code}'" for code in codes)


def _digest(query: str) -> bytes:
    return hashlib.sha256(query.encode()).digest()[:_DIGEST_BYTES]


def _temporal_token(token: str, query: str) -> bytes | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as err:
        raise BadPageToken("not a page token of this listing") from err
    if len(raw) <= _DIGEST_BYTES or raw[:_DIGEST_BYTES] != _digest(query):
        raise BadPageToken("not a page token of this listing")
    return raw[_DIGEST_BYTES:]
