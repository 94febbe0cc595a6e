"""Names of the hub's own activities, which run on the hub task queue."""

from __future__ import annotations

PROTOCOL_GATE = "hub.ProtocolGate"
"""Takes ``sharing.v1.GateCheck``, returns ``sharing.v1.GateResult``."""

DISCLOSURE_GATE = "hub.DisclosureGate"
"""Takes ``sharing.v1.DisclosureGateCheck``, returns ``sharing.v1.DisclosureGateResult``: the
protocol gate for a disclosure (holder and recipients), with its routing and calendars."""

NOTIFY_OPERATOR = "hub.NotifyOperator"
"""Takes ``sharing.v1.Escalation``, returns nothing: tells the partnership operator."""
APPROVERS_OF = "hub.ApproversOf"
"""The approvers the partnership registry names for an agency."""
