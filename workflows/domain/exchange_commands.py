"""The commands that move one holder's exchange (``workflows.domain.exchange.Exchange``).

Imperatives are people's decisions (``RecordConsent``, ``ProposeOverride``); past tense are
what the holder's or the recipient's system reported (``ConsentChecked``, ``Delivered``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.vocabulary import Actor


@dataclass(frozen=True)
class ConsentChecked:
    """The holder's adapter answered the consent lookup.

    ``system_status`` is the status the holder's system gave (e.g. "REFUSED"), when the exchange
    holds the practitioner to it; empty for exchanges that predate that rule.
    ``covered`` (per-category exchanges): the categories the consent covers, shared at once
    on that basis even when it does not cover them all.
    """

    covers: bool
    system_status: str = ""
    covered: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RecordConsent:
    """The holder practitioner records a consent ``decision`` (a consent record, or why
    consent is not sought); ``covers``: whether the consent recorded covers the request."""

    actor: Actor
    decision: pb.ConsentDecision
    covers: bool


@dataclass(frozen=True)
class ProposeOverride:
    """The holder proposes sharing without consent: the ``proposal`` as sent, and the
    categories the request ``asked`` for (its minimum data set must lie within them)."""

    actor: Actor
    proposal: pb.OverrideProposal
    asked: frozenset[int]

    @property
    def categories(self) -> frozenset[str]:
        """Its minimum data set, by category name (per-category exchanges)."""
        return _named(self.proposal.minimum_data_set, self.asked)


@dataclass(frozen=True)
class DecideOverride:
    """An approver approves or rejects the proposed override, for a ``reason``."""

    actor: Actor
    approve: bool
    reason: str


@dataclass(frozen=True)
class ShareFirst:
    """RED only: the holder shares now and justifies within the override deadline: the
    ``decision`` as sent, and the categories the request ``asked`` for."""

    actor: Actor
    decision: pb.ShareFirstDecision
    asked: frozenset[int]

    @property
    def categories(self) -> frozenset[str]:
        """Its minimum data set, by category name (per-category exchanges)."""
        return _named(self.decision.minimum_data_set, self.asked)


@dataclass(frozen=True)
class DeclineToShare:
    """The holder decides not to share, with reasons."""

    actor: Actor
    has_reasons: bool = True


@dataclass(frozen=True)
class NothingToShare:
    """The holder's system cannot share (subject not known, category not held): closes the
    exchange as not shared, with the system's reason."""


@dataclass(frozen=True)
class Delivered:
    """The recipient's adapter stored the delivery (of ``categories``, per-category)."""

    categories: frozenset[str] | None = None


@dataclass(frozen=True)
class Acknowledge:
    """The recipient acknowledges the delivery, as received or actioned (``status``)."""

    actor: Actor
    status: pb.AcknowledgementStatus.ValueType


@dataclass(frozen=True)
class WithdrawRequest:
    """The requester withdraws the request.

    With ``keeps_shares`` (every exchange started since withdrawals stopped hiding shares) a
    withdrawal never closes away what was shared: a delivery in flight still lands and is
    recorded, and a RED share-first's owed justification is still decided.
    """

    actor: Actor
    keeps_shares: bool = False


@dataclass(frozen=True)
class StopDelivery:
    """A withdrawn exchange's delivery did not land (nothing left the holder): it closes."""


@dataclass(frozen=True)
class WithdrawConsent:
    """Consent is withdrawn after delivery; recipients must be told."""

    actor: Actor


Command = (
    ConsentChecked
    | RecordConsent
    | ProposeOverride
    | DecideOverride
    | ShareFirst
    | DeclineToShare
    | NothingToShare
    | Delivered
    | Acknowledge
    | WithdrawRequest
    | StopDelivery
    | WithdrawConsent
)


def _named(
    categories: Collection[pb.InformationCategory.ValueType], asked: Collection[int]
) -> frozenset[str]:
    return frozenset(pb.InformationCategory.Name(c) for c in categories if c in asked)
