"""The agency activities, implemented by calling the agency's own ``agency.v1`` system.

Each activity makes exactly one gRPC call with a deadline and translates its outcome: the
request and response messages pass through unchanged, and a failed call becomes the Temporal
error :mod:`agency_adapters.errors` chooses. Retrying is Temporal's job, not this class's.

While a call is in flight the activity heartbeats, so a workflow that sets a heartbeat timeout
notices a dead adapter in seconds rather than after the whole start-to-close timeout. Records
too large for a workflow history go through the claim-check store (:mod:`agency_adapters.claims`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agency import (
    AGENCY_CALL_TIMEOUT,
    CLAIM_CHECK_FAILED,
    MAX_ACTIVITY_PAYLOAD_BYTES,
    PAYLOAD_TOO_LARGE,
    content_digest,
)
from activities.names import (
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    NOTIFY_PRACTITIONER,
    RECEIVE_CONSENT_WITHDRAWN,
    RECEIVE_DELIVERY,
)
from agency_adapters.claims import ClaimError, ClaimStore
from agency_adapters.errors import from_rpc_error
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from protos.agency.v1.agency_service_pb2_grpc import AgencyServiceAsyncStub

# 👉 Below AGENCY_CALL_TIMEOUT, so a hung agency system surfaces as a retryable
# DEADLINE_EXCEEDED from inside the activity rather than as an activity timeout.
DEFAULT_CALL_TIMEOUT = AGENCY_CALL_TIMEOUT.total_seconds() - 5

DEFAULT_HEARTBEAT_SECONDS = 5.0
"""How often an activity heartbeats while its call is in flight (more often when the
workflow's heartbeat timeout is short: a third of it)."""

MAX_AGENCY_MESSAGE_BYTES = 32 * 1024 * 1024
"""The largest gRPC message exchanged with an agency system: a bound, but room for large
records that then travel through the claim-check store."""

log = structlog.get_logger(__name__)

_Response = TypeVar("_Response")


class AgencyActivities:
    """The agency activities for one agency, sharing one gRPC stub."""

    def __init__(
        self,
        stub: AgencyServiceAsyncStub,
        agency_id: str,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        *,
        claims: ClaimStore | None = None,
        max_payload_bytes: int = MAX_ACTIVITY_PAYLOAD_BYTES,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        """Args:
        stub: an ``AgencyServiceStub`` on a channel to the agency's system.
        agency_id: the agency this adapter serves (for logs only).
        call_timeout: the deadline of each gRPC call, in seconds.
        claims: where records too large for a payload go; None refuses them instead.
        max_payload_bytes: the largest extraction returned inline.
        heartbeat_seconds: the longest gap between heartbeats while a call is in flight.
        """
        self._stub = stub
        self._agency_id = agency_id
        self._call_timeout = call_timeout
        self._claims = claims
        self._max_payload_bytes = max_payload_bytes
        self._heartbeat_seconds = heartbeat_seconds

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, to register with a worker."""
        return [
            self.lookup_consent,
            self.extract_records,
            self.receive_delivery,
            self.notify_practitioner,
            self.receive_consent_withdrawn,
        ]

    @activity.defn(name=LOOKUP_CONSENT)
    async def lookup_consent(
        self, request: agency_pb.LookupConsentRequest
    ) -> agency_pb.LookupConsentResponse:
        """Ask the agency for the consent record it holds for the request's subjects."""
        with self._bound(request.case_ref, "LookupConsent"):
            response = await self._call(
                "LookupConsent", self._stub.LookupConsent(request, timeout=self._call_timeout)
            )
            log.info("consent_looked_up", status=pb.ConsentStatus.Name(response.consent.status))
            return response

    @activity.defn(name=EXTRACT_RECORDS)
    async def extract_records(
        self, request: agency_pb.ExtractRecordsRequest
    ) -> agency_pb.ExtractRecordsResponse:
        """Ask the agency for its records in the approved categories.

        Raises:
            ApplicationError: ``PayloadTooLarge`` (non-retryable) when the records are too
                large to return and cannot be claim-checked.
        """
        with self._bound(request.case_ref, "ExtractRecords"):
            response = await self._call(
                "ExtractRecords", self._stub.ExtractRecords(request, timeout=self._call_timeout)
            )
            size = response.ByteSize()
            if size > self._max_payload_bytes:
                response = self._claim(response, size)
            log.info(
                "records_extracted",
                item_count=len(response.items),
                size_bytes=size,
                claimed=bool(response.claim_ref),
            )
            return response

    @activity.defn(name=RECEIVE_DELIVERY)
    async def receive_delivery(
        self, request: agency_pb.ReceiveDeliveryRequest
    ) -> agency_pb.ReceiveDeliveryResponse:
        """Hand a delivery to the recipient agency; idempotent on ``delivery_id``.

        A request with a ``claim_ref`` is resolved from the claim-check store first.

        Raises:
            ApplicationError: ``ClaimCheckFailed`` or ``PayloadTooLarge`` (non-retryable).
        """
        with self._bound(request.case_ref, "ReceiveDelivery"):
            if request.claim_ref:
                request = self._resolve(request)
            if request.ByteSize() > MAX_AGENCY_MESSAGE_BYTES:
                raise _too_large("delivery exceeds the agency message limit")
            response = await self._call(
                "ReceiveDelivery",
                self._stub.ReceiveDelivery(request, timeout=self._call_timeout),
            )
            log.info(
                "delivery_received",
                delivery_id=response.receipt.delivery_id,
                item_count=response.receipt.item_count,
                duplicate=response.receipt.duplicate,
            )
            return response

    @activity.defn(name=NOTIFY_PRACTITIONER)
    async def notify_practitioner(
        self, request: agency_pb.NotifyPractitionerRequest
    ) -> agency_pb.NotifyPractitionerResponse:
        """Ask the agency to notify a practitioner; idempotent on ``notification_id``."""
        with self._bound(request.case_ref, "NotifyPractitioner"):
            response = await self._call(
                "NotifyPractitioner",
                self._stub.NotifyPractitioner(request, timeout=self._call_timeout),
            )
            # The text is for the practitioner, not for the logs.
            log.info(
                "practitioner_notified",
                notification_id=response.notification_id,
                kind=agency_pb.NotificationKind.Name(request.kind),
                step=request.step,
                duplicate=response.duplicate,
            )
            return response

    @activity.defn(name=RECEIVE_CONSENT_WITHDRAWN)
    async def receive_consent_withdrawn(
        self, request: agency_pb.ReceiveConsentWithdrawnRequest
    ) -> agency_pb.ReceiveConsentWithdrawnResponse:
        """Tell a recipient agency that consent was withdrawn; idempotent on ``notice_id``."""
        with self._bound(request.case_ref, "ReceiveConsentWithdrawn"):
            response = await self._call(
                "ReceiveConsentWithdrawn",
                self._stub.ReceiveConsentWithdrawn(request, timeout=self._call_timeout),
            )
            log.info(
                "consent_withdrawal_received",
                notice_id=response.notice_id,
                deliveries_known=response.deliveries_known,
                deliveries_unknown=response.deliveries_unknown,
                duplicate=response.duplicate,
            )
            return response

    # -- claim-check -------------------------------------------------------------------------

    def _claim(
        self, response: agency_pb.ExtractRecordsResponse, size: int
    ) -> agency_pb.ExtractRecordsResponse:
        if self._claims is None:
            raise _too_large(
                f"extraction of {size} bytes exceeds {self._max_payload_bytes} and no "
                "claim-check store is configured"
            )
        ref, digest = self._claims.put(response.SerializeToString(deterministic=True))
        claimed = agency_pb.ExtractRecordsResponse(
            claim_ref=ref, claim_digest=digest, content_digest=content_digest(response.items)
        )
        for item in response.items:
            stub = claimed.items.add()
            stub.CopyFrom(item)
            stub.ClearField("content")
        if claimed.ByteSize() > self._max_payload_bytes:
            raise _too_large(
                f"even without their content, {len(response.items)} items exceed "
                f"{self._max_payload_bytes} bytes"
            )
        log.info("records_claim_checked", claim_digest=digest, size_bytes=size)
        return claimed

    def _resolve(
        self, request: agency_pb.ReceiveDeliveryRequest
    ) -> agency_pb.ReceiveDeliveryRequest:
        if self._claims is None:
            raise _claim_failed("no claim-check store is configured")
        try:
            claimed = agency_pb.ExtractRecordsResponse.FromString(
                self._claims.get(request.claim_ref, request.claim_digest)
            )
        except ClaimError as err:
            raise _claim_failed(str(err)) from None
        by_id = {item.item_id: item for item in claimed.items}
        if any(stub.item_id not in by_id for stub in request.items):
            raise _claim_failed("the delivery names an item the claim does not hold")
        # The workflow may have dropped items (e.g. outside the approved categories): deliver
        # exactly the items it kept, in its order, with their full content.
        items = [by_id[stub.item_id] for stub in request.items]
        resolved = agency_pb.ReceiveDeliveryRequest()
        resolved.CopyFrom(request)
        resolved.ClearField("claim_ref")
        resolved.ClearField("claim_digest")
        del resolved.items[:]
        resolved.items.extend(items)
        resolved.content_digest = content_digest(items)
        log.info("claim_resolved", claim_digest=request.claim_digest, item_count=len(items))
        return resolved

    # -- one call ----------------------------------------------------------------------------

    @contextmanager
    def _bound(self, case_ref: str, rpc: str) -> Iterator[None]:
        with structlog.contextvars.bound_contextvars(
            case_ref=case_ref, agency_id=self._agency_id, rpc=rpc
        ):
            yield

    async def _call(self, rpc: str, call: Awaitable[_Response]) -> _Response:
        heartbeats = asyncio.create_task(self._heartbeat_while_in_flight())
        try:
            return await call
        except grpc.aio.AioRpcError as err:
            log.warning("agency_call_failed", code=err.code().name)
            if _over_message_limit(err):
                # Retrying would fetch the same oversized answer for ever.
                raise _too_large(f"{rpc} answer exceeds the agency message limit") from None
            # 👉 `from None`: Temporal serialises an exception's __cause__ into the failure,
            # and the gRPC error's details are the agency's words (possibly personal data).
            raise from_rpc_error(rpc, err) from None
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats

    async def _heartbeat_while_in_flight(self) -> None:
        interval = self._heartbeat_seconds
        timeout = activity.info().heartbeat_timeout
        if timeout:
            interval = min(interval, timeout.total_seconds() / 3)
        while True:
            # 👉 A heartbeat also delivers cancellation: if the workflow cancels the activity,
            # the SDK cancels the awaiting task and with it the gRPC call.
            activity.heartbeat()
            await asyncio.sleep(interval)


def _over_message_limit(err: grpc.aio.AioRpcError) -> bool:
    # gRPC's own wording when *our* channel refuses an oversized message, as opposed to an
    # agency answering RESOURCE_EXHAUSTED because it is overloaded (which is worth retrying).
    return err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and (err.details() or "").startswith(
        ("Received message larger than max", "Sent message larger than max")
    )


def _too_large(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=PAYLOAD_TOO_LARGE, non_retryable=True)


def _claim_failed(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=CLAIM_CHECK_FAILED, non_retryable=True)
