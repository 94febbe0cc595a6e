"""The chaos checker's rule for a disclosure's delivery, on made-up records (no stack): the
rule must refuse each missing part of a basis, or a chaos run could pass vacuously."""

from __future__ import annotations

from typing import Any, cast

import pytest

from protos.sharing.v1 import case_pb2 as pb
from tests.chaos.checker import Checker, StoredDelivery
from tests.disclosure_factories import POLICE, SCHOOL, encompass


def _record() -> pb.DecisionRecord:
    record = pb.DecisionRecord(case_ref="a" * 20)
    record.gate.passed = True
    told = record.disclosure
    told.holding_agency_id = POLICE
    told.disclosure.CopyFrom(encompass(recipients=(SCHOOL,)))
    told.disclosure.consent.without_consent.reason = "statutory duty"
    told.recipients.add(recipient_agency_id=SCHOOL)
    return record


def _problems(record: pb.DecisionRecord, recipient: str = SCHOOL) -> dict[str, list[str]]:
    checker = Checker(cast(Any, None), [])
    delivery = StoredDelivery(recipient, f"{'a' * 20}.{recipient}.1", "a" * 20, POLICE, ())
    checker._disclosure_justified(delivery, record)
    return {kind: found for kind, found in checker.report.problems.items() if found}


def test_a_disclosure_delivered_on_its_basis_is_justified() -> None:
    assert _problems(_record()) == {}


def _gate_failed(record: pb.DecisionRecord) -> None:
    record.gate.passed = False


def _no_lawful_basis(record: pb.DecisionRecord) -> None:
    record.disclosure.disclosure.consent.without_consent.lawful_basis = ""


def _approver_said_no(record: pb.DecisionRecord) -> None:
    record.disclosure.approval.approve = False


def _another_holder(record: pb.DecisionRecord) -> None:
    record.disclosure.holding_agency_id = "riverside-gp"


@pytest.mark.parametrize(
    "broken", [_gate_failed, _no_lawful_basis, _approver_said_no, _another_holder]
)
def test_a_disclosure_delivered_without_any_part_of_its_basis_is_a_problem(broken: Any) -> None:
    record = _record()
    broken(record)
    assert _problems(record) == {"delivered without a basis": [f"{'a' * 20}:disclosure"]}


def test_a_disclosure_stored_by_an_agency_it_was_not_routed_to_is_a_problem() -> None:
    assert _problems(_record(), recipient="northshire-csc") == {
        "delivered without a basis": [f"{'a' * 20}:disclosure"]
    }
