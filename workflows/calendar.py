"""Working hours: AMBER and GREEN deadlines count them; RED runs 24/7.

Pure and deterministic. UK civil time is computed from its published rule (British Summer
Time from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October)
rather than from ``zoneinfo``: the workflow sandbox wraps ``zoneinfo.ZoneInfo`` in a proxy
that ``datetime`` does not accept as a tzinfo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def uk_utc_offset(at: dt.datetime) -> dt.timedelta:
    """The UK's offset from UTC at the instant ``at`` (aware): one hour in summer time."""
    utc = at.astimezone(dt.UTC)
    starts = dt.datetime.combine(_last_sunday(utc.year, 3), dt.time(1), dt.UTC)
    ends = dt.datetime.combine(_last_sunday(utc.year, 10), dt.time(1), dt.UTC)
    return dt.timedelta(hours=1) if starts <= utc < ends else dt.timedelta(0)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and hours in a time zone, with holidays.

    The default is the partnership's: Monday to Friday, 09:00 to 17:00, UK civil time.
    """

    utc_offset: Callable[[dt.datetime], dt.timedelta] = uk_utc_offset
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_starts: dt.time = dt.time(9, 0)
    day_ends: dt.time = dt.time(17, 0)
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day."""
        return day.weekday() in self.workdays and day not in self.holidays

    def add_working_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The moment ``hours`` working hours after ``start`` (an aware datetime), in UTC."""
        remaining = dt.timedelta(hours=hours)
        now = start.astimezone(dt.UTC)
        for _ in range(3660):  # bounded: ten years of days
            day = self._local(now).date()
            opens = self._instant(day, self.day_starts)
            closes = self._instant(day, self.day_ends)
            if self.is_working_day(day) and now < closes:
                now = max(now, opens)
                available = closes - now
                if remaining <= available:
                    return now + remaining
                remaining -= available
            now = self._instant(day + dt.timedelta(days=1), self.day_starts)
        raise ValueError("no working hours in the calendar")

    def _local(self, at: dt.datetime) -> dt.datetime:
        """Local wall-clock time at the UTC instant ``at`` (naive)."""
        return (at + self.utc_offset(at)).replace(tzinfo=None)

    def _instant(self, day: dt.date, wall: dt.time) -> dt.datetime:
        """The UTC instant at which local wall-clock time reads ``wall`` on ``day``."""
        naive = dt.datetime.combine(day, wall, dt.UTC)
        return naive - self.utc_offset(naive - self.utc_offset(naive))
