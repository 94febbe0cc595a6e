"""A decision record as a timeline of steps: what happened, who, when, why, on which basis.

Each entry of the ``DecisionRecord`` (the case's and each holder's) becomes a ``Step``, with the
detail the record holds for that decision (the override's harm statement and legal basis, the
consent checked, the receipt's digest), in time order.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.vocabulary import code


@dataclass(frozen=True)
class Step:
    """One step of a case's timeline: what happened, who, when, why, on which basis."""

    at: dt.datetime | None
    event: str
    kind: str
    holder: str = ""
    agency: str = ""
    user: str = ""
    role: str = ""
    why: str = ""
    basis: str = ""

    @property
    def title(self) -> str:
        """The event name in words: "OverrideProposed" → "Override proposed"."""
        words = "".join(f" {c.lower()}" if c.isupper() else c for c in self.event).strip()
        return words[:1].upper() + words[1:]

    @property
    def who(self) -> str:
        """Agency, user and role, as far as known."""
        person = " ".join(p for p in (self.user, f"({self.role})" if self.role else "") if p)
        return " / ".join(p for p in (self.agency, person) if p)


_KINDS = {
    "RequestReceived": "request", "ProtocolGateChecked": "gate", "ConsentChecked": "consent",
    "ConsentRecorded": "consent", "OverrideProposed": "override", "OverrideApproved": "override",
    "OverrideRejected": "override", "SharedFirst": "share", "DeclinedToShare": "decline",
    "NothingToShare": "decline", "RecordsDelivered": "delivery", "DeliveryFailing": "escalation",
    "Acknowledged": "acknowledgement", "DeadlineMissed": "escalation",
    "ConsentWithdrawn": "withdrawal", "ConsentWithdrawalDelivered": "withdrawal",
    "RequestWithdrawn": "withdrawal", "UrgencyChanged": "urgency", "ExchangeClosed": "close",
    "CaseClosed": "close",
}  # fmt: skip
# Forwarded to every exchange too: shown once, at case level.
_CASE_LEVEL_ONLY = {"RequestWithdrawn", "UrgencyChanged"}


def _time(timestamp: Timestamp) -> dt.datetime | None:
    if not timestamp.seconds and not timestamp.nanos:
        return None
    return timestamp.ToDatetime(tzinfo=dt.UTC)


def enum_name(enum: Any, value: int) -> str:
    """An enum value's name without its type's prefix: CONSENT_STATUS_REFUSED → REFUSED."""
    return code(enum, value)


def _names(enum: Any, values: Any) -> str:
    return ", ".join(enum_name(enum, v) for v in values)


def timeline(record: pb.DecisionRecord) -> list[Step]:
    """Every step of the case and of each holder's exchange, in time order."""
    steps = [_case_step(record, entry, n) for n, entry in _numbered(record.entries)]
    for holder in record.holders:
        for n, entry in _numbered(holder.entries):
            if entry.event not in _CASE_LEVEL_ONLY:
                steps.append(_holder_step(record, holder, entry, n))
    order = {id(step): index for index, step in enumerate(steps)}
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(steps, key=lambda s: (s.at or floor, order[id(s)]))


def _numbered(entries: Any) -> list[tuple[int, pb.DecisionEntry]]:
    """Each entry with how many earlier entries had the same event (to pair with lists)."""
    seen: Counter[str] = Counter()
    numbered = []
    for entry in entries:
        numbered.append((seen[entry.event], entry))
        seen[entry.event] += 1
    return numbered


def _step(entry: pb.DecisionEntry, holder: str = "", **details: str) -> Step:
    details.setdefault("why", entry.detail)
    return Step(at=_time(entry.at), event=entry.event, kind=_KINDS.get(entry.event, "other"),
                holder=holder, agency=details.pop("agency", entry.agency_id),
                user=details.pop("user", entry.user_id), **details)  # fmt: skip


