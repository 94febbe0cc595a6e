"""The archiver's metrics: cases archived, failures by reason, and the lag against retention.

Counted in the process (``SweepResult`` and tests read them) and, given a Temporal runtime's
meter, exported to Prometheus as ``safeshare_archive_*`` for the alert rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from temporalio.common import MetricMeter


@dataclass
class ArchiverMetrics:
    """Cases archived, failures and the lag, in this process and on Prometheus if a meter."""

    meter: MetricMeter | None = None
    archived: int = 0
    failures: int = 0
    lag_seconds: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._archived = self._failures = self._lag = self._retention = self._threshold = None
        if self.meter is not None:
            self._archived = self.meter.create_counter(
                "safeshare_archive_cases_archived", "Closed workflows archived and read back."
            )
            self._failures = self.meter.create_counter(
                "safeshare_archive_failures", "Archive writes that failed or did not check."
            )
            self._lag = self.meter.create_gauge_float(
                "safeshare_archive_lag_seconds",
                "Age of the oldest closed case not yet archived (0: none).",
                "s",
            )
            self._retention = self.meter.create_gauge_float(
                "safeshare_archive_retention_seconds",
                "The namespace's retention the archiver measures its lag against.",
                "s",
            )
            self._threshold = self.meter.create_gauge_float(
                "safeshare_archive_lag_alert_seconds",
                "The lag past which the archive alerts: the set fraction of the retention.",
                "s",
            )

    def set_retention(self, retention: dt.timedelta, fraction: float) -> None:
        """The retention and the lag alert threshold (``fraction`` of it), for the alert rule."""
        if self._retention is not None and self._threshold is not None:
            self._retention.set(retention.total_seconds())
            self._threshold.set(retention.total_seconds() * fraction)

    def count_archived(self, kind: str) -> None:
        """One more record archived."""
        self.archived += 1
        if self._archived is not None:
            self._archived.add(1, {"kind": kind})

    def count_failure(self, reason: str) -> None:
        """One more failure, by reason code."""
        self.failures += 1
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
        if self._failures is not None:
            self._failures.add(1, {"reason": reason})

    def set_lag(self, seconds: float) -> None:
        """The lag now."""
        self.lag_seconds = seconds
        if self._lag is not None:
            self._lag.set(seconds)
