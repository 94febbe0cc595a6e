"""Where each decision goes: is the caller in the role the command needs (PERMISSION_DENIED
if not), and which workflow takes it, with which update.

- a holder's commands update the caller's own exchange, ``holder_exchange_workflow_id(ref,
  caller)``;
- the requester's update the case (which forwards them to its open exchanges), and its
  Acknowledge the exchange of the holder whose delivery it acknowledges (named, or the only
  one);
- a disclosure's update the disclosure case: DecideDisclosure by its holder, Acknowledge by a
  recipient.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from protos.sharing.v1 import case_pb2 as pb
from safeshare.cases.reader import Parties
from safeshare.gateway import disclosure_view, parties
from safeshare.gateway.errors import invalid_argument
from safeshare.gateway.fields import (
    FieldViolation,
)
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_workflow_id, holder_exchange_workflow_id


class Target(enum.Enum):
    """The kind of workflow a command updates."""

    EXCHANGE = "exchange"
    CASE = "case"
    DISCLOSURE = "disclosure"


@dataclass(frozen=True)
class Route:
    """Which workflow takes a command, and with which of its updates."""

    target: Target
    update: Any
    holder: str = ""
    """The exchange's holding agency (``Target.EXCHANGE`` only)."""

    def workflow_id(self, case_ref: str) -> str:
        """The id of the workflow the command goes to."""
        if self.target is Target.EXCHANGE:
            return holder_exchange_workflow_id(case_ref, self.holder)
        return case_workflow_id(case_ref)

    def closed_record(self, case: pb.CaseView) -> Message | None:
        """The record the case keeps of the workflow once it has closed (which shows the
        commands it applied), if any."""
        if self.target in (Target.CASE, Target.DISCLOSURE):
            return case.record
        if self.target is Target.EXCHANGE:
            copies = [h for h in case.record.holders if h.holding_agency_id == self.holder]
            return copies[0] if copies else None
        return None


class Router:
    """Who may give a command, and where it goes."""

    def __call__(self, agency: str, case: pb.CaseView, message: Message) -> Route:
        """The route of ``agency``'s command in ``case``; PERMISSION_DENIED (or NOT_FOUND)
        when the caller has no such role in it."""
        raise NotImplementedError

    def known(self, agency: str, known: Parties | None) -> Route | None:
        """The route decided by the case's parties alone, when they suffice (the case need
        not be read before the update); None otherwise."""
        return None


@dataclass(frozen=True)
class OwnExchange(Router):
    """A holder's command to its own exchange."""

    update: Any

    def __call__(self, agency: str, case: pb.CaseView, message: Message) -> Route:
        parties.require_holder(agency, case)
        return Route(Target.EXCHANGE, self.update, agency)


@dataclass(frozen=True)
class ToCase(Router):
    """A requester's command to the case."""

    update: Any

    def __call__(self, agency: str, case: pb.CaseView, message: Message) -> Route:
        parties.require_requester(agency, case)
        return Route(Target.CASE, self.update)

    def known(self, agency: str, known: Parties | None) -> Route | None:
        # 👉 The requester is always party to its case: the case is read after the update,
        # which changes it, and not before as well.
        if known is None or known[0] != agency:
            return None
        return Route(Target.CASE, self.update)


@dataclass(frozen=True)
class DisclosureHolder(Router):
    """A disclosure holder's command to its disclosure case."""

    update: Any

    def __call__(self, agency: str, case: pb.CaseView, message: Message) -> Route:
        if not disclosure_view.is_disclosure(case) or (
            agency != case.record.disclosure.holding_agency_id
        ):
            raise parties.wrong_role()
        return Route(Target.DISCLOSURE, self.update)


class Acknowledged(Router):
    """A disclosure's recipient acknowledges it; a requester, one holder's delivery."""

    def __call__(self, agency: str, case: pb.CaseView, message: Message) -> Route:
        if disclosure_view.is_disclosure(case):
            if parties.party(agency, case).role is not disclosure_view.Role.RECIPIENT:
                raise parties.wrong_role()
            return Route(Target.DISCLOSURE, DisclosureCase.acknowledge)
        parties.require_requester(agency, case)
        holder = _acknowledged_holder(message, case)
        return Route(Target.EXCHANGE, HolderExchange.acknowledge, holder)


def _acknowledged_holder(ack: Message, case: pb.CaseView) -> str:
    """The holder whose delivery is acknowledged: the one named, or the case's only holder."""
    assert isinstance(ack, pb.Acknowledgement)
    holders = list(case.record.request.holding_agency_ids)
    if ack.holding_agency_id in holders:
        return ack.holding_agency_id
    if not ack.holding_agency_id and len(holders) == 1:
        return holders[0]
    why = (
        "not a holding agency of this case"
        if ack.holding_agency_id
        else "required when the case has several holding agencies"
    )
    raise invalid_argument([FieldViolation("acknowledgement.holding_agency_id", why)])
