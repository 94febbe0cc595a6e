"""A disclosure's delivery: the items extracted at the holder, each recipient's delivery and
its acknowledgement.

The kind's dataset and the approved categories from the holder's system (its adapter), every
item carrying the disclosure's caveats and the basis it is shared on; the delivery to each
recipient's adapter, tried again after a pause (and the operator told once) for as long as it
fails; then the recipient's acknowledgement, awaited under the kind's deadline with the
escalation ladder after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

from workflows import agency_calls
from workflows.agency_calls import Failed
from workflows.commands import refuse_if
from workflows.disclosure.dataset import dataset_items
from workflows.disclosure.state import DisclosureState, caveat_codes
from workflows.domain import disclosure as dm
from workflows.domain.deadlines import Escalation
from workflows.domain.vocabulary import Actor, Step, timestamp
from workflows.ladder import Ladder, Record

with workflow.unsafe.imports_passed_through():
    from activities.agency import content_digest
    from activities.names import EXTRACT_RECORDS, RECEIVE_DELIVERY
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

AGENCY_RETRY = agency_calls.retrying(timedelta(minutes=1), attempts=6)
"""A disclosure's extraction and delivery: a bounded burst (a failing delivery is tried
again after a pause)."""
DELIVERY_RETRY_PAUSE = timedelta(minutes=30)


@dataclass(frozen=True)
class Delivery:
    """Delivers one disclosure to its recipients and records their acknowledgements."""

    state: DisclosureState
    keeper: Record
    ladder: Ladder

    # -- extraction -------------------------------------------------------------------------

    async def items(self) -> list[pb.RecordItem]:
        """The dataset as items, and the approved categories from the holder's system, each
        carrying the disclosure's caveats."""
        disclosure = self.state.disclosure
        items = dataset_items(self.state.case_ref, disclosure, workflow.now())
        categories = list(dict.fromkeys(disclosure.categories))
        if categories:
            items.extend(await self._extracted(categories))
        for item in items:
            del item.caveats[:]
            item.caveats.extend(disclosure.caveats)
        return items

    async def _extracted(
        self, categories: list[pb.InformationCategory.ValueType]
    ) -> list[pb.RecordItem]:
        """The holder's records in ``categories``; none when its system refuses."""
        holder = self.state.holder
        extracted = await agency_calls.attempt(
            EXTRACT_RECORDS,
            agency_pb.ExtractRecordsRequest(
                case_ref=self.state.case_ref,
                subjects=self.state.disclosure.subjects,
                categories=categories,
            ),
            agency_pb.ExtractRecordsResponse,
            agency_id=holder,
            summary=f"Extract {len(categories)} categories at {holder}",
            retry=AGENCY_RETRY,
            heartbeat=True,
        )
        if isinstance(extracted, Failed):
            # The dataset is the disclosure: it goes without the extra records.
            self.keeper.note("ExtractionRefused", holder, "", f"code={extracted.code}")
            return []
        self.keeper.note("RecordsExtracted", holder, "", f"items={len(extracted.items)}")
        # Defence in depth: nothing outside the disclosed categories leaves the hub.
        allowed = set(categories)
        return [i for i in extracted.items if i.category in allowed]

    # -- each recipient ---------------------------------------------------------------------

    async def deliver_and_wait(self, recipient: str, items: list[pb.RecordItem]) -> None:
        """Deliver ``items`` to ``recipient``, then wait for its acknowledgement (climbing
        the ladder after its deadline) and close its record."""
        record = self.state.recipients[recipient]
        response = await self._deliver(recipient, record, self._request(recipient, items))
        deadline = self._delivered(recipient, record, response, items)
        await self.ladder.wait(
            lambda: recipient in self.state.model.acknowledged,
            Step.RECIPIENT_ACKNOWLEDGES, recipient, deadline.due, deadline.ladder_period,
            record.escalations,
        )  # fmt: skip
        record.state = pb.CASE_STATE_CLOSED
        record.waiting_on = pb.WAITING_ON_UNSPECIFIED
        acknowledged_at = record.acknowledgement.acknowledged_at.ToDatetime(dt.UTC)
        record.deadline_met = acknowledged_at <= deadline.due
        self.keeper.publish()

    def _request(
        self, recipient: str, items: list[pb.RecordItem]
    ) -> agency_pb.ReceiveDeliveryRequest:
        state = self.state
        return agency_pb.ReceiveDeliveryRequest(
            # 👉 Derived from the case: every retry and replay presents the same id, so the
            # recipient stores the delivery once.
            delivery_id=f"{state.case_ref}.{recipient}.1",
            case_ref=state.case_ref,
            holding_agency_id=state.holder,
            subjects=state.disclosure.subjects,
            items=items,
            content_digest=content_digest(items),
            item_bases=[agency_pb.ItemBasis(item_id=i.item_id, basis=state.basis_of_sharing())
                        for i in items],
        )  # fmt: skip

    async def _deliver(
        self,
        recipient: str,
        record: pb.RecipientRecord,
        request: agency_pb.ReceiveDeliveryRequest,
    ) -> agency_pb.ReceiveDeliveryResponse:
        """Deliver until the recipient's system takes it; the operator hears of the first
        failed burst, the record of every one."""
        alerted = False
        while True:
            delivered = await agency_calls.attempt(
                RECEIVE_DELIVERY,
                request,
                agency_pb.ReceiveDeliveryResponse,
                agency_id=recipient,
                summary=f"Deliver the disclosure to {recipient}",
                retry=AGENCY_RETRY,
                heartbeat=True,
            )
            if not isinstance(delivered, Failed):
                return delivered
            record.delivery_failures += 1
            record.waiting_on = pb.WAITING_ON_OPERATOR
            self.keeper.note("DeliveryFailing", recipient, "", f"code={delivered.code}")
            if not alerted:
                alerted = True
                escalation = pb.Escalation(
                    step="delivery", level=Escalation.PARTNERSHIP_OPERATOR.value,
                    agency_id=recipient, at=timestamp(workflow.now()),
                )  # fmt: skip
                record.escalations.append(escalation)
                await self.ladder.alert_operator(escalation)
            self.keeper.publish()
            await workflow.sleep(DELIVERY_RETRY_PAUSE, summary="Retry the failing delivery")

    def _delivered(
        self,
        recipient: str,
        record: pb.RecipientRecord,
        response: agency_pb.ReceiveDeliveryResponse,
        items: list[pb.RecordItem],
    ) -> dm.Deadline:
        """Record the delivery and when its acknowledgement is due; return that deadline."""
        delivered_at = workflow.now()
        state = self.state
        receipt = response.receipt
        record.receipt.CopyFrom(receipt)
        record.shared_items.extend(
            pb.SharedItem(item_id=i.item_id, category=i.category, kind=i.kind,
                          holding_agency_id=state.holder)
            for i in items
        )  # fmt: skip
        self.keeper.note("RecordsDelivered", recipient, "",
                         f"delivery_id={receipt.delivery_id} items={receipt.item_count}"
                         f" digest={receipt.content_digest} charge=none "
                         f"caveats={caveat_codes(state.disclosure.caveats)}")  # fmt: skip
        state.model.apply(dm.Delivered(recipient))
        deadline = state.acknowledge_by(recipient, delivered_at)
        record.acknowledge_by.CopyFrom(timestamp(deadline.due))
        record.state = pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        record.waiting_on = pb.WAITING_ON_RECIPIENT
        self.keeper.note("AcknowledgementDue", recipient, "",
                         f"by={deadline.due:%Y-%m-%dT%H:%MZ} rule={deadline.rule}")  # fmt: skip
        self.keeper.publish()
        return deadline

    # -- the recipient's acknowledgement ----------------------------------------------------

    def check_acknowledgement(self, acknowledgement: pb.Acknowledgement) -> None:
        """Refuse an acknowledgement out of turn, from another party, or incomplete.

        Raises:
            ApplicationError: the rule it breaks, with the reason.
        """
        actor = Actor(acknowledgement.agency_id, acknowledgement.practitioner.user_id)
        refuse_if(self.state.model.check(dm.Acknowledge(actor, acknowledgement.status)))

    def acknowledged(self, acknowledgement: pb.Acknowledgement) -> None:
        """Record a recipient's acknowledgement (its wait for it then ends)."""
        ack = pb.Acknowledgement()
        ack.CopyFrom(acknowledgement)
        ack.acknowledged_at.CopyFrom(timestamp(workflow.now()))
        ack.holding_agency_id = self.state.holder
        self.state.recipients[ack.agency_id].acknowledgement.CopyFrom(ack)
        self.keeper.note("Acknowledged", ack.agency_id, ack.practitioner.user_id,
                         f"status={pb.AcknowledgementStatus.Name(ack.status)}")  # fmt: skip
        actor = Actor(ack.agency_id, ack.practitioner.user_id)
        self.state.model.apply(dm.Acknowledge(actor, ack.status))
