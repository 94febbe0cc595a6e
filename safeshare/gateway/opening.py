"""Opening cases: SubmitRequest starts a sharing case, SubmitDisclosure and
RecordDisclosureNotMade a disclosure case.

Each case's workflow id comes from the caller's idempotency key (``workflows.ids``), and no
case with that id may be replaced, running or closed: a resubmission finds its case
(``created=False``). A sharing case keeps a keyed digest of its request in its memo, so a
request id used again for another request is ALREADY_EXISTS. A case found in the case archive
is not opened again after Temporal has deleted it: a request's digest is then read from the
archived history's start.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import grpc
import structlog
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.archive.errors import ArchiveUnavailable
from safeshare.gateway import disclosure_validation as dv
from safeshare.gateway import validation
from safeshare.gateway.errors import GatewayError, invalid_argument
from safeshare.gateway.fields import (
    FieldViolation,
)
from safeshare.gateway.frame import current, rpc_timeout
from safeshare.gateway.identity import caller_agency
from safeshare.gateway.parts import Parts
from workflows import seal
from workflows.disclosure_case import DisclosureCase
from workflows.domain.vocabulary import code
from workflows.ids import case_ref_for, case_workflow_id, disclosure_ref_for
from workflows.sharing_case import SharingCase

REQUEST_DIGEST_MEMO = "request_digest"
"""The case's memo key for the keyed digest of the request that opened it."""


