"""Why an Update to a case was rejected: ``ApplicationError.type`` values the gateway maps
to gRPC status codes. Messages carry codes and agency ids only, never personal data."""

from __future__ import annotations


class Rejection:
    """``ApplicationError.type`` values raised by update validators."""

    OUT_OF_TURN = "OutOfTurn"
    """The case is not at the step this decision belongs to (FAILED_PRECONDITION)."""
    NOT_PERMITTED = "NotPermitted"
    """The acting agency or user may not make this decision (PERMISSION_DENIED)."""
    INVALID = "Invalid"
    """The decision is incomplete or malformed (INVALID_ARGUMENT)."""
