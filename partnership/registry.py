"""The partnership registry: the agencies that have signed the Information Sharing Protocol.

Operators keep it in a versioned TOML file (``partnership/registry.toml``), read and watched by
:mod:`partnership.registry_file` against the typed schema in :mod:`partnership.schema`. It is
read by the gateway (is this agency a partner?) and by the hub's protocol gate (are these
agencies current signatories? which calendars and timescales does a new case run under?). This
module holds what the registry says once read: its agencies, its timescales and the closed
lists their values come from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from workflows.domain import deadlines
from workflows.domain.vocabulary import Step, Urgency

KINDS = ("statutory", "voluntary", "independent", "commissioned", "contracted")
"""The closed list of kinds of partner agency."""
PROVIDER_KINDS = frozenset({"commissioned", "contracted"})
"""Kinds bound by the protocol through the signatory that commissions them."""
REGIONS = {"GB-ENG": "ENG", "GB-WLS": "WLS", "GB-SCT": "SCT", "GB-NIR": "NIR"}
"""Regions whose bank holidays the calendars know, with the ``holidays`` subdivision code."""
URGENCIES = tuple(urgency.value for urgency in Urgency)
STEPS = tuple(step.value for step in Step)


@dataclass(frozen=True)
class Timescale:
    """How long one step may take at one urgency, and when a missed deadline escalates."""

    minutes: float
    """The period; whole minutes in a real registry, fractions in a test registry."""
    working_hours: bool
    lead_after_period: float = 0.5
    """The safeguarding lead is told this fraction of the period after the deadline."""
    operator_after_period: float = 1.0
    """The partnership operator is told this fraction of the period after the deadline."""


DEFAULT_TIMESCALES: Mapping[tuple[str, str], Timescale] = {
    (urgency.value, step.value): Timescale(
        timescale.period // dt.timedelta(minutes=1), timescale.working_hours
    )
    for (urgency, step), timescale in deadlines.DEFAULT_TIMESCALES.items()
}
"""The partnership's timescales when the registry sets none: the domain's defaults."""


@dataclass(frozen=True)
class Agency:
    """One partner agency as the registry records it."""

    id: str
    name: str
    kind: str
    signed_protocol_version: str
    review_date: dt.date
    commissioned_by: str | None = None
    """For a contracted or commissioned provider: the signatory that binds it."""
    commissioned_until: dt.date | None = None
    """When the provider's contract with its commissioner ends (none: open-ended)."""
    region: str | None = None
    """Whose bank holidays apply (none: the partnership's region)."""
    closure_days: tuple[dt.date, ...] = ()
    """Days the agency is closed besides bank holidays (a school's INSET days)."""
    school_terms: tuple[tuple[dt.date, dt.date], ...] = ()
    """A school's terms, first and last day of each."""
    school_day_starts: dt.time | None = None
    """When a school's day starts."""
    access_disclosure_delay_days: int = 0
    """How long this agency may keep one of its reads out of the other parties' access
    history (delayed disclosure, e.g. police during an investigation); 0: it may not."""
    approvers: tuple[str, ...] = ()
    """The user ids (in the agency's own system) who may approve or reject this agency's
    override proposals, besides holding an approver role; none named: the role decides."""


@dataclass(frozen=True)
class Registry:
    """The partnership registry at one version."""

    registry_version: int
    protocol_version: str
    agencies: dict[str, Agency]
    region: str = "GB-ENG"
    time_zone: str = "Europe/London"
    timescales: Mapping[tuple[str, str], Timescale] = field(
        default_factory=lambda: dict(DEFAULT_TIMESCALES)
    )
    records_retention_days: int | None = None
    """How long the case archive keeps a closed case before it may be purged; None: never."""
    childrens_social_care: str | None = None
    """The local authority's children's social care: where an Operation Encompass
    notification goes when the child has no school place."""

    def get(self, agency_id: str) -> Agency | None:
        """The agency with this id, or None if it is not a partner."""
        return self.agencies.get(agency_id)

    def region_of(self, agency: Agency) -> str:
        """The region whose bank holidays apply to ``agency``."""
        return agency.region or self.region
