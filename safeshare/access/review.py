"""The access history's figures for the protocol review: reads by agency and by purpose, and
every refused attempt, in the review's window."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from activities.review_figures import AccessFigures, AccessSource, RefusedAccess
from safeshare.access.events import Outcome
from safeshare.access.log import AccessLog

PARTNERSHIP = "partnership"
"""The reader's agency in the review for operators and auditors (they belong to none)."""


def access_source(path: Path) -> AccessSource:
    """Reads ``path`` (read-only: the hub holds no signing key) for each review."""

    def figures(start: dt.datetime, end: dt.datetime) -> AccessFigures:
        if not path.exists():
            return AccessFigures()
        events = [e for e in AccessLog(path).events() if start <= e.time < end]
        allowed = [e for e in events if e.outcome is Outcome.ALLOWED]
        by_agency = Counter(e.agency_id or PARTNERSHIP for e in allowed)
        by_purpose = Counter(e.purpose.value for e in allowed)
        refused = [
            RefusedAccess(
                at=e.time.isoformat(timespec="seconds"),
                case_ref=e.case_ref,
                agency_id=e.agency_id or PARTNERSHIP,
                user_id=e.user_id,
                action=e.action.value,
                reason=e.reason,
            )
            for e in events
            if e.outcome is Outcome.REFUSED
        ]
        return AccessFigures(
            dict(sorted(by_agency.items())), dict(sorted(by_purpose.items())), refused
        )

    return figures
