"""Fictional children, consents and records that every sandbox agency starts with.

Every family name ends in "-Test", every NHS number is in the NHS test range (999...), and
every postcode is in ZZ99, a pseudo-postcode area no real address has: nobody here is real.
Each child stands for one consent scenario, named by its ``key``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

from google.protobuf.timestamp_pb2 import Timestamp

from agency_adapters.sandbox_agency.rows import Child
from agency_adapters.sandbox_agency.store import SandboxStore
from protos.sharing.v1 import case_pb2 as pb

DEMO_CHILDREN: tuple[Child, ...] = (
    Child("consent-given", "Amara", "Okafor-Test", "2016-03-14", "9990000018", "ZZ99 1AA"),
    Child("consent-refused", "Leo", "Brennan-Test", "2014-11-02", "9990000026", "ZZ99 2BB"),
    Child("consent-withdrawn", "Maisie", "Thornton-Test", "2018-06-30", "9990000034", "ZZ99 3CC"),
    Child("consent-expired", "Kai", "Whitfield-Test", "2012-01-20", "9990000042", "ZZ99 4DD"),
    Child("consent-partial", "Zara", "Ahmed-Test", "2015-09-09", "9990000050", "ZZ99 5EE"),
    Child("consent-not-recorded", "Noah", "Pearce-Test", "2017-04-04", "9990000069", "ZZ99 6FF"),
    Child("consent-two-categories", "Ruby", "Marsh-Test", "2016-10-21", "9990000077", "ZZ99 7GG"),
)
"""The sandbox's children, one per consent scenario."""

Category: TypeAlias = pb.InformationCategory.ValueType

ALL_CATEGORIES: tuple[Category, ...] = (
    pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT,
    pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
    pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
    pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT,
    pb.INFORMATION_CATEGORY_POLICE_INCIDENTS,
    pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
)

_WIDE_PURPOSES = (
    pb.PURPOSE_SAFEGUARDING,
    pb.PURPOSE_HEALTH_AND_WELLBEING,
    pb.PURPOSE_EDUCATION,
    pb.PURPOSE_PROTECTION_FROM_HARM,
)

# Which categories an agency holds, by a word in its id: first match wins.
_HOLDINGS: tuple[tuple[tuple[str, ...], tuple[Category, ...]], ...] = (
    (
        ("school", "primary", "academy"),
        (
            pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
            pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
            pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT,
        ),
    ),
    (
        ("gp", "health"),
        (pb.INFORMATION_CATEGORY_HEALTH_SUMMARY, pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT),
    ),
    (
        ("csc", "social"),
        (
            pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT,
            pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
            pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT,
        ),
    ),
    (
        ("police",),
        (pb.INFORMATION_CATEGORY_POLICE_INCIDENTS, pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT),
    ),
)
_DEFAULT_HOLDING = (
    pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT,
    pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
)

_FACT, _OPINION = pb.ITEM_KIND_FACT, pb.ITEM_KIND_OPINION

# Up to three items per category: (kind, source, content). Generic, fictional wording.
_TEMPLATES: dict[Category, tuple[tuple[pb.ItemKind.ValueType, str, str], ...]] = {
    pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT: (
        (_FACT, "Admissions team", "Lives with mother and one younger sibling; no other adults."),
        (_FACT, "Admissions team", "Contact telephone and address confirmed with the family."),
        (_FACT, "Records office", "Moved into the area 18 months ago from another authority."),
    ),
    pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE: (
        (_FACT, "Attendance team", "Attendance 86% this term; 7 sessions unauthorised absence."),
        (_FACT, "Attendance team", "Late on 9 occasions this half term, mostly Mondays."),
        (_OPINION, "Pastoral team", "Class teacher thinks lateness is linked to caring at home."),
    ),
    pb.INFORMATION_CATEGORY_HEALTH_SUMMARY: (
        (_FACT, "Practice nursing team", "Two missed immunisation appointments in the last year."),
        (_FACT, "GP surgery", "Seen for recurring asthma; inhaler prescribed."),
        (_OPINION, "Health visiting team", "Health visitor concerned that follow-ups are missed."),
    ),
    pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT: (
        (
            _FACT,
            "Children's assessment team",
            "Child in need plan opened; reviewed 3-monthly.",
        ),
        (_FACT, "Early help team", "Family engaged with early help support last year."),
        (_OPINION, "Children's assessment team", "Social worker sees the family as cooperative."),
    ),
    pb.INFORMATION_CATEGORY_POLICE_INCIDENTS: (
        (_FACT, "Public protection unit", "Attended a verbal dispute at the home address."),
        (_FACT, "Neighbourhood team", "Child reported missing for 4 hours; found safe."),
        (_OPINION, "Public protection unit", "Officer assessed risk to the child as medium."),
    ),
    pb.INFORMATION_CATEGORY_WELFARE_CONCERNS: (
        (_OPINION, "Safeguarding team", "Staff noticed the child often arrives hungry."),
        (_FACT, "Safeguarding team", "Concern form logged about unexplained bruising on an arm."),
        (_OPINION, "Safeguarding team", "Lead thinks the concerns together meet the threshold."),
    ),
}


