"""The protocol gate: may these agencies share under the Information Sharing Protocol?

Both agencies must be current signatories (the protocol version in force, a review date not
passed); a contracted or commissioned provider is bound through its commissioner, which must
itself be current; the requesting practitioner's training must be current. The registry file
is read on every check, so a renewed signature counts without a restart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import structlog
from temporalio import activity

from activities.names import PROTOCOL_GATE
from activities.registry import Registry, load_registry
from protos.sharing.v1 import case_pb2 as pb

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
    if agency.commissioned_by:
        # A contracted provider is bound by the protocol through its commissioner.
        commissioner = registry.get(agency.commissioned_by)
        assert commissioner is not None  # load_registry checks commissioners exist
        return [
            f"{party}_commissioner_{code}:{agency_id}"
            for code in _currency(registry, commissioner.signed_protocol_version,
                                  commissioner.review_date, today)
        ]  # fmt: skip
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


class ProtocolGate:
    """The hub activity that checks a request against the partnership registry file."""

    def __init__(self, registry_path: Path) -> None:
        self._registry_path = registry_path

    @activity.defn(name=PROTOCOL_GATE)
    async def check(self, check: pb.GateCheck) -> pb.GateResult:
        """Check ``check.request`` at ``check.at``; a failure is a result, not an error."""
        registry = load_registry(self._registry_path)
        reasons = gate_reasons(registry, check.request, check.at.ToDatetime(dt.UTC))
        result = pb.GateResult(
            passed=not reasons,
            reasons=reasons,
            protocol_version=registry.protocol_version,
            registry_version=registry.registry_version,
        )
        log.info("protocol_gate_checked", passed=result.passed, reasons=len(reasons),
                 registry_version=registry.registry_version)  # fmt: skip
        return result
