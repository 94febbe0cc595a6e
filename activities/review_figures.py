"""The protocol review's figures: what the partnership report says, and those worked out from
the registry and the decision records.

Plain values and pure functions, no Temporal client and no I/O: the ``ProtocolReview`` workflow
imports the dataclasses it passes between its activities from here. The reads that fill in the
rest (Temporal visibility, the archive, the access history) are the activities in
``activities/review.py``.

👉 No postponed annotations here: the workflow module is passed through the sandbox
(``workflows/runner.py``), so this module is imported outside it and is missing from the
sandbox's ``sys.modules``, where the payload converter resolves a dataclass's string type
hints; real annotations need no lookup.
"""

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from partnership.registry import Agency, Registry
from protos.sharing.v1 import case_pb2 as pb

NEAR_DAYS = 60
"""A review date or a training attestation this close (or past) is flagged."""
REMINDER = "reminder"
"""The first rung of the escalation ladder fires at the deadline: one per missed deadline."""


@dataclass
class ReviewWindow:
    """The period a review covers: cases opened from ``start`` up to ``end`` (ISO 8601 UTC)."""

    start: str
    end: str


@dataclass
class SignatoryStatus:
    """A signatory whose protocol review date is near or past, or who signed an old version."""

    agency_id: str
    name: str
    signed_protocol_version: str
    review_date: str
    days_to_review: int
    status: str


@dataclass
class ProviderBinding:
    """A contracted or commissioned provider and the partner agency that binds it."""

    provider_id: str
    provider_name: str
    commissioner_id: str
    commissioner_name: str
    commissioner_current: bool


@dataclass
class TrainingLapse:
    """A requesting practitioner whose training attestation lapses soon or has lapsed."""

    agency_id: str
    user_id: str
    valid_until: str
    lapsed: bool


@dataclass
class RefusedAccess:
    """One refused attempt to read a case, as the review lists it (codes and staff ids)."""

    at: str
    case_ref: str
    agency_id: str
    user_id: str
    action: str
    reason: str


@dataclass
class AccessFigures:
    """The access history's part of the review."""

    by_agency: dict[str, int] = field(default_factory=dict)
    by_purpose: dict[str, int] = field(default_factory=dict)
    refused: list[RefusedAccess] = field(default_factory=list)


AccessSource = Callable[[dt.datetime, dt.datetime], AccessFigures]
"""Reads the access history between two times (given by the hub, which holds the log)."""


@dataclass(frozen=True)
class ArchivedCase:
    """A case in the case archive: its index fields and its decision record as stored."""

    workflow_id: str
    requesting_agency: str
    purpose: str
    outcome: str
    result: bytes
    """The workflow's result payload as stored (a serialized Temporal ``Payload``)."""


ArchiveSource = Callable[[dt.datetime, dt.datetime], list[ArchivedCase]]
"""The archived cases opened between two times (given by the hub, which holds the archive):
the review counts them even once Temporal has deleted them after its retention."""


@dataclass
class ReviewFigures:
    """Everything the partnership report says, as figures."""

    window: ReviewWindow
    registry_version: int
    protocol_version: str
    signatories: list[SignatoryStatus] = field(default_factory=list)
    providers: list[ProviderBinding] = field(default_factory=list)
    cases_opened: int = 0
    cases_by_requesting_agency: dict[str, int] = field(default_factory=dict)
    cases_by_purpose: dict[str, int] = field(default_factory=dict)
    case_outcomes: dict[str, int] = field(default_factory=dict)
    exchanges_by_holding_agency: dict[str, int] = field(default_factory=dict)
    exchange_outcomes: dict[str, int] = field(default_factory=dict)
    overrides_used: int = 0
    deadlines_missed: dict[str, int] = field(default_factory=dict)
    """By step (holder_responds, override_decision, recipient_acknowledges)."""
    acknowledgements_outstanding: int = 0
    training: list[TrainingLapse] = field(default_factory=list)
    unreadable_records: int = 0
    """Exchanges whose record could not be read (counted nowhere in deadlines missed)."""
    undecodable_cases: int = 0
    """Cases counted from their search attributes (or the archive's index) whose request or
    archived record could not be decoded, e.g. encrypted with a key this worker does not hold:
    left out of the training figures (and, from the archive, of the exchange figures)."""
    accesses_by_agency: dict[str, int] = field(default_factory=dict)
    """Reads of case content in the window, by the reader's agency ("partnership" for
    operators and auditors)."""
    accesses_by_purpose: dict[str, int] = field(default_factory=dict)
    refused_accesses: list[RefusedAccess] = field(default_factory=list)
    disclosures_by_kind: dict[str, int] = field(default_factory=dict)
    """Disclosures (a holder told partners without a request) opened in the window, by kind."""
    disclosure_deadlines: dict[str, dict[str, int]] = field(default_factory=dict)
    """By kind: acknowledged with no deadline missed ("met"), a deadline missed ("missed"),
    still waiting within it ("open")."""


