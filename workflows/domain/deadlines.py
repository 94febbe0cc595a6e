"""Deadlines: working calendars, the timescales of each step by urgency, when a step falls
due, and the ladder a missed deadline climbs.

RED runs 24/7; AMBER and GREEN count working hours on a calendar. Pure and deterministic. A
case's calendars are resolved outside workflow code, when the case opens
(``activities.calendars``: bank holidays from the ``holidays`` package for the agency's region,
the partnership's closure days, UTC offsets from ``zoneinfo`` with ``tzdata``), and recorded in
history as plain data: the non-working dates and the zone's offset changes over the case's
horizon. A replay therefore never depends on the library versions installed later.
(``zoneinfo`` could not be used in workflow code anyway: the workflow sandbox wraps
``zoneinfo.ZoneInfo`` in a proxy that ``datetime`` does not accept as a tzinfo.)
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.vocabulary import Step, Urgency


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


# -- timescales and deadlines --------------------------------------------------------------

_DEADLINE_HOURS: dict[Urgency, dict[Step, float]] = {
    # RED: elapsed hours, 24/7. AMBER and GREEN: working hours on the calendar.
    Urgency.RED: {
        Step.HOLDER_RESPONDS: 2,
        Step.OVERRIDE_DECISION: 1,
        Step.RECIPIENT_ACKNOWLEDGES: 2,
    },
    Urgency.AMBER: {
        Step.HOLDER_RESPONDS: 6,
        Step.OVERRIDE_DECISION: 4,
        Step.RECIPIENT_ACKNOWLEDGES: 8,  # one working day
    },
    Urgency.GREEN: {
        Step.HOLDER_RESPONDS: 24,
        Step.OVERRIDE_DECISION: 8,  # one working day
        Step.RECIPIENT_ACKNOWLEDGES: 40,  # five working days
    },
}


@dataclass(frozen=True)
class Timescale:
    """How long a step may take and when its missed deadline climbs the ladder."""

    period: dt.timedelta
    working_hours: bool
    """Counted in working hours on the calendar; else elapsed time, 24/7."""
    lead_after_period: float = 0.5
    """The safeguarding lead is told this fraction of the step's period after the deadline."""
    operator_after_period: float = 1.0
    """The partnership operator is told this fraction of the period after the deadline."""


Timescales = Mapping[tuple[Urgency, Step], Timescale]

DEFAULT_TIMESCALES: Timescales = {
    (urgency, step): Timescale(dt.timedelta(hours=hours), working_hours=urgency is not Urgency.RED)
    for urgency, steps in _DEADLINE_HOURS.items()
    for step, hours in steps.items()
}
"""The partnership's timescales when its registry sets none (and for exchanges opened before
cases recorded their timescales)."""


def deadline(
    urgency: Urgency,
    step: Step,
    started: dt.datetime,
    calendar: WorkingCalendar,
    timescales: Timescales = DEFAULT_TIMESCALES,
) -> dt.datetime:
    """When ``step`` of an exchange of this urgency, started at ``started``, falls due.

    A working-hours timescale counts working hours on ``calendar``; the others run 24/7
    (by default RED runs 24/7, AMBER and GREEN count working hours).
    """
    timescale = timescales[(urgency, step)]
    if not timescale.working_hours:
        return started + timescale.period
    return calendar.add_working_hours(started, timescale.period / dt.timedelta(hours=1))


class Escalation(enum.Enum):
    """The ladder a missed deadline climbs: it never silently declines."""

    REMINDER = "reminder"
    SAFEGUARDING_LEAD = "safeguarding_lead"
    PARTNERSHIP_OPERATOR = "partnership_operator"


def escalation_times(
    due: dt.datetime,
    period: dt.timedelta,
    lead_after_period: float = 0.5,
    operator_after_period: float = 1.0,
) -> list[tuple[dt.datetime, Escalation]]:
    """When each rung of the ladder fires after a deadline ``due`` for a step of ``period``.

    The reminder fires at the deadline, the safeguarding lead is told ``lead_after_period``
    of a period later (by default half), the partnership operator ``operator_after_period``
    later (by default a full period).
    """
    return [
        (due, Escalation.REMINDER),
        (due + period * lead_after_period, Escalation.SAFEGUARDING_LEAD),
        (due + period * operator_after_period, Escalation.PARTNERSHIP_OPERATOR),
    ]


# -- as recorded in a case ----------------------------------------------------------------


def _minute(value: int) -> dt.time:
    return dt.time(value // 60, value % 60)


def calendar_of(resolved: pb.ResolvedCalendar) -> WorkingCalendar:
    """The working calendar a case recorded for one agency."""
    return recorded_calendar(
        non_working_dates=[dt.date.fromisoformat(d) for d in resolved.non_working_dates],
        offsets=[
            (
                getattr(change, "from").ToDatetime(dt.UTC),
                dt.timedelta(seconds=change.offset_seconds),
            )
            for change in resolved.offsets
        ],
        day_starts=_minute(resolved.day_starts_minute),
        day_ends=_minute(resolved.day_ends_minute),
        school_terms=[
            (dt.date.fromisoformat(t.first), dt.date.fromisoformat(t.last))
            for t in resolved.school_terms
        ],
        school_day_starts=_minute(resolved.school_day_starts_minute),
    )


def timescales_of(policy: pb.TimescalePolicy) -> Timescales:
    """The timescales a case recorded (any step it does not name keeps the default)."""
    found = dict(DEFAULT_TIMESCALES)
    for timescale in policy.timescales:
        found[(Urgency(timescale.urgency), Step(timescale.step))] = Timescale(
            period=(
                dt.timedelta(seconds=timescale.seconds)
                if timescale.seconds
                else dt.timedelta(minutes=timescale.minutes)
            ),
            working_hours=timescale.working_hours,
            lead_after_period=timescale.lead_after_period,
            operator_after_period=timescale.operator_after_period,
        )
    return found
