"""The agency activities, implemented by calling the agency's own ``agency.v1`` system.

Each activity makes exactly one gRPC call with a deadline and translates its outcome: the
request and response messages pass through unchanged, and a failed call becomes the Temporal
error :mod:`agency_adapters.errors` chooses. Retrying is Temporal's job, not this class's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import grpc
import structlog
from temporalio import activity

from activities.agency import (
    AGENCY_CALL_TIMEOUT,
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    RECEIVE_DELIVERY,
)
from agency_adapters.errors import from_rpc_error
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from protos.agency.v1.agency_service_pb2_grpc import AgencyServiceAsyncStub

# 👉 Below AGENCY_CALL_TIMEOUT, so a hung agency system surfaces as a retryable
# DEADLINE_EXCEEDED from inside the activity rather than as an activity timeout.
DEFAULT_CALL_TIMEOUT = AGENCY_CALL_TIMEOUT.total_seconds() - 5

log = structlog.get_logger(__name__)

_Response = TypeVar("_Response")


class AgencyActivities:
    """The three agency activities for one agency, sharing one gRPC stub."""

    def __init__(
        self,
        stub: AgencyServiceAsyncStub,
        agency_id: str,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        """Args:
        stub: an ``AgencyServiceStub`` on a channel to the agency's system.
        agency_id: the agency this adapter serves (for logs only).
        call_timeout: the deadline of each gRPC call, in seconds.
        """
        self._stub = stub
        self._agency_id = agency_id
        self._call_timeout = call_timeout

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
        """Ask the agency for its records in the approved categories."""
        with self._bound(request.case_ref, "ExtractRecords"):
            response = await self._call(
                "ExtractRecords", self._stub.ExtractRecords(request, timeout=self._call_timeout)
            )
            log.info("records_extracted", item_count=len(response.items))
            return response

    @activity.defn(name=RECEIVE_DELIVERY)
    async def receive_delivery(
        self, request: agency_pb.ReceiveDeliveryRequest
    ) -> agency_pb.ReceiveDeliveryResponse:
        """Hand a delivery to the recipient agency; idempotent on ``delivery_id``."""
        with self._bound(request.case_ref, "ReceiveDelivery"):
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

    @contextmanager
    def _bound(self, case_ref: str, rpc: str) -> Iterator[None]:
        with structlog.contextvars.bound_contextvars(
            case_ref=case_ref, agency_id=self._agency_id, rpc=rpc
        ):
            yield

    async def _call(self, rpc: str, call: Awaitable[_Response]) -> _Response:
        try:
            return await call
        except grpc.aio.AioRpcError as err:
            log.warning("agency_call_failed", code=err.code().name)
            # 👉 `from None`: Temporal serialises an exception's __cause__ into the failure,
            # and the gRPC error's details are the agency's words (possibly personal data).
            raise from_rpc_error(rpc, err) from None