def held_categories_for(agency_id: str) -> tuple[Category, ...]:
    """The categories a sandbox agency holds, guessed from the kind of agency its id names."""
    for words, categories in _HOLDINGS:
        if any(word in agency_id for word in words):
            return categories
    return _DEFAULT_HOLDING


def demo_consents() -> dict[str, pb.ConsentRecord]:
    """The consent record of each scenario, by child key ("consent-not-recorded" has none),
    with the id and version the sandbox gives it."""
    consents = _demo_consents()
    for key, consent in consents.items():
        consent.record_id, consent.version = f"consent-{key}", 1
    return consents


def _demo_consents() -> dict[str, pb.ConsentRecord]:
    return {
        "consent-given": pb.ConsentRecord(
            status=pb.CONSENT_STATUS_GIVEN,
            given_by_relationship="mother",
            parental_responsibility=True,
            purposes=_WIDE_PURPOSES,
            categories=ALL_CATEGORIES,
            valid_from=_at(2025, 1, 1),
            valid_until=_at(2028, 1, 1),
            verification="signed consent form",
            views_expressed="Happy for agencies to talk to each other",
        ),
        "consent-refused": pb.ConsentRecord(
            status=pb.CONSENT_STATUS_REFUSED,
            given_by_relationship="father",
            parental_responsibility=True,
            valid_from=_at(2025, 2, 3),
            verification="recorded phone call",
            views_expressed="Does not want information shared outside the school",
        ),
        "consent-withdrawn": pb.ConsentRecord(
            status=pb.CONSENT_STATUS_WITHDRAWN,
            given_by_relationship="mother",
            parental_responsibility=True,
            purposes=_WIDE_PURPOSES,
            categories=ALL_CATEGORIES,
            valid_from=_at(2025, 1, 1),
            verification="letter withdrawing consent",
            views_expressed="Withdrew consent after a disagreement with the school",
        ),
        # Stored as GIVEN with a period that has ended: the hub, not the agency, decides
        # that it has expired.
        "consent-expired": pb.ConsentRecord(
            status=pb.CONSENT_STATUS_GIVEN,
            given_by_relationship="mother",
            parental_responsibility=True,
            purposes=_WIDE_PURPOSES,
            categories=ALL_CATEGORIES,
            valid_from=_at(2024, 1, 1),
            valid_until=_at(2025, 6, 30),
            verification="signed consent form",
        ),
        "consent-partial": pb.ConsentRecord(
            status=pb.CONSENT_STATUS_GIVEN,
            given_by_relationship="mother",
            parental_responsibility=True,
            purposes=[pb.PURPOSE_EDUCATION],
            categories=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
            valid_from=_at(2025, 1, 1),
            valid_until=_at(2028, 1, 1),
            verification="signed consent form",
            views_expressed="Happy for attendance to be shared, nothing else",
        ),
        # Covers attendance and welfare concerns for safeguarding, not identity and contact.
        "consent-two-categories": pb.ConsentRecord(
            status=pb.CONSENT_STATUS_GIVEN,
            given_by_relationship="father",
            parental_responsibility=True,
            purposes=_WIDE_PURPOSES,
            categories=[
                pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
                pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
            ],
            valid_from=_at(2025, 1, 1),
            valid_until=_at(2028, 1, 1),
            verification="signed consent form",
            views_expressed="Attendance and concerns may be shared; not our address",
        ),
    }


def demo_records(agency_id: str) -> dict[str, list[pb.RecordItem]]:
    """The record items agency ``agency_id`` holds about each child, by child key.

    Deterministic: 1 to 3 items per child and held category, with ids
    ``<agency_id>-<child key>-<n>`` that stay the same on every seed.
    """
    records: dict[str, list[pb.RecordItem]] = {}
    for index, child in enumerate(DEMO_CHILDREN):
        items: list[pb.RecordItem] = []
        for category in held_categories_for(agency_id):
            count = (index + int(category)) % 3 + 1
            for kind, source, content in _TEMPLATES[category][:count]:
                n = len(items) + 1
                items.append(
                    pb.RecordItem(
                        item_id=f"{agency_id}-{child.key}-{n}",
                        category=category,
                        kind=kind,
                        source=source,
                        recorded_at=_at(2025, 1 + (index + n) % 12, 1 + (3 * n) % 28),
                        content=content,
                    )
                )
        records[child.key] = items
    return records


def seed_store(store: SandboxStore, agency_id: str) -> bool:
    """Seed the demo children into ``store`` if it is empty.

    Args:
        store: the sandbox agency's store.
        agency_id: the agency, which decides the categories of records it holds.

    Returns:
        Whether it seeded (False: the store already had data, which is kept as it is).
    """
    if not store.is_empty():
        return False
    store.add_children(DEMO_CHILDREN, demo_consents(), demo_records(agency_id))
    return True


def _at(year: int, month: int, day: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(year, month, day, tzinfo=UTC))
    return stamp
