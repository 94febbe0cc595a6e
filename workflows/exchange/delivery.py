"""The delivery of an exchange: the holder's adapter extracts the approved categories only,
the recipient's adapter stores them (idempotent on the delivery id, derived from the case); a
delivery that keeps failing tells the operator and tries again after a pause, until the
recipient answers. Also the exchange's ends without a delivery (stopped, nothing to share).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import agency_calls
from workflows.agency_calls import DELIVERY_RETRY, Failed
from workflows.domain.exchange_commands import Delivered, NothingToShare, StopDelivery
from workflows.domain.vocabulary import State, timestamp
from workflows.exchange import patches

with workflow.unsafe.imports_passed_through():
    from activities.agency import content_digest
    from activities.names import EXTRACT_RECORDS, RECEIVE_DELIVERY
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState

RETRY_PAUSE = timedelta(minutes=30)
"""How long a failing delivery waits before the recipient is asked again."""

Categories = list[pb.InformationCategory.ValueType]


async def deliver(x: ExchangeState) -> None:
    """Extract the approved categories at the holder and deliver them to the recipient."""
    x.delivering_since = workflow.now()  # for the delivery latency metric only
    categories = _approved_categories(x)
    extracted = await agency_calls.attempt(
        EXTRACT_RECORDS,
        agency_pb.ExtractRecordsRequest(
            case_ref=x.case_ref, subjects=x.request.subjects, categories=categories
        ),
        agency_pb.ExtractRecordsResponse,
        agency_id=x.holder, heartbeat=True,
        summary=f"Extract {len(categories)} approved categories at {x.holder}",
    )  # fmt: skip
    if isinstance(extracted, Failed):
        nothing_to_share(x, f"extraction_refused:{extracted.code}")
        return
    if x.model.state is not State.DELIVERING:
        return
    if x.model.withdrawn:  # withdrawn while the records were extracted
        stop(x, "withdrawn_before_delivery")
        return
    request, items = _delivery(x, extracted, categories)
    while x.model.state is State.DELIVERING:
        response = await agency_calls.attempt(
            RECEIVE_DELIVERY, request, agency_pb.ReceiveDeliveryResponse,
            agency_id=x.recipient, heartbeat=True, retry=DELIVERY_RETRY,
            summary=f"Deliver to {x.recipient}",
        )  # fmt: skip
        if isinstance(response, Failed):
            if x.model.withdrawn and response.refused:
                # The recipient's system refused it (nothing stored) and the request was
                # withdrawn meanwhile: nothing was shared and nothing more is tried.
                stop(x, f"withdrawn_delivery_refused:{response.code}")
                return
            # 👉 Otherwise, withdrawn or not, this delivery may have been stored (a lost
            # reply): it is tried again, under the same id, until the recipient answers, so
            # the record says what the recipient holds.
            await _failing(x, response.code)
            continue
        _delivered(x, response.receipt, items, categories)
        return


def _approved_categories(x: ExchangeState) -> Categories:
    if x.model.per_category:
        # What a basis authorises and has not been delivered yet.
        return [
            c
            for c in x.asked_categories()
            if pb.InformationCategory.Name(c) in x.model.authorised
            and pb.InformationCategory.Name(c) not in x.model.delivered_categories
        ]
    asked = [c.category for c in x.request.categories]
    if x.record.HasField("share_first"):
        minimum = set(x.record.share_first.minimum_data_set)
    elif x.record.HasField("override_decision") and x.model.override_approved:
        minimum = set(x.record.override_proposal.minimum_data_set)
    else:
        return asked
    return [c for c in asked if c in minimum]


def _delivery(
    x: ExchangeState, extracted: agency_pb.ExtractRecordsResponse, categories: Categories
) -> tuple[agency_pb.ReceiveDeliveryRequest, list[pb.RecordItem]]:
    """The delivery of what was extracted in ``categories`` (nothing else leaves the hub),
    and its items."""
    items = [item for item in extracted.items if item.category in set(categories)]
    number = len(x.delivery_ids) + 1 if x.model.per_category else 1
    request = agency_pb.ReceiveDeliveryRequest(
        # 👉 Derived from the case, not random: every retry and every replay presents
        # the same id, so the recipient stores the delivery once.
        delivery_id=f"{x.case_ref}.{x.holder}.{number}",
        case_ref=x.case_ref,
        holding_agency_id=x.holder,
        subjects=x.request.subjects,
        items=items,
        content_digest=content_digest(items),
    )
    if extracted.claim_ref:
        request.claim_ref = extracted.claim_ref
        request.claim_digest = extracted.claim_digest
    if x.model.per_category:
        # Every item travels with the basis that authorised its category.
        request.item_bases.extend(
            agency_pb.ItemBasis(
                item_id=item.item_id, basis=x.bases[pb.InformationCategory.Name(item.category)]
            )
            for item in items
        )
    return request, items


async def _failing(x: ExchangeState, code: str) -> None:
    """A delivery that cannot succeed now escalates to operators, then tries again."""
    x.record.delivery_failures += 1
    x.note("DeliveryFailing", x.recipient, "", f"code={code}")
    if not x.operator_alerted:
        x.operator_alerted = True
        escalation = x.operator_escalation("delivery", x.recipient)
        x.publish()
        never_fails = x.patched(patches.LADDER_NEVER_FAILS)
        await x.ladder.alert_operator(escalation, never_fails=never_fails)
    await _pause(x)


async def _pause(x: ExchangeState) -> None:
    def withdrawn_now() -> bool:
        # 👉 A withdrawal ends this pause once: the recipient is asked again at once, under
        # the same delivery id, and its answer resolves the exchange (stored: recorded as
        # delivered with the withdrawal; refused: nothing was shared). A recipient still
        # down leaves the usual pauses: a lost reply may have stored it.
        return x.prompt_withdrawal and x.model.withdrawn and not x.withdrawal_retried

    with contextlib.suppress(TimeoutError):
        await workflow.wait_condition(
            lambda: x.model.state is not State.DELIVERING or withdrawn_now(),
            timeout=RETRY_PAUSE,
            timeout_summary="Retry the failing delivery",
        )
    if withdrawn_now():
        x.withdrawal_retried = True
        x.note("DeliveryRetriedForWithdrawal", x.recipient, "", "")


def _delivered(
    x: ExchangeState,
    receipt: pb.DeliveryReceipt,
    items: list[pb.RecordItem],
    categories: Categories,
) -> None:
    x.record.receipt.CopyFrom(receipt)
    delivered = frozenset(pb.InformationCategory.Name(c) for c in categories)
    if x.model.per_category:
        x.delivery_ids.append(receipt.delivery_id)
        for decision in x.record.categories:
            if pb.InformationCategory.Name(decision.category) in delivered:
                decision.shared_at.CopyFrom(timestamp(workflow.now()))
                decision.delivery_id = receipt.delivery_id
    x.record.shared_items.extend(
        pb.SharedItem(
            item_id=i.item_id, category=i.category, kind=i.kind, holding_agency_id=x.holder
        )
        for i in items
    )
    x.note("RecordsDelivered", x.recipient, "",
           f"delivery_id={receipt.delivery_id} items={receipt.item_count} "
           f"digest={receipt.content_digest} charge=none")  # fmt: skip
    x.delivered_at = workflow.now()
    latency = workflow.metric_meter().create_histogram_timedelta(
        "safeshare_delivery_latency", "From the DELIVERING step to the recipient's receipt."
    )
    latency.record(x.delivered_at - (x.delivering_since or x.delivered_at))
    x.operator_alerted = False
    # 👉 The exchange may have moved while the delivery was in flight: what landed is
    # recorded above whatever the model says now, and a refusal never fails the task.
    command = Delivered(delivered if x.model.per_category else None)
    if refusal := x.model.check(command):
        x.note("ModelRefused", x.holder, "", f"Delivered: {refusal.rule.value}")
    else:
        x.model.apply(command)
    x.publish()


def stop(x: ExchangeState, reason: str) -> None:
    """The request was withdrawn and nothing was delivered: the delivery stops."""
    if x.model.check(StopDelivery()) is not None:
        return
    x.note("DeliveryStopped", x.recipient, "", reason)
    x.record.basis = f"Withdrawn by {x.recipient}"
    x.model.apply(StopDelivery())
    x.publish()


def nothing_to_share(x: ExchangeState, reason: str) -> None:
    """The holder has nothing to share (its system refused a lookup or an extraction)."""
    if x.model.check(NothingToShare()) is not None:
        return
    x.note("NothingToShare", x.holder, "", reason)
    if not x.model.delivered_categories:
        x.record.basis = f"Not shared by {x.holder}: {reason}"
    x.model.apply(NothingToShare())
    x.publish()