def _case_step(record: pb.DecisionRecord, entry: pb.DecisionEntry, n: int) -> Step:
    request = record.request
    if entry.event == "RequestReceived":
        categories = "; ".join(
            f"{enum_name(pb.InformationCategory, c.category)}: {c.necessity}"
            for c in request.categories
        )
        why = (f"purpose {enum_name(pb.Purpose, request.purpose)}; urgency "
               f"{enum_name(pb.Urgency, request.urgency)}; asked of "
               f"{', '.join(request.holding_agency_ids)}; categories: {categories}")  # fmt: skip
        if not request.family_aware:
            why += f"; family not aware: {request.family_not_aware_reason}"
        return _step(entry, role=request.requester.role, why=why, basis=request.lawful_basis)
    if entry.event == "ProtocolGateChecked":
        gate = record.gate
        return _step(entry, agency="SafeShare hub", basis=(
            f"Information Sharing Protocol {gate.protocol_version}, registry version "
            f"{gate.registry_version}"))  # fmt: skip
    if entry.event == "RequestWithdrawn":
        actor = record.withdrawal.actor
        return _step(entry, role=actor.practitioner.role, why=record.withdrawal.reason)
    if entry.event == "UrgencyChanged" and n < len(record.urgency_changes):
        change = record.urgency_changes[n]
        return _step(entry, role=change.actor.practitioner.role,
                     why=f"{entry.detail}: {change.reason}")  # fmt: skip
    if entry.event == "CaseClosed":
        return _step(entry, agency="SafeShare hub", basis=record.basis)
    return _step(entry)


def _holder_step(
    record: pb.DecisionRecord, holder: pb.HolderRecord, entry: pb.DecisionEntry, n: int
) -> Step:
    h = holder
    at = h.holding_agency_id
    event = entry.event
    if event == "ConsentChecked":
        consent = h.consent
        basis = f"consent {enum_name(pb.ConsentStatus, consent.status)}"
        if consent.given_by_relationship:
            basis += f" given by {consent.given_by_relationship}"
        if consent.verification:
            basis += f", verified by {consent.verification}"
        return _step(entry, at, basis=basis)
    if event == "ConsentRecorded":
        decision = h.consent_decision
        if decision.HasField("not_sought"):
            why = (f"consent not sought: "
                   f"{enum_name(pb.NotSoughtReason, decision.not_sought.reason)}"
                   f" — {decision.not_sought.explanation}")  # fmt: skip
        else:
            why = "consent recorded: " + enum_name(pb.ConsentStatus, decision.consent.status)
        return _step(entry, at, role=decision.actor.practitioner.role, why=why)
    if event == "OverrideProposed":
        p = h.override_proposal
        told = ("subject will be told" if p.subject_will_be_told
                else f"subject will not be told: {p.not_telling_reason}")  # fmt: skip
        return _step(entry, at, role=p.actor.practitioner.role, why=(
            f"{p.harm_statement}. Necessity and proportionality: {p.necessity_and_proportionality}."
            f" Alternatives considered: {p.alternatives_considered}. Advice: {p.advice_sought}."
            f" Consent overridden: "
            f"{enum_name(pb.ConsentStatus, p.consent_state_overridden)}"
            f"; {told}."), basis=(
            f"{p.legal_basis} ({enum_name(pb.OverrideReason, p.reason_code)});"
            f" minimum data set: "
            f"{_names(pb.InformationCategory, p.minimum_data_set)}"))  # fmt: skip
    if event in ("OverrideApproved", "OverrideRejected"):
        d = h.override_decision
        return _step(entry, at, role=d.actor.practitioner.role, why=d.reason,
                     basis=h.override_proposal.legal_basis)  # fmt: skip
    if event == "SharedFirst":
        s = h.share_first
        return _step(entry, at, role=s.actor.practitioner.role, why=s.harm_statement, basis=(
            "RED urgency: share first, justify within the override deadline; minimum data set: "
            + _names(pb.InformationCategory, s.minimum_data_set)))  # fmt: skip
    if event == "DeclinedToShare":
        d2 = h.decline
        return _step(entry, at, role=d2.actor.practitioner.role,
                     why=f"{', '.join(d2.reasons)}: {d2.explanation}")  # fmt: skip
    if event == "RecordsDelivered":
        r = h.receipt
        return _step(entry, at, why=entry.detail, basis=(
            f"{r.item_count} items, delivery {r.delivery_id}, SHA-256 {r.content_digest}; "
            f"charge: none"))  # fmt: skip
    if event == "Acknowledged":
        a = h.acknowledgement
        status = enum_name(pb.AcknowledgementStatus, a.status)
        return _step(entry, at, role=a.practitioner.role,
                     why=f"{status}; used for: {a.use}"
                     + (f"; feedback: {a.feedback}" if a.feedback else ""))  # fmt: skip
    if event == "ConsentWithdrawn":
        w = h.consent_withdrawal
        return _step(entry, at, role=w.actor.practitioner.role,
                     why=f"withdrawn by {w.withdrawn_by_relationship}: {w.reason}")  # fmt: skip
    if event == "ExchangeClosed":
        return _step(entry, at, basis=h.basis)
    return _step(entry, at)
