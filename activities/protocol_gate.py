"""The protocol gate: may these agencies share under the Information Sharing Protocol?

Both agencies must be current signatories (the protocol version in force, a review date not
passed); a contracted or commissioned provider is bound through its commissioner, which must
itself be current, and through a contract that has not lapsed; the requesting practitioner's
training must be current. The registry file is re-read whenever it changes, so a renewed
signature counts without a restart; an edit the loader refuses keeps the last good registry
(and is logged), so a bad edit never stalls a case in the gate.

A case that passes gets, in the gate's result, every party's working calendar and the
registry's timescales: the case records them and runs under them to its close.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import structlog
from google.protobuf.message import Message
from temporalio import activity

from activities.calendars import resolve_calendar, timescale_policy
from activities.gateway_key import load_gateway_public_key
from activities.names import DISCLOSURE_GATE, NOTICE_SEAL, PROTOCOL_GATE
from partnership.registry import PROVIDER_KINDS, Registry
from partnership.registry_file import RegistrySource
from protos.sharing.v1 import case_pb2 as pb
from workflows import seal

log = structlog.get_logger("safeshare.gate")


def gate_reasons(registry: Registry, request: pb.SharingRequest, at: dt.datetime) -> list[str]:
    """Every reason the protocol does not allow this request, as codes (empty: it does)."""
    reasons: list[str] = []
    parties = [("requester", request.requesting_agency_id)] + [
        ("holder", holder) for holder in request.holding_agency_ids
    ]
    for party, agency_id in parties:
        reasons.extend(_signatory_reasons(registry, party, agency_id, at.date()))
    training = request.requester.training_valid_until
    if not request.requester.HasField("training_valid_until") or (
        training.ToDatetime(dt.UTC) <= at
    ):
        reasons.append("requester_training_not_current")
    return reasons


def _signatory_reasons(registry: Registry, party: str, agency_id: str, today: dt.date) -> list[str]:
    agency = registry.get(agency_id)
    if agency is None:
        return [f"{party}_not_a_partner:{agency_id}"]
    if agency.kind in PROVIDER_KINDS or agency.commissioned_by:
        # A contracted provider is bound by the protocol through its commissioner.
        commissioner = registry.get(agency.commissioned_by or "")
        if commissioner is None or commissioner.kind in PROVIDER_KINDS:
            return [f"{party}_not_bound_to_a_commissioner:{agency_id}"]
        reasons = [
            f"{party}_commissioner_{code}:{agency_id}"
            for code in _currency(registry, commissioner.signed_protocol_version,
                                  commissioner.review_date, today)
        ]  # fmt: skip
        if agency.commissioned_until is not None and agency.commissioned_until < today:
            reasons.append(f"{party}_commissioning_lapsed:{agency_id}")
        return reasons
    return [
        f"{party}_{code}:{agency_id}"
        for code in _currency(registry, agency.signed_protocol_version, agency.review_date, today)
    ]


def _currency(registry: Registry, signed: str, review_date: dt.date, today: dt.date) -> list[str]:
    codes = []
    if signed != registry.protocol_version:
        codes.append("signed_outdated_protocol")
    if review_date < today:
        codes.append("signature_review_overdue")
    return codes


def route_disclosure(registry: Registry, disclosure: pb.Disclosure) -> tuple[list[str], str]:
    """Who a disclosure goes to, and why that differs from what was submitted (a code).

    An Operation Encompass notification for a child without a school place goes to the
    local authority's children's social care instead of a school.
    """
    recipients = list(dict.fromkeys(disclosure.recipient_agency_ids))
    if (
        disclosure.kind == pb.DISCLOSURE_KIND_OPERATION_ENCOMPASS
        and disclosure.no_school_place
        and not recipients
    ):
        if registry.childrens_social_care is None:
            return [], "no_school_place:no_childrens_social_care_in_registry"
        return [registry.childrens_social_care], "no_school_place:childrens_social_care"
    return recipients, ""


def disclosure_gate_reasons(
    registry: Registry, disclosure: pb.Disclosure, recipients: list[str], at: dt.datetime
) -> list[str]:
    """Every reason the protocol does not allow this disclosure, as codes (empty: it does)."""
    reasons = list(_signatory_reasons(registry, "holder", disclosure.holding_agency_id, at.date()))
    if not recipients:
        reasons.append("no_recipient")
    for recipient in recipients:
        reasons.extend(_signatory_reasons(registry, "recipient", recipient, at.date()))
    training = disclosure.discloser.training_valid_until
    if not disclosure.discloser.HasField("training_valid_until") or (
        training.ToDatetime(dt.UTC) <= at
    ):
        reasons.append("discloser_training_not_current")
    return reasons


NOT_SEALED = "request_not_sealed_by_gateway"


class ProtocolGate:
    """The hub activity that checks a request against the partnership registry file, and that
    the gateway sealed it.

    ``gateway_key_path``: the gateway's public key as the partnership publishes it, read on every
    check; the gate's result carries it, and the case checks every later decision against it.
    There is no mode without a key: a case, disclosure or notice the key did not seal is refused.
    """

    def __init__(self, registry_path: Path, gateway_key_path: Path) -> None:
        self._registry = RegistrySource(registry_path)
        self._gateway_key_path = gateway_key_path

    def _sealed_start(self, command: Message) -> tuple[bytes, bool]:
        """The gateway's key, and whether it sealed ``command`` as the start of the workflow
        this activity runs for. A missing or broken key file raises: the activity retries and
        the workflow waits (it never runs unchecked)."""
        key = load_gateway_public_key(self._gateway_key_path)
        try:
            seal.check(key, activity.info().workflow_id or "", command, seal.START)
        except seal.SealError:
            return key, False
        return key, True

    @activity.defn(name=PROTOCOL_GATE)
    async def check(self, check: pb.GateCheck) -> pb.GateResult:
        """Check ``check.request`` at ``check.at``; a failure is a result, not an error."""
        registry = self._registry.current()
        at = check.at.ToDatetime(dt.UTC)
        reasons = gate_reasons(registry, check.request, at)
        key, sealed = self._sealed_start(check.request)
        if not sealed:
            reasons.insert(0, NOT_SEALED)
        result = pb.GateResult(
            passed=not reasons,
            reasons=reasons,
            protocol_version=registry.protocol_version,
            registry_version=registry.registry_version,
            gateway_public_key=key,
        )
        if result.passed:
            parties = dict.fromkeys(
                [check.request.requesting_agency_id, *check.request.holding_agency_ids]
            )
            for agency_id in parties:
                agency = registry.get(agency_id)
                assert agency is not None  # the gate passed: every party is a partner
                result.calendars.append(resolve_calendar(registry, agency, at))
            result.timescales.CopyFrom(timescale_policy(registry))
        log.info("protocol_gate_checked", passed=result.passed, reasons=len(reasons),
                 registry_version=registry.registry_version)  # fmt: skip
        return result

    @activity.defn(name=DISCLOSURE_GATE)
    async def check_disclosure(self, check: pb.DisclosureGateCheck) -> pb.DisclosureGateResult:
        """Check a disclosure at ``check.at``: the same protocol rules as a request (holder and
        every recipient current signatories, providers bound, the discloser trained), its
        routing, and every party's calendar, resolved here so the case records them."""
        registry = self._registry.current()
        at = check.at.ToDatetime(dt.UTC)
        if check.HasField("not_made"):
            # A record that a disclosure was considered and not made: nothing is sent, so
            # only the gateway's seal on it is checked.
            key, sealed = self._sealed_start(
                pb.DisclosureCaseInput(not_made=check.not_made, gateway_seal=check.start_seal)
            )
            result = pb.DisclosureGateResult()
            result.gate.passed = sealed
            result.gate.reasons.extend([] if sealed else [NOT_SEALED])
            result.gate.gateway_public_key = key
            return result
        recipients, routed_because = route_disclosure(registry, check.disclosure)
        reasons = disclosure_gate_reasons(registry, check.disclosure, recipients, at)
        key, sealed = self._sealed_start(
            pb.DisclosureCaseInput(disclosure=check.disclosure, gateway_seal=check.start_seal)
        )
        if not sealed:
            reasons.insert(0, NOT_SEALED)
        result = pb.DisclosureGateResult(
            recipient_agency_ids=recipients, routed_because=routed_because
        )
        gate = result.gate
        gate.passed = not reasons
        gate.reasons.extend(reasons)
        gate.protocol_version = registry.protocol_version
        gate.registry_version = registry.registry_version
        gate.gateway_public_key = key
        if gate.passed:
            for agency_id in dict.fromkeys([check.disclosure.holding_agency_id, *recipients]):
                agency = registry.get(agency_id)
                assert agency is not None  # the gate passed: every party is a partner
                gate.calendars.append(resolve_calendar(registry, agency, at))
            gate.timescales.CopyFrom(timescale_policy(registry))
        log.info("protocol_gate_checked", passed=gate.passed, reasons=len(reasons),
                 registry_version=registry.registry_version, kind="disclosure")  # fmt: skip
        return result

    @activity.defn(name=NOTICE_SEAL)
    async def check_notice(self, notice: pb.ConsentWithdrawalNoticeInput) -> pb.GateResult:
        """Whether the gateway sealed a consent-withdrawal notice for the workflow it starts."""
        key, sealed = self._sealed_start(notice)
        log.info("notice_seal_checked", passed=sealed)
        return pb.GateResult(
            passed=sealed, reasons=[] if sealed else [NOT_SEALED], gateway_public_key=key
        )
