"""Why a command is refused: the rule it breaks, a message, and the fields at fault.

A refusal travels from a workflow to the gateway as an ``ApplicationError`` whose type is the
rule and whose one detail is ``details(refusal)``: the field violations as plain data, which
the gateway turns into ``google.rpc.BadRequest`` field violations as they are. Messages and
descriptions hold codes, field paths and agency ids only, never a value a caller sent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

REQUIRED = "required"
"""The description of a field that must be set and is not."""


class Rule(enum.Enum):
    """Why a command is refused. Values are ``ApplicationError.type`` strings."""

    OUT_OF_TURN = "OutOfTurn"
    NOT_PERMITTED = "NotPermitted"
    INVALID = "Invalid"


@dataclass(frozen=True)
class Violation:
    """One field of a command at fault: its path in the request and what is wrong with it."""

    field: str
    description: str = REQUIRED


@dataclass(frozen=True)
class Refusal:
    """Why a command was refused: the rule, a message with codes only, and the fields at
    fault (for an incomplete or invalid command)."""

    rule: Rule
    message: str
    violations: tuple[Violation, ...] = ()


def incomplete(violations: Iterable[Violation]) -> Refusal | None:
    """The refusal of a command with these fields missing or invalid, or None if none is.

    Its message lists them: ``required: a.b, c (why)``.
    """
    found = tuple(violations)
    if not found:
        return None
    items = (
        v.field if v.description == REQUIRED else f"{v.field} ({v.description})" for v in found
    )
    return Refusal(Rule.INVALID, "required: " + ", ".join(items), found)


def missing(*fields: str) -> Refusal:
    """The refusal of a command whose ``fields`` are required and not set."""
    refusal = incomplete(Violation(field) for field in fields)
    assert refusal is not None, "name at least one field"
    return refusal


def out_of_turn(allowed: bool, state: enum.Enum) -> Refusal | None:
    """The refusal of a command not allowed in ``state`` (a step's enum, whose value is its
    code), or None if it is allowed."""
    return None if allowed else Refusal(Rule.OUT_OF_TURN, f"not allowed while {state.value}")


def details(refusal: Refusal) -> list[dict[str, str]]:
    """The field violations of ``refusal`` as an ``ApplicationError`` detail (plain data)."""
    return [{"field": v.field, "description": v.description} for v in refusal.violations]


def violations_in(failure_details: Sequence[object]) -> tuple[Violation, ...]:
    """The field violations an ``ApplicationError``'s details carry (``details``), if any."""
    if not failure_details or not isinstance(failure_details[0], list):
        return ()
    return tuple(
        Violation(str(item["field"]), str(item["description"]))
        for item in failure_details[0]
        if isinstance(item, dict) and "field" in item and "description" in item
    )
