"""The hub's board of open operator alerts, and the counts of open and overdue exchanges,
exported as metrics.

The NotifyOperator activity opens an alert here (``raised``); ``watch`` runs beside the hub
worker and resolves each alert once its case has moved on, and counts the open exchanges past
their deadline by urgency, and the open disclosures whose acknowledgement is overdue by kind.
Prometheus alerts on the series (``ops/prometheus/``):

- a deadline alert (or a refused notification: the agency's system would not take a reminder)
  is resolved when the exchange's ``NextDeadline`` is no longer the deadline that was missed
  (the step was done, or the urgency moved it), or the exchange closed;
- a delivery alert when the exchange no longer waits on the operator (delivered, withdrawn);
- a rejected share-first justification when the exchange closes.

Alerts live in the hub process: a restarted hub re-opens the delivery alerts of exchanges still
waiting on the operator; deadline alerts raised before the restart stay in the log
(``operator_alert``) and the case's record, not on the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import asdict, dataclass

import structlog
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError

from activities.notifications import OperatorAlert
from protos.sharing.v1 import case_pb2 as pb
from safeshare import metrics
from workflows import search_attributes as sa
from workflows.domain.deadlines import Escalation
from workflows.domain.disclosure import Kind as DisclosureKind
from workflows.domain.vocabulary import Urgency, WaitingOn
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_from_workflow_id

log = structlog.get_logger("safeshare.alerts")

WATCH_INTERVAL = dt.timedelta(seconds=15)
EXCHANGE = "HolderExchange"
DISCLOSURE = "DisclosureCase"


@dataclass
class _Open:
    alert: OperatorAlert
    workflow_id: str
    deadline: dt.datetime | None
    """The exchange's NextDeadline when the alert was raised: the deadline that was missed."""


