"""Resolving an agency's working calendar from maintained data, outside workflow code.

Bank holidays come from the ``holidays`` package for the agency's region (England, Wales,
Scotland, Northern Ireland), closure days from the registry, and the zone's UTC offsets from
``zoneinfo`` with the pinned ``tzdata``. The protocol gate resolves a calendar for every party
when a case opens and returns it in its result, so the case's history holds the dates and
offsets themselves: a replay never consults the libraries installed later.

The holidays and the offsets depend only on the region or zone, the dates and the libraries'
data, so each is worked out once per process for a given day's horizon (``lru_cache``):
every case opened that day shares them, where working them out again was a sixth of the hub's
CPU per case. What comes from the registry (closure days, terms) is read each time.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import holidays

from partnership.registry import REGIONS, Agency, Registry
from protos.sharing.v1 import case_pb2 as pb

HORIZON = dt.timedelta(days=731)
"""How far ahead a case's calendars reach: two years covers every step's deadline."""
DAY_STARTS = dt.time(9, 0)
DAY_ENDS = dt.time(17, 0)


@functools.lru_cache(maxsize=64)
def bank_holidays(region: str, first: dt.date, last: dt.date) -> tuple[dt.date, ...]:
    """The bank holidays of ``region`` (e.g. "GB-SCT") from ``first`` to ``last``."""
    country, _, _ = region.partition("-")
    found = holidays.country_holidays(
        country, subdiv=REGIONS[region], years=range(first.year, last.year + 1)
    )
    return tuple(sorted(day for day in found if first <= day <= last))


@functools.lru_cache(maxsize=64)
def offset_changes(
    time_zone: str, start: dt.datetime, end: dt.datetime
) -> tuple[tuple[dt.datetime, dt.timedelta], ...]:
    """The zone's offset at ``start`` and each change of it up to ``end`` (UTC instants)."""
    zone = zoneinfo.ZoneInfo(time_zone)

    def offset(at: dt.datetime) -> dt.timedelta:
        return at.astimezone(zone).utcoffset() or dt.timedelta(0)

    changes = [(start, offset(start))]
    step = dt.timedelta(hours=6)  # zones change offset at most once in six hours
    at = start
    while at < end:
        later = at + step
        if offset(later) != changes[-1][1]:
            low, high = at, later  # the change is in (low, high]: find its second
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == changes[-1][1]:
                    low = middle
                else:
                    high = middle
            changes.append((high.replace(microsecond=0), offset(high)))
        at = later
    return tuple(changes)


def resolve_calendar(registry: Registry, agency: Agency, at: dt.datetime) -> pb.ResolvedCalendar:
    """``agency``'s calendar from the day before ``at`` over the horizon, as recorded data."""
    region = registry.region_of(agency)
    first = at.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    last = first + HORIZON
    closed = set(bank_holidays(region, first, last))
    closed.update(day for day in agency.closure_days if first <= day <= last)
    start = dt.datetime.combine(first, dt.time(0), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), dt.UTC)
    calendar = pb.ResolvedCalendar(
        agency_id=agency.id,
        region=region,
        time_zone=registry.time_zone,
        first_date=first.isoformat(),
        last_date=last.isoformat(),
        non_working_dates=[day.isoformat() for day in sorted(closed)],
        day_starts_minute=DAY_STARTS.hour * 60 + DAY_STARTS.minute,
        day_ends_minute=DAY_ENDS.hour * 60 + DAY_ENDS.minute,
    )
    for since, offset in offset_changes(registry.time_zone, start, end):
        change = calendar.offsets.add(offset_seconds=int(offset.total_seconds()))
        change.__getattribute__("from").FromDatetime(since)
    for term_first, term_last in agency.school_terms:
        if term_last >= first and term_first <= last:
            calendar.school_terms.add(first=term_first.isoformat(), last=term_last.isoformat())
    if agency.school_day_starts is not None:
        starts = agency.school_day_starts
        calendar.school_day_starts_minute = starts.hour * 60 + starts.minute
    return calendar


def timescale_policy(registry: Registry) -> pb.TimescalePolicy:
    """The registry's timescales as the case records them."""
    return pb.TimescalePolicy(
        policy_version=registry.registry_version,
        timescales=[
            pb.Timescale(
                urgency=urgency,
                step=step,
                minutes=round(timescale.minutes),
                seconds=round(timescale.minutes * 60),
                working_hours=timescale.working_hours,
                lead_after_period=timescale.lead_after_period,
                operator_after_period=timescale.operator_after_period,
            )
            for (urgency, step), timescale in sorted(registry.timescales.items())
        ],
    )
