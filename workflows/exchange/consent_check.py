"""The consent check of an exchange: the holder's system is asked for its consent record
first; where that does not cover the request, the holder practitioner records consent (which
the holder's system must confirm when it is recorded as given) or why it is not sought.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import agency_calls
from workflows.agency_calls import NOTIFY_BURST, Failed
from workflows.commands import refuse_if
from workflows.domain.consent import (
    Asked,
    Cover,
    consent_cover,
    consent_cover_by_category,
    consent_facts,
)
from workflows.domain.exchange_commands import ConsentChecked, RecordConsent
from workflows.domain.refusal import Rule
from workflows.domain.vocabulary import State, actor_of, code, timestamp
from workflows.exchange import patches
from workflows.exchange.delivery import nothing_to_share

with workflow.unsafe.imports_passed_through():
    from activities.agency import error_code
    from activities.names import LOOKUP_CONSENT
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState


def by_category(x: ExchangeState) -> None:
    """Judge consent per category asked (the record lists each one)."""
    x.model.per_category = True
    x.model.asked = frozenset(x.asked_names())
    x.record.categories.extend(pb.CategoryDecision(category=c) for c in x.asked_categories())


async def check(x: ExchangeState) -> None:
    """Ask the holder's system for its consent record and whether it covers the request."""
    lookup = agency_calls.start(
        LOOKUP_CONSENT, x.lookup_request(), agency_pb.LookupConsentResponse,
        agency_id=x.holder, summary=f"Look up consent at {x.holder}",
    )  # fmt: skip
    if x.prompt_withdrawal:
        # 👉 A withdrawal closes the exchange at once (its view says CLOSED from then): the
        # lookup in flight is cancelled rather than waited for, so the workflow ends too.
        await workflow.wait_condition(lambda: lookup.done() or x.model.state is State.CLOSED)
        if not lookup.done():
            lookup.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await lookup
            x.note("ConsentLookupCancelled", x.holder, "", "withdrawn")
            return
    try:
        response = await lookup
    except ActivityError as err:
        nothing_to_share(x, f"consent_lookup_refused:{error_code(err)}")
        return
    if x.model.check(ConsentChecked(covers=False)) is not None:
        return  # withdrawn while the lookup ran
    _checked(x, response.consent)


def _checked(x: ExchangeState, consent: pb.ConsentRecord) -> None:
    """Record the holder's system's consent record and what it covers."""
    x.record.consent.CopyFrom(consent)
    found = cover(x, consent)
    covered: frozenset[str] = frozenset()
    detail = ""
    if x.model.per_category:
        by_category = consent_cover_by_category(
            consent_facts(consent), _asked(x, set(x.asked_names()))
        )
        covered = frozenset(c for c, each in by_category.items() if each.covers)
        detail = f" covered={len(covered)}/{len(by_category)}"
    x.note("ConsentChecked", x.holder, "",
           f"status={pb.ConsentStatus.Name(consent.status)} covers={found.covers}"
           + detail + " " + " ".join(found.reasons))  # fmt: skip
    x.consent_integrity = x.patched(patches.CONSENT_INTEGRITY)
    status = code(pb.ConsentStatus, consent.status)
    x.model.apply(
        ConsentChecked(
            covers=found.covers,
            system_status=status if x.consent_integrity else "",
            covered=covered,
        )
    )
    x.publish()


def _asked(x: ExchangeState, categories: set[str]) -> Asked:
    return Asked(
        purpose=pb.Purpose.Name(x.request.purpose),
        recipient=x.recipient,
        categories=categories,
        at=workflow.now(),
    )


def cover(x: ExchangeState, consent: pb.ConsentRecord) -> Cover:
    """Whether ``consent`` covers what the exchange still has to decide, and why not."""
    categories = {pb.InformationCategory.Name(c.category) for c in x.request.categories}
    if x.model.per_category and x.model.authorised:
        # Part is shared on consent already: a recorded consent need cover only the rest.
        categories = set(x.model.undecided)
    return consent_cover(consent_facts(consent), _asked(x, categories))


async def record(x: ExchangeState, decided: pb.ConsentDecision) -> None:
    """The holder practitioner's consent decision (``decided``, canonical), recorded.

    Raises:
        ApplicationError: the holder's system does not confirm a consent recorded as given.
    """
    decided.decided_at.CopyFrom(timestamp(workflow.now()))
    confirmed: pb.ConsentRecord | None = None
    if (
        x.consent_integrity
        and decided.HasField("consent")
        and decided.consent.status == pb.CONSENT_STATUS_GIVEN
    ):
        confirmed = await _confirmed(x, decided)
    x.record.consent_decision.CopyFrom(decided)
    if confirmed is not None:
        # The holder's system confirmed it: its record is the consent the case relies on.
        found = cover(x, confirmed)
        covers, detail = found.covers, " ".join((*found.reasons, "confirmed_by_system"))
        x.record.consent.CopyFrom(confirmed)
    elif decided.HasField("consent"):
        found = cover(x, decided.consent)
        covers, detail = found.covers, " ".join(found.reasons)
        x.record.consent.CopyFrom(decided.consent)
    else:
        covers = False
        detail = pb.NotSoughtReason.Name(decided.not_sought.reason)
        x.record.consent.status = pb.CONSENT_STATUS_NOT_SOUGHT
    x.note("ConsentRecorded", decided.actor.agency_id, decided.actor.practitioner.user_id,
           f"covers={covers} {detail}".strip())  # fmt: skip
    x.model.apply(command(decided, covers))
    x.publish()


async def _confirmed(x: ExchangeState, decided: pb.ConsentDecision) -> pb.ConsentRecord:
    """The holder's system's own record of a consent a practitioner records as given,
    looked up afresh through the holder's adapter.

    Raises:
        ApplicationError: the system does not confirm a consent that covers the request,
            cannot be asked, or the exchange moved on while it was asked.
    """
    response = await agency_calls.attempt(
        LOOKUP_CONSENT, x.lookup_request(), agency_pb.LookupConsentResponse,
        agency_id=x.holder, retry=NOTIFY_BURST, summary=f"Confirm recorded consent at {x.holder}",
    )  # fmt: skip
    if isinstance(response, Failed):
        _refuse(x, decided, f"consent_not_confirmed:lookup_{response.code}")
    found = cover(x, response.consent)
    if not found.covers:
        _refuse(x, decided, " ".join(("consent_not_confirmed", *found.reasons)))
    # The exchange may have moved on while the system was asked.
    refuse_if(x.model.check(command(decided, True)))
    return response.consent


def _refuse(x: ExchangeState, decided: pb.ConsentDecision, reason: str) -> NoReturn:
    x.note("ConsentNotConfirmed", decided.actor.agency_id, decided.actor.practitioner.user_id,
           reason)  # fmt: skip
    x.publish()
    raise ApplicationError(
        "the holder's system does not confirm this consent: " + reason,
        type=Rule.NOT_PERMITTED.value,
    )


def validate(x: ExchangeState, decision: pb.ConsentDecision) -> None:
    """Refuse a consent decision (canonical) that is incomplete or out of turn.

    Raises:
        ApplicationError: the rule it breaks.
    """
    covers = decision.HasField("consent") and cover(x, decision.consent).covers
    refuse_if(x.model.check(command(decision, covers)))


def command(decision: pb.ConsentDecision, covers: bool) -> RecordConsent:
    """The model's command for a consent decision."""
    return RecordConsent(actor_of(decision.actor), decision, covers)
