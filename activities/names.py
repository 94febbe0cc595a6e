"""Names of the hub's own activities, which run on the hub task queue."""

from __future__ import annotations

PROTOCOL_GATE = "hub.ProtocolGate"
"""Takes ``sharing.v1.GateCheck``, returns ``sharing.v1.GateResult``."""

NOTIFY_OPERATOR = "hub.NotifyOperator"
"""Takes ``sharing.v1.Escalation``, returns nothing: tells the partnership operator."""
