"""The search attributes operators filter cases by. Never personal data: codes only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate, TypedSearchAttributes

CASE_STATE = SearchAttributeKey.for_keyword("CaseState")
URGENCY = SearchAttributeKey.for_keyword("Urgency")
PURPOSE = SearchAttributeKey.for_keyword("Purpose")
REQUESTING_AGENCY = SearchAttributeKey.for_keyword("RequestingAgency")
HOLDING_AGENCY = SearchAttributeKey.for_keyword_list("HoldingAgency")
CONSENT_STATUS = SearchAttributeKey.for_keyword("ConsentStatus")
OVERRIDE_USED = SearchAttributeKey.for_bool("OverrideUsed")
WAITING_ON = SearchAttributeKey.for_keyword("WaitingOn")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
OUTCOME = SearchAttributeKey.for_keyword("Outcome")

# An exchange whose deadline was missed or whose delivery is failing has climbed the escalation
# ladder: operators list these (the "escalated" saved view, safeshare.operators.views).
ESCALATED = SearchAttributeKey.for_bool("Escalated")
# A disclosure case (a holder shared without a request) sets its kind; a request leaves it
# unset. Saved views and `safeshare cases list` tell the two apart by it.
CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")
# The recipients of a disclosure (a request's recipient is its RequestingAgency).
RECIPIENT_AGENCY = SearchAttributeKey.for_keyword_list("RecipientAgency")

ALL = (
    CASE_STATE,
    URGENCY,
    PURPOSE,
    REQUESTING_AGENCY,
    HOLDING_AGENCY,
    CONSENT_STATUS,
    OVERRIDE_USED,
    WAITING_ON,
    NEXT_DEADLINE,
    OUTCOME,
    ESCALATED,
    CASE_KIND,
    RECIPIENT_AGENCY,
)
"""Every attribute, for registering them with a Temporal namespace."""


def changed(
    updates: Sequence[SearchAttributeUpdate[Any]], current: TypedSearchAttributes
) -> list[SearchAttributeUpdate[Any]]:
    """The ``updates`` that would change ``current`` (a workflow's own attributes): an upsert
    that sets a value already there is an event in history that says nothing."""
    found = []
    for update in updates:
        now = current.get(update.key)
        value = update.value
        if isinstance(value, list | tuple) and isinstance(now, list | tuple):
            same = list(value) == list(now)
        else:
            same = value == now
        if not same:
            found.append(update)
    return found