@dataclass
class ReviewReport:
    """What to write: the figures, and the folder to write them to."""

    figures: ReviewFigures
    reports_dir: str


@dataclass
class ReviewFiles:
    """Where the report was written."""

    markdown: str
    html: str


def registry_figures(registry: Registry, as_of: dt.date) -> ReviewFigures:
    """The registry's part of the review: signatories near or past review, and providers."""
    figures = ReviewFigures(
        window=ReviewWindow("", ""),
        registry_version=registry.registry_version,
        protocol_version=registry.protocol_version,
    )
    for agency in sorted(registry.agencies.values(), key=lambda a: a.id):
        if agency.commissioned_by:
            commissioner = registry.agencies[agency.commissioned_by]
            figures.providers.append(
                ProviderBinding(
                    provider_id=agency.id,
                    provider_name=agency.name,
                    commissioner_id=commissioner.id,
                    commissioner_name=commissioner.name,
                    commissioner_current=_is_current(registry, commissioner, as_of),
                )
            )
            continue
        days = (agency.review_date - as_of).days
        outdated = agency.signed_protocol_version != registry.protocol_version
        if days > NEAR_DAYS and not outdated:
            continue
        status = "review overdue" if days < 0 else f"review due within {NEAR_DAYS} days"
        if days > NEAR_DAYS:
            status = "signed an outdated protocol"
        elif outdated:
            status += "; signed an outdated protocol"
        figures.signatories.append(
            SignatoryStatus(
                agency_id=agency.id,
                name=agency.name,
                signed_protocol_version=agency.signed_protocol_version,
                review_date=agency.review_date.isoformat(),
                days_to_review=days,
                status=status,
            )
        )
    return figures


def _is_current(registry: Registry, agency: Agency, as_of: dt.date) -> bool:
    return (
        agency.signed_protocol_version == registry.protocol_version and agency.review_date >= as_of
    )


def deadlines_missed(records: Iterable[pb.HolderRecord]) -> dict[str, int]:
    """Missed deadlines by step: the reminder rung fires once at each missed deadline."""
    return dict(
        Counter(e.step for record in records for e in record.escalations if e.level == REMINDER)
    )


def training_lapses(
    requests: Iterable[pb.SharingRequest], as_of: dt.datetime
) -> list[TrainingLapse]:
    """Requesting practitioners whose training lapses within ``NEAR_DAYS`` of ``as_of`` or has
    lapsed, once per practitioner (their latest attestation)."""
    latest: dict[tuple[str, str], dt.datetime] = {}
    for request in requests:
        if not request.requester.HasField("training_valid_until"):
            continue
        key = (request.requesting_agency_id, request.requester.user_id)
        until = request.requester.training_valid_until.ToDatetime(dt.UTC)
        latest[key] = max(until, latest.get(key, until))
    return [
        TrainingLapse(agency_id, user_id, until.date().isoformat(), lapsed=until <= as_of)
        for (agency_id, user_id), until in sorted(latest.items())
        if until <= as_of + dt.timedelta(days=NEAR_DAYS)
    ]
