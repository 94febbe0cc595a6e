"""The one fake agency for tests: every agency's adapter as activities registered under the
real activity names on the real per-agency task queues (workflow tests on the time-skipping
server, gateway and security tests on the dev server). Holders answer what a test sets; what
recipients received is kept for assertions."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agency import ApplicationErrorType
from activities.names import (
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    NOTIFY_OPERATOR,
    NOTIFY_PRACTITIONER,
    RECEIVE_CONSENT_WITHDRAWN,
    RECEIVE_DELIVERY,
)
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent, timestamp


def items_for(categories: list[pb.InformationCategory.ValueType]) -> list[pb.RecordItem]:
    """Two items per category: a fact and an opinion."""
    return [
        pb.RecordItem(
            item_id=f"item-{pb.InformationCategory.Name(c).lower()}-{n}",
            category=c,
            kind=pb.ITEM_KIND_FACT if n == 1 else pb.ITEM_KIND_OPINION,
            source="records team",
            recorded_at=timestamp(dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
            content=f"fictional content {n}",
        )
        for c in categories
        for n in (1, 2)
    ]


@dataclass
class FakeAgencies:
    """Every agency's fake adapter: what holders answer, what recipients received."""

    consent: dict[str, pb.ConsentRecord] = field(default_factory=dict)
    """What each holder's consent lookup answers (default: ``default_consent``)."""
    default_consent: pb.ConsentRecord = field(default_factory=given_consent)
    refused: set[str] = field(default_factory=set)
    """Case refs whose consent lookup answers REFUSED, whichever holder is asked."""
    lookup_error: dict[str, str] = field(default_factory=dict)
    delivery_failures_left: int = 0
    deliveries: list[agency_pb.ReceiveDeliveryRequest] = field(default_factory=list)
    extractions: list[agency_pb.ExtractRecordsRequest] = field(default_factory=list)
    notifications: list[tuple[str, agency_pb.NotifyPractitionerRequest]] = field(
        default_factory=list
    )
    withdrawal_notices: list[agency_pb.ReceiveConsentWithdrawnRequest] = field(default_factory=list)
    operator_alerts: list[pb.Escalation] = field(default_factory=list)
    delivery_hold: asyncio.Event | None = None
    """When set, ReceiveDelivery stores the delivery, then waits for it before answering."""
    delivery_in_flight: asyncio.Event = field(default_factory=asyncio.Event)
    withdrawal_notice_refusals_left: int = 0

    def activities_for(self, agency_id: str) -> list[Callable[..., Any]]:
        """The four agency activities, bound to ``agency_id``."""

        @activity.defn(name=LOOKUP_CONSENT)
        async def lookup(
            request: agency_pb.LookupConsentRequest,
        ) -> agency_pb.LookupConsentResponse:
            if agency_id in self.lookup_error:
                raise ApplicationError(
                    "LookupConsent refused", self.lookup_error[agency_id],
                    type=ApplicationErrorType.AGENCY_REJECTED, non_retryable=True,
                )  # fmt: skip
            if request.case_ref in self.refused:
                return agency_pb.LookupConsentResponse(
                    consent=given_consent(status=pb.CONSENT_STATUS_REFUSED)
                )
            return agency_pb.LookupConsentResponse(
                consent=self.consent.get(agency_id, self.default_consent)
            )

        @activity.defn(name=EXTRACT_RECORDS)
        async def extract(
            request: agency_pb.ExtractRecordsRequest,
        ) -> agency_pb.ExtractRecordsResponse:
            self.extractions.append(request)
            # Offer one category more than asked: the workflow must filter it out.
            extra = [pb.INFORMATION_CATEGORY_POLICE_INCIDENTS]
            return agency_pb.ExtractRecordsResponse(items=items_for([*request.categories, *extra]))

        @activity.defn(name=RECEIVE_DELIVERY)
        async def deliver(
            request: agency_pb.ReceiveDeliveryRequest,
        ) -> agency_pb.ReceiveDeliveryResponse:
            if self.delivery_failures_left > 0:
                self.delivery_failures_left -= 1
                raise ApplicationError(
                    "ReceiveDelivery failed: UNAVAILABLE", "UNAVAILABLE",
                    type=ApplicationErrorType.AGENCY_UNAVAILABLE,
                )  # fmt: skip
            self.deliveries.append(request)
            if self.delivery_hold is not None:
                self.delivery_in_flight.set()
                await self.delivery_hold.wait()
            return agency_pb.ReceiveDeliveryResponse(
                receipt=pb.DeliveryReceipt(
                    delivery_id=request.delivery_id,
                    item_count=len(request.items),
                    content_digest=request.content_digest,
                )
            )

        @activity.defn(name=NOTIFY_PRACTITIONER)
        async def notify(
            request: agency_pb.NotifyPractitionerRequest,
        ) -> agency_pb.NotifyPractitionerResponse:
            self.notifications.append((agency_id, request))
            return agency_pb.NotifyPractitionerResponse(notification_id=request.notification_id)

        @activity.defn(name=RECEIVE_CONSENT_WITHDRAWN)
        async def withdrawn(
            request: agency_pb.ReceiveConsentWithdrawnRequest,
        ) -> agency_pb.ReceiveConsentWithdrawnResponse:
            if self.withdrawal_notice_refusals_left > 0:
                self.withdrawal_notice_refusals_left -= 1
                raise ApplicationError(
                    "ReceiveConsentWithdrawn refused: FAILED_PRECONDITION", "FAILED_PRECONDITION",
                    type=ApplicationErrorType.AGENCY_REJECTED, non_retryable=True,
                )  # fmt: skip
            self.withdrawal_notices.append(request)
            return agency_pb.ReceiveConsentWithdrawnResponse(
                notice_id=request.notice_id, deliveries_known=len(request.delivery_ids)
            )

        return [lookup, extract, deliver, notify, withdrawn]

    @activity.defn(name=NOTIFY_OPERATOR)
    async def notify_operator(self, escalation: pb.Escalation) -> None:
        self.operator_alerts.append(escalation)
