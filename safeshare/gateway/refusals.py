"""Workflow refusals as gRPC statuses: an update a workflow validator refused becomes the
status the caller receives, with a field violation for each field the refusal names.

A refusal's ``ApplicationError`` type is the rule it broke (``workflows.domain.refusal.Rule``): out
of turn, not permitted, or invalid; an invalid command's message names its fields as
``required: a.b, c (why)``.
"""

from __future__ import annotations

import re
from typing import Protocol

import grpc
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from safeshare.gateway.errors import GatewayError
from safeshare.gateway.validation import FieldViolation
from workflows.commands import REUSED, REUSED_MESSAGE
from workflows.domain.refusal import Rule


class _Command(Protocol):
    """The command a refusal answers: its field in the request (which prefixes its field
    paths) and where a refusal that names no field is reported (default: ``field``)."""

    @property
    def field(self) -> str: ...

    @property
    def fallback_field(self) -> str: ...


_RULE_CODES = {
    Rule.OUT_OF_TURN.value: grpc.StatusCode.FAILED_PRECONDITION,
    Rule.NOT_PERMITTED.value: grpc.StatusCode.PERMISSION_DENIED,
    Rule.INVALID.value: grpc.StatusCode.INVALID_ARGUMENT,
}
# "required: a.b, c (why)": the workflow validators' form for incomplete commands.
_REQUIRED = "required: "
_REQUIRED_ITEM = re.compile(r"^(?P<field>\S+)(?: \((?P<why>.*)\))?$")


def _reused() -> GatewayError:
    """ALREADY_EXISTS: the caller's command id was applied with other content."""
    return GatewayError(
        grpc.StatusCode.ALREADY_EXISTS,
        REUSED_MESSAGE,
        [FieldViolation("command_id", "already used for another command in this case")],
    )


def _refusal(err: WorkflowUpdateFailedError, command: _Command) -> GatewayError | None:
    """The status for an update a workflow validator refused, or None if not a refusal."""
    cause = err.cause
    if not isinstance(cause, ApplicationError):
        return None
    if cause.type == REUSED:
        return _reused()
    code = _RULE_CODES.get(cause.type or "")
    if code is None:
        return None
    # Refusal messages hold codes, field paths and agency ids only (workflows/domain/refusal.py).
    violations: list[FieldViolation] = []
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = _violations_in(cause.message, command)
    return GatewayError(code, cause.message, violations)


def _violations_in(message: str, command: _Command) -> list[FieldViolation]:
    """Field violations from a validator's message: ``required: a.b, c (why)``, or one
    violation on the command's fallback field for any other message."""
    if not message.startswith(_REQUIRED):
        return [FieldViolation(command.fallback_field or command.field, message)]
    found = []
    for item in message.removeprefix(_REQUIRED).split(", "):
        named = _REQUIRED_ITEM.match(item.strip())
        if named is None:
            continue
        field = named["field"]
        if field != command.field and not field.startswith(f"{command.field}."):
            field = f"{command.field}.{field}"
        found.append(FieldViolation(field, named["why"] or "required"))
    return found or [FieldViolation(command.field, message)]
