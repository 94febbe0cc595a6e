"""Acknowledgement: the recipient says it received (or actioned) what was shared. What an
acknowledgement must hold, for an exchange and for a disclosure alike.
"""

from __future__ import annotations

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.refusal import Violation


def missing_fields(status: pb.AcknowledgementStatus.ValueType, user_id: str) -> list[Violation]:
    """What an acknowledgement must hold and does not: its status (received or actioned)
    and who acknowledged."""
    found = []
    if status == pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED:
        found.append(Violation("acknowledgement.status"))
    if not user_id:
        found.append(Violation("acknowledgement.practitioner.user_id"))
    return found
