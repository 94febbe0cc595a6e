"""The names of every activity SafeShare's workflows call: the hub's own, on the hub task
queue, and the agency activities that each agency's adapter worker implements on
``agency.<agency-id>`` (:func:`activities.agency.agency_task_queue`).

👉 These strings are activity types in every recorded history: changing one breaks replay.
"""

from __future__ import annotations

# -- the hub's activities -----------------------------------------------------------------------

PROTOCOL_GATE = "hub.ProtocolGate"
"""Takes ``sharing.v1.GateCheck``, returns ``sharing.v1.GateResult``."""

DISCLOSURE_GATE = "hub.DisclosureGate"
"""Takes ``sharing.v1.DisclosureGateCheck``, returns ``sharing.v1.DisclosureGateResult``: the
protocol gate for a disclosure (holder and recipients), with its routing and calendars."""

NOTIFY_OPERATOR = "hub.NotifyOperator"
"""Takes ``sharing.v1.Escalation``, returns nothing: tells the partnership operator."""
APPROVERS_OF = "hub.ApproversOf"
"""The approvers the partnership registry names for an agency."""

NOTICE_SEAL = "hub.NoticeSeal"
"""Takes ``sharing.v1.ConsentWithdrawalNoticeInput``, returns ``sharing.v1.GateResult``: whether
the gateway sealed the notice for its workflow (no protocol check: the case passed its gate)."""

GATHER_REVIEW_FIGURES = "hub.GatherReviewFigures"
"""Takes ``ReviewWindow``, returns ``ReviewFigures``."""
WRITE_REVIEW_REPORT = "hub.WriteReviewReport"
"""Takes ``ReviewReport``, returns ``ReviewFiles``."""

# -- the agency activities, implemented by each agency's adapter worker ---------------------------

LOOKUP_CONSENT = "agency.LookupConsent"
"""Takes ``agency.v1.LookupConsentRequest``, returns its response."""
EXTRACT_RECORDS = "agency.ExtractRecords"
"""Takes ``agency.v1.ExtractRecordsRequest``, returns its response."""
RECEIVE_DELIVERY = "agency.ReceiveDelivery"
"""Takes ``agency.v1.ReceiveDeliveryRequest``, returns its response."""
NOTIFY_PRACTITIONER = "agency.NotifyPractitioner"
"""Takes ``agency.v1.NotifyPractitionerRequest``, returns ``NotifyPractitionerResponse``."""
RECEIVE_CONSENT_WITHDRAWN = "agency.ReceiveConsentWithdrawn"
"""Takes ``agency.v1.ReceiveConsentWithdrawnRequest``, returns its response."""
