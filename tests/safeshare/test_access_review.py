"""The protocol review's access figures: reads by agency and purpose, refused attempts listed,
only those in the review's window, and the report's sections that show them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from activities.review_figures import RefusedAccess, ReviewFigures, ReviewWindow
from activities.review_report import render_markdown, sections
from safeshare.access.events import AccessEvent, Action, Channel, Outcome, Purpose
from safeshare.access.log import AccessLog
from safeshare.access.review import access_source

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
REF = "abcdefghijklmnopqrst"


def event(
    at: dt.datetime, agency: str, purpose: Purpose, outcome: Outcome, **kw: str
) -> AccessEvent:
    return AccessEvent(
        time=at, case_ref=REF, channel=Channel.CASE_API, action=Action.VIEW, outcome=outcome,
        agency_id=agency, purpose=purpose, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_review_counts_reads_by_agency_and_purpose_and_lists_refusals(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    inside = START + dt.timedelta(days=3)
    log.append([
        event(START - dt.timedelta(seconds=1), "riverside-gp", Purpose.CASE_WORK, Outcome.ALLOWED),
        event(inside, "northshire-csc", Purpose.CASE_WORK, Outcome.ALLOWED, user_id="sw-1"),
        event(inside, "northshire-csc", Purpose.SUPERVISION, Outcome.ALLOWED, user_id="tm-2"),
        event(inside, "", Purpose.OPERATOR_SUPPORT, Outcome.ALLOWED, user_id="operator-ana"),
        event(inside, "riverside-gp", Purpose.CASE_WORK, Outcome.REFUSED, user_id="gp-3",
              reason="not_a_party"),
        event(END, "oakfield-primary", Purpose.CASE_WORK, Outcome.ALLOWED),
    ])  # fmt: skip

    figures = access_source(log.path)(START, END)

    assert figures.by_agency == {"northshire-csc": 2, "partnership": 1}
    assert figures.by_purpose == {"case_work": 1, "operator_support": 1, "supervision": 1}
    assert figures.refused == [
        RefusedAccess(inside.isoformat(), REF, "riverside-gp", "gp-3", "view", "not_a_party")
    ]
    review = ReviewFigures(ReviewWindow(START.isoformat(), END.isoformat()), 1, "2026.1")
    review.accesses_by_agency = figures.by_agency
    review.accesses_by_purpose = figures.by_purpose
    review.refused_accesses = figures.refused
    shown = {section.title: section for section in sections(review)}
    assert shown["Access to cases by agency"].rows == [
        ("northshire-csc", "2"),
        ("partnership", "1"),
    ]
    assert ("supervision", "1") in shown["Access to cases by purpose"].rows
    assert shown["Refused attempts to read a case"].rows == [
        (inside.isoformat(), REF, "riverside-gp", "gp-3", "view", "not_a_party")
    ]
    assert "not_a_party" in render_markdown(review)


def test_no_log_yet_means_no_reads(tmp_path: Path) -> None:
    figures = access_source(tmp_path / "none.db")(START, END)
    assert (figures.by_agency, figures.by_purpose, figures.refused) == ({}, {}, [])
