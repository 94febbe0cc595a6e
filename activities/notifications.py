"""Telling the partnership operator: the last rung of every escalation ladder."""

from __future__ import annotations

import structlog
from temporalio import activity

from activities.names import NOTIFY_OPERATOR
from protos.sharing.v1 import case_pb2 as pb

log = structlog.get_logger("safeshare.operator")


class OperatorNotifications:
    """Alerts for the partnership operator. Today they are structured log lines at WARNING
    (``operator_alert``), which the operators' log pipeline pages on; the case itself shows
    ``WaitingOn='OPERATOR'`` or the escalation in its record and search attributes."""

    @activity.defn(name=NOTIFY_OPERATOR)
    async def notify(self, escalation: pb.Escalation) -> None:
        """Raise an operator alert for a missed deadline or a failing delivery."""
        info = activity.info()
        log.warning(
            "operator_alert",
            workflow_id=info.workflow_id,
            step=escalation.step,
            level=escalation.level,
            agency_id=escalation.agency_id,
        )
