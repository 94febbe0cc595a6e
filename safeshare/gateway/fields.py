"""Checks on one field of a Case API request: an id or code, free text, an enum, a
practitioner, a subject. Each returns the field's violations by path, never the value sent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.practitioners import canonical_user_id

MAX_ID_LENGTH = 128
"""User ids, roles, relationships and reason codes: short codes in the agencies' systems."""
MAX_TEXT_LENGTH = 4000
"""Free text (statements, explanations, feedback): generous, but bounded so a decision
record stays far below Temporal's payload limits."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NHS_NUMBER = re.compile(r"^\d{10}$")


@dataclass(frozen=True)
class FieldViolation:
    """One thing wrong with a request: the field path and what is wrong with it."""

    field: str
    description: str


def _actor(path: str, actor: pb.Actor) -> list[FieldViolation]:
    # actor.agency_id is not checked: the servicer overwrites it with the caller.
    return _practitioner(f"{path}.actor.practitioner", actor.practitioner)


def _practitioner(path: str, practitioner: pb.Practitioner) -> list[FieldViolation]:
    found = _code(f"{path}.user_id", practitioner.user_id, required=True) + _code(
        f"{path}.role", practitioner.role, required=True
    )
    if not found and canonical_user_id(practitioner.user_id) is None:
        # Compared and recorded canonical (NFKC, case-folded, trimmed): it must have a form.
        found.append(FieldViolation(f"{path}.user_id", "letters, digits and . _ @ - only"))
    return found


def _code(path: str, value: str, required: bool = False) -> list[FieldViolation]:
    """An id or code: short and printable."""
    if not value.strip():
        return [FieldViolation(path, "required")] if required else []
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        return [FieldViolation(path, f"must be at most {MAX_ID_LENGTH} printable characters")]
    return []


def _text(path: str, value: str, required: bool = False) -> list[FieldViolation]:
    if required and not value.strip():
        return [FieldViolation(path, "required")]
    if len(value) > MAX_TEXT_LENGTH:
        return [FieldViolation(path, f"must be at most {MAX_TEXT_LENGTH} characters")]
    return []


def _enum(path: str, enum: _ProtoEnum, value: int, required: bool) -> list[FieldViolation]:
    if value == 0:
        return [FieldViolation(path, "required")] if required else []
    if value not in enum.values():
        return [FieldViolation(path, f"unknown value {value}")]
    return []


def _enums(path: str, enum: _ProtoEnum, values: Sequence[int]) -> list[FieldViolation]:
    return [
        FieldViolation(f"{path}[{i}]", "required" if value == 0 else f"unknown value {value}")
        for i, value in enumerate(values)
        if not _known(enum, value)
    ]


def _subject_violations(path: str, subject: pb.Subject, today: dt.date) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    found.extend(_enum(f"{path}.role", pb.SubjectRole, subject.role, required=True))
    if not subject.given_name.strip():
        found.append(FieldViolation(f"{path}.given_name", "required"))
    if not subject.family_name.strip():
        found.append(FieldViolation(f"{path}.family_name", "required"))
    dob_problem = _date_of_birth_problem(subject.date_of_birth, today)
    if dob_problem:
        found.append(FieldViolation(f"{path}.date_of_birth", dob_problem))
    if subject.nhs_number and not _NHS_NUMBER.fullmatch(subject.nhs_number):
        found.append(FieldViolation(f"{path}.nhs_number", "must be 10 digits"))
    return found


def _date_of_birth_problem(value: str, today: dt.date) -> str | None:
    if not value:
        return "required"
    # fromisoformat alone also accepts forms such as 20200101 and 2020-W01-1.
    if not _DATE.fullmatch(value):
        return "must be a date YYYY-MM-DD"
    try:
        born = dt.date.fromisoformat(value)
    except ValueError:
        return "must be a date YYYY-MM-DD"
    if born > today:
        return "must not be in the future"
    return None


class _ProtoEnum(Protocol):
    def values(self) -> Sequence[int]: ...


def _known(enum: _ProtoEnum, value: int) -> bool:
    """Set, and one of the enum's values: proto3 enums accept unknown numbers on the wire."""
    return value != 0 and value in enum.values()