class Opening:
    """Starts cases on the hub's task queue."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._digest_key = parts.signer.derived_key(b"request-digest")

    async def submit(
        self, request: service_pb.SubmitRequestRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.SubmitRequestResponse:
        """Open a case for a request, or return the case its request id already opened."""
        call = current()
        registry = self._parts.registry()
        agency = call.agency_id = caller_agency(context, registry)
        _raise_if(validation.validate_submit(request))
        unknown = validation.unknown_holders(request, registry)
        if unknown:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, validation.NOT_A_PARTNER, unknown)
        _raise_if(validation.self_holders(request, agency))
        sharing = pb.SharingRequest()
        sharing.CopyFrom(request.request)
        # The requesting agency is whoever holds the certificate, whatever the body says.
        sharing.requesting_agency_id = agency
        sharing.ClearField("gateway_seal")
        case_ref = call.case_ref = case_ref_for(agency, sharing.request_id)
        workflow_id = case_workflow_id(case_ref)
        sharing = self._parts.signer.sealed(sharing, workflow_id, seal.START)
        digest = self._request_digest(sharing)
        # 👉 As for a disclosure: once retention has deleted the closed case, the archive is
        # what says the request id already opened it (and with which request).
        archived = await self._archived_memo(case_ref)
        if archived is not None:
            return _found(case_ref, digest, str(archived.get(REQUEST_DIGEST_MEMO, "")))
        try:
            await self._parts.client.start_workflow(
                SharingCase.run,
                sharing,
                id=workflow_id,
                memo={REQUEST_DIGEST_MEMO: digest},
                task_queue=self._parts.hub_task_queue,
                # 👉 The workflow id is derived from the idempotency key, and neither a running
                # nor a closed case with that id may be replaced: a resubmission finds its case.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=_summary(sharing),
                rpc_timeout=rpc_timeout(),
            )
        except WorkflowAlreadyStartedError:
            existing = await self._parts.client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=rpc_timeout()
            )
            return _found(case_ref, digest, await existing.memo_value(REQUEST_DIGEST_MEMO, ""))
        self._parts.views.saw(case_ref, sharing)
        return service_pb.SubmitRequestResponse(case_ref=case_ref, created=True)

    async def _archived_memo(self, case_ref: str) -> dict[str, object] | None:
        """The archived case's opening memo; None when the archive holds no such case, or
        cannot be read (logged: Temporal still refuses any id it keeps, so only a repeat of a
        request older than the retention could then open again)."""
        try:
            return await self._parts.views.closed.opening_memo(case_ref)
        except ArchiveUnavailable as err:
            structlog.get_logger(__name__).warning(
                "archive_unavailable", case_ref=case_ref, error_type=type(err).__name__
            )
            return None

    def _request_digest(self, sharing: pb.SharingRequest) -> str:
        """A keyed digest of the request (never the request itself: the memo must hold no
        personal data, and a plain hash of a child's name and date of birth can be guessed)."""
        body = pb.SharingRequest()
        body.CopyFrom(sharing)
        body.ClearField("gateway_seal")
        return hmac.new(
            self._digest_key, body.SerializeToString(deterministic=True), hashlib.sha256
        ).hexdigest()

    async def submit_disclosure(
        self, request: service_pb.SubmitDisclosureRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.SubmitDisclosureResponse:
        """Open a disclosure case, or return the case its disclosure id already opened."""
        call = current()
        agency = call.agency_id = caller_agency(context, self._parts.registry())
        _raise_if(dv.validate_submit_disclosure(request))
        recipients = list(request.disclosure.recipient_agency_ids)
        path = "disclosure.recipient_agency_ids"
        unknown = dv.unknown_recipients(recipients, path, self._parts.registry())
        if unknown:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, validation.NOT_A_PARTNER, unknown)
        _raise_if(dv.self_recipients(recipients, path, agency))
        disclosure = pb.Disclosure()
        disclosure.CopyFrom(request.disclosure)
        # The holder is whoever holds the certificate, whatever the body says.
        disclosure.holding_agency_id = agency
        case_ref = call.case_ref = disclosure_ref_for(agency, disclosure.disclosure_id)
        kind = code(pb.DisclosureKind, disclosure.kind)
        created = await self._start_disclosure(
            case_ref, pb.DisclosureCaseInput(disclosure=disclosure),
            f"{kind} disclosure: {agency} tells {', '.join(recipients) or 'children social care'}",
        )  # fmt: skip
        return service_pb.SubmitDisclosureResponse(case_ref=case_ref, created=created)

    async def not_made(
        self,
        request: service_pb.RecordDisclosureNotMadeRequest,
        context: grpc.aio.ServicerContext,
    ) -> service_pb.RecordDisclosureNotMadeResponse:
        """Record a disclosure considered and not made, with reasons."""
        call = current()
        agency = call.agency_id = caller_agency(context, self._parts.registry())
        _raise_if(dv.validate_not_made(request))
        not_made = pb.DisclosureNotMade()
        not_made.CopyFrom(request.not_made)
        not_made.holding_agency_id = agency
        not_made.ClearField("decided_at")
        case_ref = call.case_ref = disclosure_ref_for(agency, not_made.disclosure_id)
        kind = code(pb.DisclosureKind, not_made.kind)
        created = await self._start_disclosure(
            case_ref,
            pb.DisclosureCaseInput(not_made=not_made),
            f"{kind} disclosure considered and not made by {agency}",
        )
        return service_pb.RecordDisclosureNotMadeResponse(case_ref=case_ref, created=created)

    async def _start_disclosure(
        self, case_ref: str, case: pb.DisclosureCaseInput, summary: str
    ) -> bool:
        """Start the disclosure case; False when its id had already opened it."""
        workflow_id = case_workflow_id(case_ref)
        # 👉 Temporal refuses the id again only while it keeps the closed case: once retention
        # has deleted it, the archive is what says the disclosure was already recorded. An
        # archive that is down does not hold up a new disclosure (Temporal still refuses any
        # id it keeps): only a repeat of one older than the retention could then open again.
        archive = self._parts.views.archive
        try:
            known = await asyncio.to_thread(archive.known, [workflow_id]) if archive else {}
            if known:
                return False
        except ArchiveUnavailable as err:
            structlog.get_logger(__name__).warning(
                "archive_unavailable", case_ref=case_ref, error_type=type(err).__name__
            )
        try:
            await self._parts.client.start_workflow(
                DisclosureCase.run,
                self._parts.signer.sealed(case, workflow_id, seal.START),
                id=workflow_id,
                task_queue=self._parts.hub_task_queue,
                # 👉 As for a request: the id comes from the idempotency key, and no case with
                # it may be replaced, so a resubmission finds its case.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary,
                rpc_timeout=rpc_timeout(),
            )
        except WorkflowAlreadyStartedError:
            return False
        return True


def _found(case_ref: str, digest: str, stored: str) -> service_pb.SubmitRequestResponse:
    """The answer to a request whose id already opened a case that keeps digest ``stored``."""
    # A case opened before digests were kept has none: it is found, as before.
    if stored and stored != digest:
        raise GatewayError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"request_id was already used for another request: case {case_ref}",
            [FieldViolation("request.request_id", f"already used by case {case_ref}")],
        ) from None
    return service_pb.SubmitRequestResponse(case_ref=case_ref, created=False)


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        raise invalid_argument(violations)


def _summary(request: pb.SharingRequest) -> str:
    """The case's static summary in the Temporal UI: codes and agency ids, no personal data."""
    urgency = code(pb.Urgency, request.urgency)
    purpose = code(pb.Purpose, request.purpose)
    holders = ", ".join(request.holding_agency_ids)
    return f"{urgency} {purpose}: {request.requesting_agency_id} asks {holders}"
