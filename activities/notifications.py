"""Telling the partnership operator: the last rung of every escalation ladder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog
from temporalio import activity

from activities.names import NOTIFY_OPERATOR
from protos.sharing.v1 import case_pb2 as pb

log = structlog.get_logger("safeshare.operator")


@dataclass(frozen=True)
class OperatorAlert:
    """One operator alert as operators see it: which case, which step, which rung, and why.

    Every field is a reference or a code: the case ref is a digest, non-identifying.
    """

    case_ref: str
    step: str
    rung: str
    reason: str
    """``deadline_missed``, ``delivery_failing``, ``notification_refused`` (an agency's system
    refused a reminder or escalation) or ``justification_rejected``."""
    agency_id: str
    """The agency whose move it is (the recipient for deliveries and acknowledgements)."""
    urgency: str


class AlertBoard(Protocol):
    """Where open operator alerts are kept and exported (``safeshare.alerts`` in the hub)."""

    async def raised(self, workflow_id: str, escalation: pb.Escalation) -> OperatorAlert:
        """Open an alert for ``escalation`` raised by the workflow ``workflow_id``."""
        ...


class OperatorNotifications:
    """Alerts for the partnership operator: an ``operator_alert`` log line at WARNING naming
    the case ref, the step and the rung, and an open alert on the board, which the hub exports
    as ``safeshare_operator_alerts_open`` for Prometheus to alert on (``ops/prometheus/``).
    The case itself shows ``WaitingOn='OPERATOR'`` or the escalation in its record and search
    attributes."""

    def __init__(self, board: AlertBoard) -> None:
        self._board = board

    @activity.defn(name=NOTIFY_OPERATOR)
    async def notify(self, escalation: pb.Escalation) -> None:
        """Raise an operator alert for a missed deadline or a failing delivery."""
        workflow_id = activity.info().workflow_id
        assert workflow_id is not None  # only workflows schedule this activity
        alert = await self._board.raised(workflow_id, escalation)
        log.warning(
            "operator_alert",
            case_ref=alert.case_ref,
            step=alert.step,
            rung=alert.rung,
            reason=alert.reason,
            urgency=alert.urgency,
            agency_id=alert.agency_id,
        )
