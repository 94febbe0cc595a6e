"""Consent: whether a consent record covers what a request asks, as a whole or per category,
and what a practitioner's consent decision must hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.refusal import Violation
from workflows.domain.vocabulary import code


@dataclass(frozen=True)
class Consent:
    """The facts of a consent record that decide whether it covers a request."""

    status: str
    purposes: Collection[str]
    recipients: Collection[str]
    categories: Collection[str]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None


@dataclass(frozen=True)
class Asked:
    """What a request asks of one holder: purpose, recipient and categories, and when."""

    purpose: str
    recipient: str
    categories: Collection[str]
    at: dt.datetime


@dataclass(frozen=True)
class Cover:
    """Whether consent covers a request and, if not, every reason why not (as codes)."""

    covers: bool
    reasons: tuple[str, ...]


def consent_cover(consent: Consent, asked: Asked) -> Cover:
    """Decide whether ``consent`` covers what is ``asked``.

    Consent covers a request only when it was given, is in its period, and names the purpose,
    the recipient (or any recipient) and every category asked for.
    """
    reasons: list[str] = []
    if consent.status != "GIVEN":
        reasons.append(f"consent_{consent.status.lower()}")
    else:
        if consent.valid_from is not None and asked.at < consent.valid_from:
            reasons.append("consent_not_yet_valid")
        if consent.valid_until is not None and asked.at >= consent.valid_until:
            reasons.append("consent_expired")
        if asked.purpose not in consent.purposes:
            reasons.append("purpose_not_covered")
        if consent.recipients and asked.recipient not in consent.recipients:
            reasons.append("recipient_not_covered")
        missing = sorted(set(asked.categories) - set(consent.categories))
        reasons.extend(f"category_not_covered:{category}" for category in missing)
    return Cover(covers=not reasons, reasons=tuple(reasons))


def consent_cover_by_category(consent: Consent, asked: Asked) -> dict[str, Cover]:
    """Per category asked: whether ``consent`` covers it, and every reason why not.

    The reasons that concern the whole record (not given, out of its period, purpose or
    recipient not named) apply to every category; a category the record does not name is
    not covered on its own.
    """
    whole = consent_cover(consent, Asked(asked.purpose, asked.recipient, (), asked.at)).reasons
    found = {}
    for category in sorted(set(asked.categories)):
        reasons = list(whole)
        if consent.status == "GIVEN" and category not in consent.categories:
            reasons.append(f"category_not_covered:{category}")
        found[category] = Cover(covers=not reasons, reasons=tuple(reasons))
    return found


def consent_facts(consent: pb.ConsentRecord) -> Consent:
    """The facts of a consent record that decide cover."""
    return Consent(
        status=code(pb.ConsentStatus, consent.status),
        purposes={pb.Purpose.Name(p) for p in consent.purposes},
        recipients=set(consent.recipient_agency_ids),
        categories={pb.InformationCategory.Name(c) for c in consent.categories},
        valid_from=consent.valid_from.ToDatetime(dt.UTC)
        if consent.HasField("valid_from")
        else None,
        valid_until=(
            consent.valid_until.ToDatetime(dt.UTC) if consent.HasField("valid_until") else None
        ),
    )


def practitioner_missing(prefix: str, practitioner: pb.Practitioner) -> list[Violation]:
    """The deciding practitioner's user id and role, each when empty (under ``prefix``)."""
    found = []
    if not practitioner.user_id:
        found.append(Violation(f"{prefix}.practitioner.user_id"))
    if not practitioner.role:
        found.append(Violation(f"{prefix}.practitioner.role"))
    return found


def missing_decision_fields(decision: pb.ConsentDecision) -> list[Violation]:
    """What a consent decision must hold and does not: who decided, and either the consent
    record's status or why consent is not sought, explained."""
    found = practitioner_missing("decision.actor", decision.actor.practitioner)
    which = decision.WhichOneof("decision")
    if which is None:
        found.append(Violation("decision.consent|decision.not_sought"))
    elif which == "consent" and decision.consent.status == pb.CONSENT_STATUS_UNSPECIFIED:
        found.append(Violation("decision.consent.status"))
    elif which == "not_sought":
        if decision.not_sought.reason == pb.NOT_SOUGHT_REASON_UNSPECIFIED:
            found.append(Violation("decision.not_sought.reason"))
        if not decision.not_sought.explanation:
            found.append(Violation("decision.not_sought.explanation"))
    return found
