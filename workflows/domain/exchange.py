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

from workflows.domain import exchange_checks as checks
from workflows.domain.exchange_commands import (
    Acknowledge,
    Command,
    ConsentChecked,
    DecideOverride,
    DeclineToShare,
    Delivered,
    NothingToShare,
    ProposeOverride,
    RecordConsent,
    ShareFirst,
    StopDelivery,
    WithdrawConsent,
    WithdrawRequest,
)
from workflows.domain.refusal import Refusal
from workflows.domain.vocabulary import Basis, Outcome, State, Step, Urgency, WaitingOn

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
        """Whether ``command`` may be applied now (one check per command, in ``exchange_checks``);
        the refusal says why not."""
        match command:
            case ConsentChecked():
                return checks.consent_checked(self, command)
            case RecordConsent():
                return checks.record_consent(self, command)
            case ProposeOverride():
                return checks.propose_override(self, command)
            case DecideOverride():
                return checks.decide_override(self, command)
            case ShareFirst():
                return checks.share_first(self, command)
            case DeclineToShare():
                return checks.decline_to_share(self, command)
            case NothingToShare():
                return checks.nothing_to_share(self, command)
            case Delivered():
                return checks.delivered(self, command)
            case Acknowledge():
                return checks.acknowledge(self, command)
            case WithdrawRequest():
                return checks.withdraw_request(self, command)
            case StopDelivery():
                return checks.stop_delivery(self, command)
            case WithdrawConsent():
                return checks.withdraw_consent(self, command)
        raise TypeError(f"unknown command {command!r}")

    def apply(self, command: Command) -> None:
        """Apply ``command``.

        Raises:
            InvalidCommand: ``check`` refuses it.
        """
        if refusal := self.check(command):
            raise InvalidCommand(refusal)
        match command:
            case ConsentChecked():
                self._apply_consent_checked(command)
            case RecordConsent():
                self._apply_record_consent(command)
            case ProposeOverride():
                self._apply_propose_override(command)
            case DecideOverride():
                self._apply_decide_override(command)
            case ShareFirst():
                self.shared_first = True
                if self.per_category:
                    self._authorise(
                        command.categories, Basis.SHARE_FIRST, "not_in_minimum_data_set"
                    )
                self._move(State.DELIVERING)
            case DeclineToShare():
                self._not_shared("declined")
            case NothingToShare():
                self._not_shared("nothing_to_share")
            case Delivered():
                self._apply_delivered(command)
            case Acknowledge():
                self.acknowledged = True
                if not self.justification_pending:
                    self._close(self._shared_outcome())
            case WithdrawRequest():
                self._apply_withdraw_request(command)
            case StopDelivery():
                self._close(Outcome.WITHDRAWN)
            case WithdrawConsent():
                self.consent_withdrawn = True

    def _apply_consent_checked(self, command: ConsentChecked) -> None:
        self.consent_covers = command.covers
        self.system_refused = command.system_status in {"REFUSED", "WITHDRAWN"}
        if self.per_category:
            self._authorise(self.asked if command.covers else command.covered, Basis.CONSENT)
            self._move(State.DELIVERING if self.authorised else State.AWAITING_CONSENT_DECISION)
        else:
            self._move(State.DELIVERING if command.covers else State.AWAITING_CONSENT_DECISION)

    def _apply_record_consent(self, command: RecordConsent) -> None:
        if self.per_category and command.covers:
            self._authorise(self.undecided, Basis.CONSENT)
        self.consent_covers = command.covers
        if command.covers:
            self._move(State.DELIVERING)

    def _apply_propose_override(self, command: ProposeOverride) -> None:
        self.override_proposed_by = command.actor.user_id
        if self.per_category:
            self.override_categories = frozenset(command.categories)
        if not self.shared_first:
            self._move(State.AWAITING_OVERRIDE_DECISION)

    def _apply_decide_override(self, command: DecideOverride) -> None:
        approve = command.approve
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
                self._not_shared("override_rejected")
        elif self.state is State.AWAITING_ACKNOWLEDGEMENT and (self.acknowledged or self.withdrawn):
            self._close(Outcome.SHARED_UNDER_OVERRIDE)

    def _not_shared(self, reason: str) -> None:
        """The rest is not shared, for ``reason``: the exchange closes, or (per-category, with
        something delivered) waits for the recipient's acknowledgement."""
        if self.per_category:
            self._refuse_rest(reason)
        if not self._after_partial():
            self._close(Outcome.NOT_SHARED)

    def _apply_delivered(self, command: Delivered) -> None:
        self.delivered = True
        if self.per_category:
            self.delivered_categories |= set(command.categories or ())
        if self.per_category and self.undecided and not self.withdrawn:
            # 👉 What consent covered is delivered; the holder decides on the rest.
            self._move(State.AWAITING_CONSENT_DECISION)
        elif self.withdrawn and not self.justification_pending:
            self._close(self._shared_outcome())
        else:
            self._move(State.AWAITING_ACKNOWLEDGEMENT)

    def _apply_withdraw_request(self, command: WithdrawRequest) -> None:
        in_delivery = self.state in {State.DELIVERING, State.AWAITING_ACKNOWLEDGEMENT}
        if self.per_category and self.delivered_categories and not in_delivery:
            # Part was shared on consent, the rest still undecided: what was shared
            # stays shared, nothing more is.
            self.withdrawn = True
            self._refuse_rest("withdrawn")
            self._close(self._shared_outcome())
            return
        if not command.keeps_shares or not in_delivery:
            self._close(Outcome.WITHDRAWN)
            return
        self.withdrawn = True
        # 👉 A delivery in flight may land (it is then recorded as delivered); what
        # was delivered stays shared; an owed justification is still decided.
        if self.state is State.AWAITING_ACKNOWLEDGEMENT and not self.justification_pending:
            self._close(self._shared_outcome())

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
