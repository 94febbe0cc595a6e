"""Working hours: AMBER and GREEN deadlines count them; RED runs 24/7.

Pure and deterministic. A case's calendars are resolved outside workflow code, when the case
opens (``activities.calendars``: bank holidays from the ``holidays`` package for the agency's
region, the partnership's closure days, UTC offsets from ``zoneinfo`` with ``tzdata``), and
recorded in history as plain data: the non-working dates and the zone's offset changes over
the case's horizon. A replay therefore never depends on the library versions installed later.
(``zoneinfo`` could not be used in workflow code anyway: the workflow sandbox wraps
``zoneinfo.ZoneInfo`` in a proxy that ``datetime`` does not accept as a tzinfo.)
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def uk_utc_offset(at: dt.datetime) -> dt.timedelta:
    """The UK's offset by the summer-time rule, for exchanges opened before calendars were
    recorded in history (their replays must compute what they computed then)."""
    utc = at.astimezone(dt.UTC)
    starts = dt.datetime.combine(_last_sunday(utc.year, 3), dt.time(1), dt.UTC)
    ends = dt.datetime.combine(_last_sunday(utc.year, 10), dt.time(1), dt.UTC)
    return dt.timedelta(hours=1) if starts <= utc < ends else dt.timedelta(0)


@dataclass(frozen=True)
class RecordedOffsets:
    """A time zone's offsets from UTC as recorded: each change as (from instant, offset), in
    order. Before the first change the first offset applies."""

    changes: tuple[tuple[dt.datetime, dt.timedelta], ...]

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError("a recorded zone needs at least one offset")

    def __call__(self, at: dt.datetime) -> dt.timedelta:
        utc = at.astimezone(dt.UTC)
        index = bisect.bisect_right([start for start, _ in self.changes], utc) - 1
        return self.changes[max(index, 0)][1]


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and hours in a time zone, with holidays and closure days.

    The default is the partnership's: Monday to Friday, 09:00 to 17:00, UK civil time.
    ``school_terms`` and ``school_day_starts`` describe a school's days, for "before the start
    of the next school day" timescales.
    """

    utc_offset: Callable[[dt.datetime], dt.timedelta] = uk_utc_offset
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_starts: dt.time = dt.time(9, 0)
    day_ends: dt.time = dt.time(17, 0)
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    school_terms: tuple[tuple[dt.date, dt.date], ...] = ()
    school_day_starts: dt.time = dt.time(8, 45)

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

    def is_school_day(self, day: dt.date) -> bool:
        """Whether ``day`` is in a term, a weekday, and not a holiday or closure day."""
        in_term = any(first <= day <= last for first, last in self.school_terms)
        return in_term and self.is_working_day(day)

    def next_school_day_start(self, after: dt.datetime) -> dt.datetime:
        """The start of the first school day that starts after ``after``, in UTC.

        Raises:
            ValueError: no school day follows in the recorded terms.
        """
        if not self.school_terms:
            raise ValueError("no school terms in the calendar")
        day = self._local(after.astimezone(dt.UTC)).date()
        last = max(last for _, last in self.school_terms)
        while day <= last:
            starts = self._instant(day, self.school_day_starts)
            if self.is_school_day(day) and starts > after:
                return starts
            day += dt.timedelta(days=1)
        raise ValueError("no school day follows in the recorded terms")

    def _local(self, at: dt.datetime) -> dt.datetime:
        """Local wall-clock time at the UTC instant ``at`` (naive)."""
        return (at + self.utc_offset(at)).replace(tzinfo=None)

    def _instant(self, day: dt.date, wall: dt.time) -> dt.datetime:
        """The UTC instant at which local wall-clock time reads ``wall`` on ``day``."""
        naive = dt.datetime.combine(day, wall, dt.UTC)
        return naive - self.utc_offset(naive - self.utc_offset(naive))


def recorded_calendar(
    *,
    non_working_dates: Sequence[dt.date],
    offsets: Sequence[tuple[dt.datetime, dt.timedelta]],
    day_starts: dt.time = dt.time(9, 0),
    day_ends: dt.time = dt.time(17, 0),
    school_terms: Sequence[tuple[dt.date, dt.date]] = (),
    school_day_starts: dt.time = dt.time(8, 45),
) -> WorkingCalendar:
    """The working calendar described by a recorded calendar's plain data."""
    return WorkingCalendar(
        utc_offset=RecordedOffsets(tuple(offsets)),
        day_starts=day_starts,
        day_ends=day_ends,
        holidays=frozenset(non_working_dates),
        school_terms=tuple(school_terms),
        school_day_starts=school_day_starts,
    )