class OperatorAlerts:
    """Open operator alerts of this hub, kept current against Temporal.

    Args:
        client: the hub's Temporal client (describe, query, count).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._open: dict[tuple[str, str, str], _Open] = {}

    @property
    def open_alerts(self) -> list[OperatorAlert]:
        """The alerts open now."""
        return [entry.alert for entry in self._open.values()]

    async def raised(self, workflow_id: str, escalation: pb.Escalation) -> OperatorAlert:
        """Open an alert for an escalation of the exchange ``workflow_id``."""
        handle = self._client.get_workflow_handle(workflow_id)
        reason = "deadline_missed"
        # 👉 The alert is raised even when Temporal cannot describe the exchange: an operator
        # alert that failed its activity would be retried and never reach anybody.
        attributes = TypedSearchAttributes.empty
        try:
            attributes = (await handle.describe()).typed_search_attributes
            if escalation.step == "override_decision":
                record = await handle.query(HolderExchange.holder_record)
                if record.HasField("share_first") and record.HasField("override_decision"):
                    reason = "justification_rejected"
        except (RPCError, WorkflowQueryFailedError):
            log.warning("operator_alert_undescribed", step=escalation.step)
        if escalation.step == "delivery":
            reason = "delivery_failing"
        elif escalation.step == "notification":
            reason = "notification_refused"
        agency_id = escalation.agency_id or _responsible(escalation.step, attributes)
        alert = OperatorAlert(
            case_ref=case_ref_from_workflow_id(workflow_id),
            step=escalation.step,
            rung=escalation.level,
            reason=reason,
            agency_id=agency_id,
            urgency=attributes.get(sa.URGENCY) or "",
        )
        self._open_alert(alert, workflow_id, attributes.get(sa.NEXT_DEADLINE))
        metrics.count_operator_alert(
            {"reason": reason, "step": alert.step, "rung": alert.rung, "urgency": alert.urgency}
        )
        return alert

    def _open_alert(
        self, alert: OperatorAlert, workflow_id: str, deadline: dt.datetime | None
    ) -> None:
        self._open[(workflow_id, alert.step, alert.reason)] = _Open(alert, workflow_id, deadline)
        metrics.set_operator_alert(asdict(alert), is_open=True)

    async def watch(self, interval: dt.timedelta = WATCH_INTERVAL) -> None:
        """Re-open delivery alerts still standing, then until cancelled: resolve alerts whose
        cases moved on and count overdue exchanges, every ``interval``."""
        await self._reopen_delivery_alerts()
        while True:
            await self.refresh()
            await asyncio.sleep(interval.total_seconds())

    async def refresh(self, now: dt.datetime | None = None) -> None:
        """Resolve the alerts whose cases moved on; count open and overdue exchanges and
        overdue disclosures (overdue as of ``now``, the wall clock by default)."""
        for key, entry in list(self._open.items()):
            with contextlib.suppress(RPCError):  # Temporal away: try again next round
                if await self._resolved(entry):
                    del self._open[key]
                    metrics.set_operator_alert(asdict(entry.alert), is_open=False)
                    log.info("operator_alert_resolved", case_ref=entry.alert.case_ref,
                             step=entry.alert.step, rung=entry.alert.rung,
                             reason=entry.alert.reason)  # fmt: skip
        with contextlib.suppress(RPCError):  # a server without visibility queries (test server)
            await self._count_exchanges(now or dt.datetime.now(dt.UTC))

    async def _resolved(self, entry: _Open) -> bool:
        description = await self._client.get_workflow_handle(entry.workflow_id).describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return True
        attributes = description.typed_search_attributes
        if entry.alert.reason == "delivery_failing":
            return attributes.get(sa.WAITING_ON) != WaitingOn.OPERATOR.value
        if entry.alert.reason in ("deadline_missed", "notification_refused"):
            return attributes.get(sa.NEXT_DEADLINE) != entry.deadline
        return False

    async def _count_exchanges(self, at: dt.datetime) -> None:
        now = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for urgency in Urgency:
            query = (
                f"WorkflowType='{EXCHANGE}' AND ExecutionStatus='Running' "
                f"AND Urgency='{urgency.value}' AND NextDeadline < '{now}'"
            )
            counted = await self._client.count_workflows(query)
            metrics.set_exchanges_overdue(urgency.value, counted.count)
        for waiting_on in WaitingOn:
            if waiting_on is WaitingOn.NOBODY:
                continue
            counted = await self._client.count_workflows(
                f"WorkflowType='{EXCHANGE}' AND ExecutionStatus='Running' "
                f"AND WaitingOn='{waiting_on.value}'"
            )
            metrics.set_exchanges_open(waiting_on.value, counted.count)
        for kind in DisclosureKind:
            # A disclosure waits on its recipients' acknowledgements; its NextDeadline is the
            # earliest one still pending, and stays put once missed (the ladder climbs on it).
            counted = await self._client.count_workflows(
                f"WorkflowType='{DISCLOSURE}' AND ExecutionStatus='Running' "
                f"AND CaseKind='{kind.value}' AND CaseState='AWAITING_ACKNOWLEDGEMENT' "
                f"AND NextDeadline < '{now}'"
            )
            metrics.set_disclosures_overdue(kind.value, counted.count)

    async def _reopen_delivery_alerts(self) -> None:
        query = (
            f"WorkflowType='{EXCHANGE}' AND ExecutionStatus='Running' "
            f"AND WaitingOn='{WaitingOn.OPERATOR.value}'"
        )
        try:
            async for execution in self._client.list_workflows(query):
                attributes = execution.typed_search_attributes
                alert = OperatorAlert(
                    case_ref=case_ref_from_workflow_id(execution.id),
                    step="delivery",
                    rung=Escalation.PARTNERSHIP_OPERATOR.value,
                    reason="delivery_failing",
                    agency_id=attributes.get(sa.REQUESTING_AGENCY) or "",
                    urgency=attributes.get(sa.URGENCY) or "",
                )
                self._open_alert(alert, execution.id, None)
        except (RPCError, ValueError):  # no visibility queries, or not a case's workflow id
            return


def _responsible(step: str, attributes: TypedSearchAttributes) -> str:
    """The agency whose move it was: the recipient acknowledges, the holder does the rest."""
    if step == "recipient_acknowledges":
        return attributes.get(sa.REQUESTING_AGENCY) or ""
    holders = attributes.get(sa.HOLDING_AGENCY) or []
    return holders[0] if holders else ""
