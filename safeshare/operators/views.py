"""The operators' saved views of the Temporal Web UI: named list queries and their links.

Each view is a visibility query on SafeShare's search attributes (codes, never personal data),
so its link opens the filtered workflow list in the UI. ``safeshare dev`` prints them and
docs/operators.md lists them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

NAMESPACE = "default"


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SavedView:
    """One saved view: its name, what it shows, and its query (some depend on the time)."""

    name: str
    description: str
    query_at: Callable[[dt.datetime], str]

    def query(self, now: dt.datetime | None = None) -> str:
        """The visibility query, at ``now`` for views that compare with the time."""
        return self.query_at(now or dt.datetime.now(dt.UTC))

    def url(self, ui_port: int, now: dt.datetime | None = None, host: str = "127.0.0.1") -> str:
        """The link that opens this view's filtered workflow list in the Temporal Web UI."""
        return (
            f"http://{host}:{ui_port}/namespaces/{NAMESPACE}/workflows"
            f"?query={quote(self.query(now), safe='')}"
        )


EXCHANGES = "WorkflowType='HolderExchange'"
OPEN = "ExecutionStatus='Running'"
DISCLOSURES = "WorkflowType='DisclosureCase'"

VIEWS = (
    SavedView(
        "waiting-on-approver",
        "Override proposals waiting for an approver's decision",
        lambda now: f"{EXCHANGES} AND WaitingOn='APPROVER' AND {OPEN}",
    ),
    SavedView(
        "deadline-passed",
        "Open exchanges whose next deadline has passed",
        lambda now: f"{EXCHANGES} AND NextDeadline < '{_time(now)}' AND {OPEN}",
    ),
    SavedView(
        "escalated",
        "Open exchanges that have been escalated (a missed deadline or a failing delivery)",
        lambda now: f"{EXCHANGES} AND Escalated=true AND {OPEN}",
    ),
    SavedView(
        "delivery-failing",
        "Deliveries that are failing: operators have been alerted",
        lambda now: f"{EXCHANGES} AND CaseState='DELIVERING' AND WaitingOn='OPERATOR' AND {OPEN}",
    ),
    SavedView(
        "red-open",
        "RED cases (risk of immediate significant harm) still open",
        lambda now: f"WorkflowType='SharingCase' AND Urgency='RED' AND {OPEN}",
    ),
    SavedView(
        "disclosures-open",
        "Disclosures (a holder told partners without a request) not yet acknowledged",
        lambda now: f"{DISCLOSURES} AND {OPEN}",
    ),
    SavedView(
        "disclosures-overdue",
        "Disclosures whose acknowledgement (or approval) deadline has passed",
        lambda now: f"{DISCLOSURES} AND NextDeadline < '{_time(now)}' AND {OPEN}",
    ),
    SavedView(
        "overrides-this-month",
        "Exchanges opened this month that shared under a consent override",
        lambda now: (
            f"{EXCHANGES} AND OverrideUsed=true AND StartTime >= '{_time(_month_start(now))}'"
        ),
    ),
)


def view(name: str) -> SavedView:
    """The saved view called ``name``.

    Raises:
        KeyError: there is no such view.
    """
    return {v.name: v for v in VIEWS}[name]


def describe_views(ui_port: int, now: dt.datetime | None = None) -> list[str]:
    """One line per view for a terminal: name, what it shows, link."""
    return [f"  {v.name:<22} {v.description}\n    {v.url(ui_port, now)}" for v in VIEWS]
