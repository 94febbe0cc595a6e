"""Names one workflow uses to address another, so that SharingCase can start and signal its
HolderExchange children without importing ``workflows.holder_exchange``.

👉 The sandbox re-imports a workflow's module, and everything it imports that is not passed
through, for every new run; importing the exchange's module from the case's doubled the case's
import cost (bench/: the hub's largest cost after the pure modules were passed through).
These strings are in every history: changing one breaks replay.
"""

from __future__ import annotations

HOLDER_EXCHANGE = "HolderExchange"
"""The exchange workflow's type."""
WITHDRAW_EXCHANGE = "withdraw"
"""Signal: the requester withdrew the request (``RequestWithdrawal``)."""
CHANGE_EXCHANGE_URGENCY = "change_urgency"
"""Signal: the requester re-rated the urgency (``UrgencyChange``)."""
DISCLOSURE_CASE = "DisclosureCase"
"""The disclosure case workflow's type."""
