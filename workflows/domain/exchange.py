"""One holder's exchange within a sharing case, and the only way to move it.

A case has one *exchange* per holding agency: consent check, consent decision, override
justification, decision, delivery and acknowledgement with that holder. The parent case runs
the protocol gate and closes when every exchange has closed. ``Exchange.check`` is every
Update's validator (a refused decision never reaches history) and decides what a command
lacks from the command's own facts; ``Exchange.apply`` is the handlers' one way to move.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain import acknowledgement, consent, override
from workflows.domain.refusal import Refusal, Rule, incomplete, missing
from workflows.domain.vocabulary import (
    OPEN_STATES,
    Actor,
    Basis,
    Outcome,
    State,
    Step,
    Urgency,
    WaitingOn,
)

# -- commands -----------------------------------------------------------------------------


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


# -- the exchange -------------------------------------------------------------------------


@dataclass
class Exchange:
    """One holder's part of a case, and the only way to move it."""

    holder: str
    recipient: str
    urgency: Urgency
    state: State = State.CHECKING_CONSENT
    consent_covers: bool = False
    override_proposed_by: str | None = None
    override_approved: bool = False
    override_rejected: bool = False
    shared_first: bool = False
    delivered: bool = False
    acknowledged: bool = False
    consent_withdrawn: bool = False
    withdrawn: bool = False
    system_refused: bool = False
    """The holder's system said consent was refused or withdrawn: only an override or a
    decline is open, never a practitioner's "consent given"."""
    """The requester withdrew while something was or had been shared (``keeps_shares``)."""
    per_category: bool = False
    """Consent per category: what consent covers is shared at once, each other category
    needs its own decision (every exchange started since consent was read per category)."""
    asked: frozenset[str] = frozenset()
    """The categories asked of this holder (per-category)."""
    authorised: dict[str, Basis] = field(default_factory=dict)
    """Each category that may be delivered, with what authorised it (per-category)."""
    not_shared: dict[str, str] = field(default_factory=dict)
    """Each category decided against, with why (a code; per-category)."""
    delivered_categories: set[str] = field(default_factory=set)
    override_categories: frozenset[str] = frozenset()
    """The proposed override's minimum data set (per-category)."""
    outcome: Outcome = Outcome.OPEN
    history: list[State] = field(default_factory=lambda: [State.CHECKING_CONSENT])

    @property
    def waiting_on(self) -> WaitingOn:
        """Whose move it is now."""
        return {
            State.REQUESTED: WaitingOn.SYSTEM,
            State.CHECKING_CONSENT: WaitingOn.SYSTEM,
            State.AWAITING_CONSENT_DECISION: WaitingOn.HOLDER,
            State.AWAITING_OVERRIDE_DECISION: WaitingOn.APPROVER,
            State.DELIVERING: WaitingOn.SYSTEM,
            State.AWAITING_ACKNOWLEDGEMENT: (
                WaitingOn.APPROVER if self.justification_pending else WaitingOn.RECIPIENT
            ),
            State.CLOSED: WaitingOn.NOBODY,
        }[self.state]

    @property
    def step(self) -> Step | None:
        """The step now running against a deadline: the holder's response, the override
        decision (also a RED share-first's owed justification) or the acknowledgement."""
        match self.state:
            case State.AWAITING_CONSENT_DECISION:
                return Step.HOLDER_RESPONDS
            case State.AWAITING_OVERRIDE_DECISION:
                return Step.OVERRIDE_DECISION
            case State.AWAITING_ACKNOWLEDGEMENT if self.justification_pending:
                return Step.OVERRIDE_DECISION
            case State.AWAITING_ACKNOWLEDGEMENT:
                return Step.RECIPIENT_ACKNOWLEDGES
        return None

    @property
    def justification_pending(self) -> bool:
        """Shared first in a RED case, and the override is not yet decided."""
        return self.shared_first and not (self.override_approved or self.override_rejected)

    @property
    def basis_for_delivery(self) -> bool:
        """Whether anything may be delivered: covering consent, an approved override, or a
        RED share-first whose justification is owed."""
        return self.consent_covers or self.override_approved or self.shared_first

    @property
    def undecided(self) -> frozenset[str]:
        """Categories asked for that nothing has yet authorised or refused (per-category)."""
        return self.asked - set(self.authorised) - set(self.not_shared)

    def _authorise(self, categories: Collection[str], basis: Basis, rest: str = "") -> None:
        """Authorise the undecided ``categories`` on ``basis``; with ``rest``, every other
        undecided category is not shared, for that reason."""
        undecided = self.undecided
        for category in sorted(undecided & set(categories)):
            self.authorised[category] = basis
        if rest:
            self._refuse_rest(rest)

    def _refuse_rest(self, reason: str) -> None:
        for category in sorted(self.undecided):
            self.not_shared[category] = reason

    def _after_partial(self) -> bool:
        """Per-category: something was already delivered, so a refusal of the rest leads to
        the recipient's acknowledgement, not to a close as not shared."""
        if self.per_category and self.delivered_categories:
            self._move(State.AWAITING_ACKNOWLEDGEMENT)
            return True
        return False

    def check(self, command: Command) -> Refusal | None:
        """Whether ``command`` may be applied now; the refusal says why not."""
        state = self.state
        match command:
            case ConsentChecked():
                return _turn(state in {State.CHECKING_CONSENT}, state)
            case RecordConsent(actor=actor, decision=decision):
                if refusal := incomplete(consent.missing_decision_fields(decision)):
                    return refusal
                if refusal := _holder(actor, self.holder) or _turn(
                    state is State.AWAITING_CONSENT_DECISION, state
                ):
                    return refusal
                if self.system_refused:
                    return Refusal(
                        Rule.NOT_PERMITTED,
                        "the holder's system records consent as refused or withdrawn: "
                        "propose an override or decline",
                    )
                return None
            case ProposeOverride(actor=actor, proposal=proposal, asked=asked):
                if refusal := _holder(actor, self.holder):
                    return refusal
                if self.shared_first and self.justification_pending:
                    allowed = state in {State.DELIVERING, State.AWAITING_ACKNOWLEDGEMENT}
                    if self.override_proposed_by is not None:
                        return Refusal(Rule.OUT_OF_TURN, "an override is already proposed")
                else:
                    allowed = state is State.AWAITING_CONSENT_DECISION
                return _turn(allowed, state) or incomplete(
                    override.missing_proposal_fields(proposal, asked)
                )
            case DecideOverride(actor=actor, reason=reason):
                if not reason:
                    return missing("decision.reason")
                if refusal := _holder(actor, self.holder):
                    return refusal
                if self.override_proposed_by is None or (
                    state is not State.AWAITING_OVERRIDE_DECISION and not self.justification_pending
                ):
                    return Refusal(
                        Rule.OUT_OF_TURN, f"no override awaits a decision ({state.value})"
                    )
                if actor.role not in override.APPROVER_ROLES:
                    return Refusal(Rule.NOT_PERMITTED, "only an approver role decides an override")
                if actor.user_id == self.override_proposed_by:
                    return Refusal(
                        Rule.NOT_PERMITTED, "the proposer cannot approve their own override"
                    )
                return None
            case ShareFirst(actor=actor, decision=decision, asked=asked):
                if refusal := _holder(actor, self.holder):
                    return refusal
                if self.urgency is not Urgency.RED:
                    return Refusal(Rule.OUT_OF_TURN, "share-first is for RED urgency only")
                return _turn(state is State.AWAITING_CONSENT_DECISION, state) or incomplete(
                    override.missing_share_first_fields(decision, asked)
                )
            case DeclineToShare(actor=actor, has_reasons=has_reasons):
                if refusal := _holder(actor, self.holder):
                    return refusal
                allowed = state in {
                    State.AWAITING_CONSENT_DECISION,
                    State.AWAITING_OVERRIDE_DECISION,
                }
                if refusal := _turn(allowed, state):
                    return refusal
                return None if has_reasons else Refusal(Rule.INVALID, "reasons are required")
            case NothingToShare():
                return _turn(state in {State.CHECKING_CONSENT, State.DELIVERING}, state)
            case Delivered(categories=categories) if self.per_category:
                if categories is None:
                    return Refusal(Rule.INVALID, "a delivery names its categories")
                if refusal := _turn(state is State.DELIVERING, state):
                    return refusal
                unauthorised = sorted(set(categories) - set(self.authorised))
                if unauthorised:
                    return Refusal(
                        Rule.NOT_PERMITTED, "no basis covers: " + ", ".join(unauthorised)
                    )
                if set(categories) & self.delivered_categories:
                    return Refusal(Rule.OUT_OF_TURN, "already delivered")
                return None
            case Delivered():
                return _turn(state is State.DELIVERING and self.basis_for_delivery, state)
            case Acknowledge(actor=actor, status=status):
                if actor.agency_id != self.recipient:
                    return Refusal(Rule.NOT_PERMITTED, "only the requesting agency acknowledges")
                if self.acknowledged:
                    return Refusal(Rule.OUT_OF_TURN, "already acknowledged")
                return _turn(state is State.AWAITING_ACKNOWLEDGEMENT, state) or incomplete(
                    acknowledgement.missing_fields(status, actor.user_id)
                )
            case WithdrawRequest(actor=actor):
                if actor.agency_id != self.recipient:
                    return Refusal(Rule.NOT_PERMITTED, "only the requesting agency withdraws")
                if self.withdrawn:
                    return Refusal(Rule.OUT_OF_TURN, "already withdrawn")
                return _turn(state in OPEN_STATES, state)
            case StopDelivery():
                return _turn(state is State.DELIVERING and self.withdrawn, state)
            case WithdrawConsent(actor=actor):
                if refusal := _holder(actor, self.holder):
                    return refusal
                if self.consent_withdrawn:
                    return Refusal(Rule.OUT_OF_TURN, "consent withdrawal already recorded")
                return _turn(self.delivered and state in OPEN_STATES, state)
        raise TypeError(f"unknown command {command!r}")

    def apply(self, command: Command) -> None:
        """Apply ``command``.

        Raises:
            InvalidCommand: ``check`` refuses it.
        """
        if refusal := self.check(command):
            raise InvalidCommand(refusal)
        match command:
            case ConsentChecked(covers=covers, system_status=system_status, covered=covered) if (
                self.per_category
            ):
                self.consent_covers = covers
                self.system_refused = system_status in {"REFUSED", "WITHDRAWN"}
                self._authorise(self.asked if covers else covered, Basis.CONSENT)
                self._move(State.DELIVERING if self.authorised else State.AWAITING_CONSENT_DECISION)
            case ConsentChecked(covers=covers, system_status=system_status):
                self.consent_covers = covers
                self.system_refused = system_status in {"REFUSED", "WITHDRAWN"}
                self._move(State.DELIVERING if covers else State.AWAITING_CONSENT_DECISION)
            case RecordConsent(covers=covers):
                if self.per_category and covers:
                    self._authorise(self.undecided, Basis.CONSENT)
                self.consent_covers = covers
                if covers:
                    self._move(State.DELIVERING)
            case ProposeOverride(actor=actor, categories=categories) if self.per_category:
                self.override_proposed_by = actor.user_id
                self.override_categories = frozenset(categories)
                if not self.shared_first:
                    self._move(State.AWAITING_OVERRIDE_DECISION)
            case ProposeOverride(actor=actor):
                self.override_proposed_by = actor.user_id
                if not self.shared_first:
                    self._move(State.AWAITING_OVERRIDE_DECISION)
            case DecideOverride(approve=approve):
                self.override_approved = approve
                self.override_rejected = not approve
                if self.state is State.AWAITING_OVERRIDE_DECISION:
                    if approve:
                        if self.per_category:
                            self._authorise(
                                self.override_categories, Basis.OVERRIDE, "not_in_minimum_data_set"
                            )
                        self._move(State.DELIVERING)
                    else:
                        if self.per_category:
                            self._refuse_rest("override_rejected")
                        if not self._after_partial():
                            self._close(Outcome.NOT_SHARED)
                elif self.state is State.AWAITING_ACKNOWLEDGEMENT and (
                    self.acknowledged or self.withdrawn
                ):
                    self._close(Outcome.SHARED_UNDER_OVERRIDE)
            case ShareFirst(categories=categories):
                self.shared_first = True
                if self.per_category:
                    self._authorise(categories, Basis.SHARE_FIRST, "not_in_minimum_data_set")
                self._move(State.DELIVERING)
            case DeclineToShare():
                if self.per_category:
                    self._refuse_rest("declined")
                if not self._after_partial():
                    self._close(Outcome.NOT_SHARED)
            case NothingToShare():
                if self.per_category:
                    self._refuse_rest("nothing_to_share")
                if not self._after_partial():
                    self._close(Outcome.NOT_SHARED)
            case Delivered(categories=categories) if self.per_category:
                self.delivered = True
                self.delivered_categories |= set(categories or ())
                if self.undecided and not self.withdrawn:
                    # 👉 What consent covered is delivered; the holder decides on the rest.
                    self._move(State.AWAITING_CONSENT_DECISION)
                elif self.withdrawn and not self.justification_pending:
                    self._close(self._shared_outcome())
                else:
                    self._move(State.AWAITING_ACKNOWLEDGEMENT)
            case Delivered():
                self.delivered = True
                if self.withdrawn and not self.justification_pending:
                    self._close(self._shared_outcome())
                else:
                    self._move(State.AWAITING_ACKNOWLEDGEMENT)
            case Acknowledge():
                self.acknowledged = True
                if not self.justification_pending:
                    self._close(self._shared_outcome())
            case WithdrawRequest(keeps_shares=keeps_shares):
                if (
                    self.per_category
                    and self.delivered_categories
                    and self.state
                    not in {
                        State.DELIVERING,
                        State.AWAITING_ACKNOWLEDGEMENT,
                    }
                ):
                    # Part was shared on consent, the rest still undecided: what was shared
                    # stays shared, nothing more is.
                    self.withdrawn = True
                    self._refuse_rest("withdrawn")
                    self._close(self._shared_outcome())
                    return
                if not keeps_shares or self.state not in {
                    State.DELIVERING,
                    State.AWAITING_ACKNOWLEDGEMENT,
                }:
                    self._close(Outcome.WITHDRAWN)
                    return
                self.withdrawn = True
                # 👉 A delivery in flight may land (it is then recorded as delivered); what
                # was delivered stays shared; an owed justification is still decided.
                if self.state is State.AWAITING_ACKNOWLEDGEMENT and not self.justification_pending:
                    self._close(self._shared_outcome())
            case StopDelivery():
                self._close(Outcome.WITHDRAWN)
            case WithdrawConsent():
                self.consent_withdrawn = True

    def _shared_outcome(self) -> Outcome:
        if self.per_category:
            bases = {self.authorised[c] for c in self.delivered_categories}
            if bases - {Basis.CONSENT}:
                return Outcome.SHARED_UNDER_OVERRIDE
            return Outcome.SHARED_WITH_CONSENT if bases else Outcome.NOT_SHARED
        if self.consent_covers and not self.shared_first:
            return Outcome.SHARED_WITH_CONSENT
        return Outcome.SHARED_UNDER_OVERRIDE

    def _move(self, target: State) -> None:
        self.state = target
        self.history.append(target)

    def _close(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._move(State.CLOSED)


class InvalidCommand(Exception):
    """A command the exchange's current state or the actor's role does not allow."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def _turn(allowed: bool, state: State) -> Refusal | None:
    return None if allowed else Refusal(Rule.OUT_OF_TURN, f"not allowed while {state.value}")


def _holder(actor: Actor, holder: str) -> Refusal | None:
    if actor.agency_id != holder:
        return Refusal(Rule.NOT_PERMITTED, "only the holding agency makes this decision")
    return None


def _named(
    categories: Collection[pb.InformationCategory.ValueType], asked: Collection[int]
) -> frozenset[str]:
    return frozenset(pb.InformationCategory.Name(c) for c in categories if c in asked)


def case_outcome(outcomes: Collection[Outcome]) -> Outcome:
    """The outcome of a whole case from the outcomes of its exchanges."""
    shared = {Outcome.SHARED_WITH_CONSENT, Outcome.SHARED_UNDER_OVERRIDE}
    kinds = set(outcomes)
    if not kinds:
        return Outcome.NOT_SHARED
    if kinds == {Outcome.WITHDRAWN}:
        return Outcome.WITHDRAWN
    if kinds <= shared:
        return (
            Outcome.SHARED_UNDER_OVERRIDE
            if Outcome.SHARED_UNDER_OVERRIDE in kinds
            else Outcome.SHARED_WITH_CONSENT
        )
    if kinds & shared:
        return Outcome.PARTLY_SHARED
    if Outcome.WITHDRAWN in kinds:
        return Outcome.WITHDRAWN
    return Outcome.NOT_SHARED
