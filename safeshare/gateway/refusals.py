"""Workflow refusals as gRPC statuses: an update a workflow validator refused becomes the
status the caller receives, with a field violation for each field the refusal names.

A refusal's ``ApplicationError`` type is the rule it broke (``workflows.domain.refusal.Rule``): out
of turn, not permitted, or invalid; an invalid command's one detail lists the fields at fault
(``workflows.domain.refusal.details``), which become the status's field violations as they are.
"""

from __future__ import annotations

from typing import Protocol

import grpc
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from safeshare.gateway.errors import GatewayError
from safeshare.gateway.fields import (
    FieldViolation,
)
from workflows.commands import REUSED, REUSED_MESSAGE
from workflows.domain.refusal import Rule, violations_in


class _Command(Protocol):
    """The command a refusal answers: its field in the request and where a refusal that
    names no field is reported (default: ``field``)."""

    @property
    def field(self) -> str: ...

    @property
    def fallback_field(self) -> str: ...


_RULE_CODES = {
    Rule.OUT_OF_TURN.value: grpc.StatusCode.FAILED_PRECONDITION,
    Rule.NOT_PERMITTED.value: grpc.StatusCode.PERMISSION_DENIED,
    Rule.INVALID.value: grpc.StatusCode.INVALID_ARGUMENT,
}


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
        violations = _violations_in(cause, command)
    return GatewayError(code, cause.message, violations)


def _violations_in(cause: ApplicationError, command: _Command) -> list[FieldViolation]:
    """The fields a refusal names in its details, as they are; a refusal that names none is
    one violation on the command's fallback field, described by the refusal's message."""
    named = violations_in(cause.details)
    if not named:
        return [FieldViolation(command.fallback_field or command.field, cause.message)]
    return [FieldViolation(v.field, v.description) for v in named]
