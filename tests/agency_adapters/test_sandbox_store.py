"""The sandbox store: seeding once, matching children, and idempotent deliveries."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from activities.agency import content_digest
from agency_adapters.sandbox_agency.errors import DuplicateItemError, SubjectMismatch
from agency_adapters.sandbox_agency.seed import (
    ALL_CATEGORIES,
    DEMO_CHILDREN,
    demo_consents,
    held_categories_for,
    seed_store,
)
from agency_adapters.sandbox_agency.store import SandboxStore
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.agency_adapters.agency_test_support import CHILDREN, UNKNOWN_CHILD, child_subject


@pytest.fixture
def store(tmp_path: Path) -> SandboxStore:
    store = SandboxStore(tmp_path / "sandbox.db")
    seed_store(store, "oakfield-primary")
    return store


def test_seeding_happens_once_and_a_reopen_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    first = SandboxStore(path)
    assert seed_store(first, "northshire-gp")
    child = first.children()[0]
    items = first.records_for(child, ALL_CATEGORIES)
    first.close()

    again = SandboxStore(path)
    assert not seed_store(again, "northshire-gp")
    assert again.children() == list(DEMO_CHILDREN)
    assert again.records_for(child, ALL_CATEGORIES) == items
    assert again.consent_for(child) == demo_consents()[child.key]


def test_find_child_by_nhs_number_name_and_date_of_birth(store: SandboxStore) -> None:
    assert store.find_child([child_subject("consent-refused")]) == CHILDREN["consent-refused"]
    # The NHS number alone is not enough: it is one copied value away from another child.
    with pytest.raises(SubjectMismatch):
        store.find_child([pb.Subject(role=pb.SUBJECT_ROLE_CHILD, nhs_number="9990000026")])


def test_find_child_by_name_and_date_of_birth_ignores_case(store: SandboxStore) -> None:
    subject = child_subject("consent-partial", by_nhs=False)
    subject.given_name = subject.given_name.upper()
    subject.family_name = subject.family_name.lower()

    assert store.find_child([subject]) == CHILDREN["consent-partial"]


def test_find_child_needs_the_date_of_birth_to_match(store: SandboxStore) -> None:
    subject = child_subject("consent-partial", by_nhs=False)
    subject.date_of_birth = "2015-09-10"

    assert store.find_child([subject]) is None


def test_a_wrong_nhs_number_is_no_match_even_with_the_right_name(store: SandboxStore) -> None:
    subject = child_subject("consent-given")
    subject.nhs_number = "9990000999"

    assert store.find_child([subject]) is None


def test_find_child_only_matches_the_child_subject(store: SandboxStore) -> None:
    parent = child_subject("consent-given")
    parent.role = pb.SUBJECT_ROLE_PARENT_OR_CARER

    assert store.find_child([parent, UNKNOWN_CHILD]) is None
    assert (
        store.find_child([parent, child_subject("consent-expired")]) == CHILDREN["consent-expired"]
    )


def test_consent_round_trips_and_none_means_not_recorded(store: SandboxStore) -> None:
    for key, consent in demo_consents().items():
        assert store.consent_for(CHILDREN[key]) == consent
    assert store.consent_for(CHILDREN["consent-not-recorded"]) is None


def test_records_for_returns_only_the_asked_categories(store: SandboxStore) -> None:
    child = CHILDREN["consent-given"]

    items = store.records_for(child, [pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE])

    assert items
    assert {item.category for item in items} == {pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE}
    assert store.held_categories() == set(held_categories_for("oakfield-primary"))


def _delivery(delivery_id: str = "case-ref.holder.1") -> agency_pb.ReceiveDeliveryRequest:
    # One item dated, one not: both must come back exactly as sent.
    items = [
        pb.RecordItem(item_id="gp-1", category=pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
                      kind=pb.ITEM_KIND_FACT, source="GP surgery", content="Asthma review.",
                      recorded_at=Timestamp(seconds=1_750_000_000)),
        pb.RecordItem(item_id="gp-2", category=pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
                      kind=pb.ITEM_KIND_OPINION, source="GP surgery", content="Seems well."),
    ]  # fmt: skip
    return agency_pb.ReceiveDeliveryRequest(
        delivery_id=delivery_id,
        case_ref="abcdefghijklmnopqrst",
        holding_agency_id="northshire-gp",
        subjects=[child_subject("consent-given")],
        items=items,
        content_digest=content_digest(items),
    )


def test_a_repeated_delivery_is_stored_once_and_returns_the_first_receipt(
    store: SandboxStore,
) -> None:
    request = _delivery()
    first_at = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

    first, first_duplicate = store.receive_delivery(request, now=first_at)
    again, again_duplicate = store.receive_delivery(request, now=datetime(2026, 1, 6, tzinfo=UTC))

    assert (first_duplicate, again_duplicate) == (False, True)
    assert not first.duplicate and again.duplicate
    assert again.received_at.ToDatetime(tzinfo=UTC) == first_at
    again.duplicate = False
    assert again == first
    assert first.item_count == 2 and first.content_digest == request.content_digest
    assert len(store.deliveries()) == 1
    assert store.delivered_items(request.delivery_id) == list(request.items)
    assert len(store.delivered_items()) == 2


def test_a_delivery_naming_an_item_twice_stores_nothing(store: SandboxStore) -> None:
    request = _delivery()
    request.items.append(request.items[0])

    with pytest.raises(DuplicateItemError):
        store.receive_delivery(request)

    assert store.deliveries() == []
    assert store.delivered_items() == []


def test_every_demo_child_is_obviously_fictional() -> None:
    for child in DEMO_CHILDREN:
        assert child.family_name.endswith("-Test")
        assert child.nhs_number.startswith("999") and len(child.nhs_number) == 10
        # The NHS modulus 11 check digit holds, so systems that validate numbers accept them.
        total = sum(int(d) * w for d, w in zip(child.nhs_number[:9], range(10, 1, -1), strict=True))
        assert (11 - total % 11) % 11 == int(child.nhs_number[9])


@pytest.mark.parametrize(
    ("agency_id", "held"),
    [
        ("oakfield-primary", {pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
                              pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
                              pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT}),
        ("northshire-gp", {pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
                           pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT}),
        ("northshire-csc", {pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT,
                            pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
                            pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT}),
        ("county-police", {pb.INFORMATION_CATEGORY_POLICE_INCIDENTS,
                           pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT}),
        ("riverside-housing", {pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT,
                               pb.INFORMATION_CATEGORY_WELFARE_CONCERNS}),
    ],
)  # fmt: skip
def test_each_kind_of_agency_holds_its_categories_for_every_child(
    tmp_path: Path, agency_id: str, held: set[int]
) -> None:
    store = SandboxStore(tmp_path / "sandbox.db")
    seed_store(store, agency_id)

    assert store.held_categories() == held
    kinds: Counter[int] = Counter()
    for child in DEMO_CHILDREN:
        items = store.records_for(child, ALL_CATEGORIES)
        per_category = Counter(item.category for item in items)
        assert set(per_category) == held
        assert all(1 <= count <= 3 for count in per_category.values())
        assert [item.item_id for item in items] == [
            f"{agency_id}-{child.key}-{n}" for n in range(1, len(items) + 1)
        ]
        kinds.update(item.kind for item in items)
    assert set(kinds) == {pb.ITEM_KIND_FACT, pb.ITEM_KIND_OPINION}
