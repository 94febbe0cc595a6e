"""Working calendars from maintained data: bank holidays per region (``holidays``), closure
days from the registry, UK civil time from ``zoneinfo`` + ``tzdata``, resolved outside workflow
code and used by the pure model only through the recorded data."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.calendars import resolve_calendar
from partnership.registry import Registry
from partnership.schema import parse_registry
from workflows.domain import deadlines
from workflows.domain.deadlines import WorkingCalendar, deadline
from workflows.domain.vocabulary import Step, Urgency

LONDON = zoneinfo.ZoneInfo("Europe/London")
RESOLVED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _registry(**school: Any) -> Registry:
    agencies = [
        {"id": f"agency-{region.lower()}", "name": region, "kind": "statutory",
         "signed_protocol_version": "2026.1", "review_date": dt.date(2028, 1, 1),
         "region": region}
        for region in ("GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR")
    ]  # fmt: skip
    agencies.append(
        {"id": "a-school", "name": "A school", "kind": "statutory",
         "signed_protocol_version": "2026.1", "review_date": dt.date(2028, 1, 1), **school}
    )  # fmt: skip
    return parse_registry(
        {"registry_version": 1, "protocol_version": "2026.1", "agencies": agencies}
    )


@functools.cache
def calendar_of(region: str) -> WorkingCalendar:
    """The calendar as a case records it (resolved by the gate) and the exchange reads it."""
    registry = _registry()
    agency = registry.agencies[f"agency-{region.lower()}"]
    return deadlines.calendar_of(resolve_calendar(registry, agency, RESOLVED_AT))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("region", "start", "hours", "due"),
    [
        # 24 Dec 2026 (Thu) 16:00 GMT + 2: one hour on the 24th; Christmas Day (Fri), Boxing Day
        # (Sat) and its substitute Monday 28th are bank holidays: Tuesday 29th 10:00.
        ("GB-ENG", utc(2026, 12, 24, 16), 2, utc(2026, 12, 29, 10)),
        ("GB-NIR", utc(2026, 12, 24, 16), 2, utc(2026, 12, 29, 10)),
        # Easter 2027: Good Friday 26 Mar and Easter Monday 29 Mar, and summer time starts on
        # Sunday 28 Mar: Tuesday 30th 09:00 BST is 08:00 UTC, plus the hour left.
        ("GB-ENG", utc(2027, 3, 25, 16), 2, utc(2027, 3, 30, 9)),
        # Scotland has no Easter Monday holiday.
        ("GB-SCT", utc(2027, 3, 25, 16), 2, utc(2027, 3, 29, 9)),
        # Early May bank holiday, Monday 3 May 2027 (from Friday 16:00 BST).
        ("GB-ENG", utc(2027, 4, 30, 15), 2, utc(2027, 5, 4, 9)),
        # August: Monday 30 Aug 2027 in England; Scotland's was 2 August.
        ("GB-ENG", utc(2027, 8, 27, 15), 2, utc(2027, 8, 31, 9)),
        ("GB-SCT", utc(2027, 8, 27, 15), 2, utc(2027, 8, 30, 9)),
        ("GB-SCT", utc(2027, 7, 30, 15), 2, utc(2027, 8, 3, 9)),
        # St Andrew's Day, Monday 30 Nov 2026: a bank holiday in Scotland only.
        ("GB-SCT", utc(2026, 11, 27, 16), 2, utc(2026, 12, 1, 10)),
        ("GB-ENG", utc(2026, 11, 27, 16), 2, utc(2026, 11, 30, 10)),
        # Summer time ends on Sunday 25 Oct 2026: Friday 16:00 BST + 2 → Monday 10:00 GMT.
        ("GB-ENG", utc(2026, 10, 23, 15), 2, utc(2026, 10, 26, 10)),
        # Summer time starts on Sunday 29 Mar 2026: Friday 16:00 GMT + 2 → Monday 10:00 BST.
        ("GB-ENG", utc(2026, 3, 27, 16), 2, utc(2026, 3, 30, 9)),
    ],
)
def test_working_hours_skip_the_regions_bank_holidays_and_follow_uk_time(
    region: str, start: dt.datetime, hours: float, due: dt.datetime
) -> None:
    assert calendar_of(region).add_working_hours(start, hours) == due


def test_a_green_deadline_across_christmas_2026() -> None:
    # 24 working hours from Wed 23 Dec 09:00: the 23rd, the 24th, then Tuesday 29th.
    due = deadline(Urgency.GREEN, Step.HOLDER_RESPONDS, utc(2026, 12, 23, 9), calendar_of("GB-ENG"))
    assert due == utc(2026, 12, 29, 17)


def test_closure_days_and_school_days_come_from_the_registry() -> None:
    registry = _registry(
        closure_days=[dt.date(2027, 1, 5)],
        school_terms=[
            {"first": dt.date(2026, 9, 2), "last": dt.date(2026, 12, 18)},
            {"first": dt.date(2027, 1, 5), "last": dt.date(2027, 3, 26)},
        ],
        school_day_starts=dt.time(8, 45),
    )
    school = deadlines.calendar_of(
        resolve_calendar(registry, registry.agencies["a-school"], RESOLVED_AT)
    )
    # The INSET day is not a working day for the school.
    assert not school.is_working_day(dt.date(2027, 1, 5))
    assert calendar_of("GB-ENG").is_working_day(dt.date(2027, 1, 5))
    # After the last day of the autumn term: no school until Wednesday 6 January (INSET on the 5th).
    assert school.next_school_day_start(utc(2026, 12, 18, 10)) == utc(2027, 1, 6, 8, 45)
    # Before the school day starts on a school day: that morning (GMT in November).
    assert school.next_school_day_start(utc(2026, 11, 30, 7)) == utc(2026, 11, 30, 8, 45)
    # In summer time 08:45 local is 07:45 UTC; Friday evening → Monday morning.
    assert school.next_school_day_start(utc(2026, 9, 4, 18)) == utc(2026, 9, 7, 7, 45)
    with pytest.raises(ValueError, match="no school day"):
        school.next_school_day_start(utc(2027, 3, 26, 12))


def test_a_closure_day_the_registry_adds_shows_in_the_next_calendar_the_same_day() -> None:
    # The holidays and offsets are worked out once per day; what the registry says is not.
    before = resolve_calendar(_registry(), _registry().agencies["a-school"], RESOLVED_AT)
    changed = _registry(closure_days=[dt.date(2027, 1, 5)])
    after = resolve_calendar(changed, changed.agencies["a-school"], RESOLVED_AT)
    assert "2027-01-05" not in before.non_working_dates
    assert set(after.non_working_dates) == set(before.non_working_dates) | {"2027-01-05"}
    assert after.offsets == before.offsets


def test_the_recorded_calendar_is_plain_data_the_replay_reads() -> None:
    registry = _registry()
    resolved = resolve_calendar(registry, registry.agencies["agency-gb-eng"], RESOLVED_AT)
    assert "2026-12-28" in resolved.non_working_dates
    changes = [(getattr(c, "from").ToDatetime(dt.UTC), c.offset_seconds) for c in resolved.offsets]
    assert (utc(2026, 3, 29, 1), 3600) in changes and (utc(2026, 10, 25, 1), 0) in changes
    # Rebuilt from the message alone (as a replay does), it answers the same.
    again = type(resolved)()
    again.ParseFromString(resolved.SerializeToString())
    start = utc(2026, 12, 24, 16)
    assert deadlines.calendar_of(again).add_working_hours(start, 2) == utc(2026, 12, 29, 10)


REGIONS = {"GB-ENG": "ENG", "GB-WLS": "WLS", "GB-SCT": "SCT", "GB-NIR": "NIR"}


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(sorted(REGIONS)),
    start=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 6, 30)),
    minutes=st.integers(min_value=1, max_value=60 * 80),
)
def test_a_working_hours_deadline_never_falls_on_a_bank_holiday_or_weekend(
    region: str, start: dt.datetime, minutes: int
) -> None:
    due = calendar_of(region).add_working_hours(start.replace(tzinfo=dt.UTC), minutes / 60)
    local = due.astimezone(LONDON)
    # Checked against the holiday data and zone directly, not through the recorded calendar.
    bank = holidays.country_holidays("GB", subdiv=REGIONS[region], years=local.year)
    assert local.weekday() < 5
    assert local.date() not in bank
    assert dt.time(9) <= local.time() <= dt.time(17)
