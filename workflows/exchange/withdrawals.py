"""What may be withdrawn from an exchange: consent after delivery (recorded, then pushed to
the recipient, retried until its system takes it), and the request itself or its urgency
(forwarded by the case as signals: the case's validators checked them).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import agency_calls
from workflows.agency_calls import NOTIFY_BURST, Failed
from workflows.commands import refuse_if
from workflows.domain.exchange_commands import WithdrawConsent, WithdrawRequest
from workflows.domain.vocabulary import actor_of, timestamp, urgency_of
from workflows.exchange import patches, seals

with workflow.unsafe.imports_passed_through():
    from activities.names import RECEIVE_CONSENT_WITHDRAWN
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState

NOTICE_RETRY_PAUSE = timedelta(minutes=30)
"""How long a refused consent-withdrawal notice waits before it is pushed again."""


# -- consent withdrawn after delivery ----------------------------------------------------


async def withdraw_consent(x: ExchangeState, withdrawn: pb.ConsentWithdrawal) -> None:
    """Record consent withdrawn after delivery and push it to the recipient."""
    withdrawn.withdrawn_at.CopyFrom(timestamp(workflow.now()))
    x.model.apply(_consent_command(withdrawn))
    x.note("ConsentWithdrawn", withdrawn.actor.agency_id, withdrawn.actor.practitioner.user_id,
           "after_delivery")  # fmt: skip
    if not x.patched(patches.CONSENT_NOTICE_RECORDED_FIRST):
        await agency_calls.start(
            RECEIVE_CONSENT_WITHDRAWN, _notice(x, withdrawn),
            agency_pb.ReceiveConsentWithdrawnResponse, agency_id=x.recipient,
            summary=f"Tell {x.recipient} consent was withdrawn",
        )  # fmt: skip
        withdrawn.recipient_notified = True
        x.record.consent_withdrawal.CopyFrom(withdrawn)
        x.note("ConsentWithdrawalDelivered", x.recipient, "", "recipient_notified")
        x.publish()
        return
    # 👉 Recorded before it is pushed: whatever the recipient's system answers, the record
    # holds the withdrawal and a repeat is rightly "already recorded".
    x.record.consent_withdrawal.CopyFrom(withdrawn)
    x.publish()
    if await _push(x):
        return
    x.notice_pending = True
    escalation = x.operator_escalation("consent_withdrawal", x.recipient)
    x.publish()
    await x.ladder.alert_operator(escalation)
    x.notice_retries = asyncio.create_task(_retry(x))


def validate_withdraw_consent(x: ExchangeState, withdrawal: pb.ConsentWithdrawal) -> None:
    """Refuse a consent withdrawal (canonical) out of turn.

    Raises:
        ApplicationError: the rule it breaks.
    """
    refuse_if(x.model.check(_consent_command(withdrawal)))


def _consent_command(withdrawal: pb.ConsentWithdrawal) -> WithdrawConsent:
    return WithdrawConsent(actor_of(withdrawal.actor))


def _notice(
    x: ExchangeState, withdrawn: pb.ConsentWithdrawal
) -> agency_pb.ReceiveConsentWithdrawnRequest:
    return agency_pb.ReceiveConsentWithdrawnRequest(
        notice_id=f"{x.case_ref}.{x.holder}.consent-withdrawn",
        case_ref=x.case_ref,
        delivery_ids=x.delivery_ids or [x.record.receipt.delivery_id],
        holding_agency_id=x.holder,
        withdrawn_at=withdrawn.withdrawn_at,
    )


async def _push(x: ExchangeState) -> bool:
    """Push the recorded withdrawal to the recipient: True once its system has it."""
    withdrawn = x.record.consent_withdrawal
    pushed = await agency_calls.attempt(
        RECEIVE_CONSENT_WITHDRAWN, _notice(x, withdrawn),
        agency_pb.ReceiveConsentWithdrawnResponse, agency_id=x.recipient, retry=NOTIFY_BURST,
        summary=f"Tell {x.recipient} consent was withdrawn",
    )  # fmt: skip
    if isinstance(pushed, Failed):
        x.note("ConsentWithdrawalNotDelivered", x.recipient, "", f"code={pushed.code}")
        x.publish()
        return False
    withdrawn.recipient_notified = True
    x.notice_pending = False
    x.note("ConsentWithdrawalDelivered", x.recipient, "", "recipient_notified")
    x.publish()
    return True


async def _retry(x: ExchangeState) -> None:
    """Try the refused notice again every pause until the recipient's system takes it."""
    while not await _push(x):
        await workflow.sleep(NOTICE_RETRY_PAUSE, summary="Retry the consent-withdrawal notice")


# -- from the case (signals: the case validated them) ------------------------------------


def withdraw_request(x: ExchangeState, withdrawal: pb.RequestWithdrawal) -> None:
    """The requester withdrew the request: the exchange closes, or lets what was shared and
    what it owes stand."""
    if not seals.forwarded_by_case(x, withdrawal):
        return
    command = WithdrawRequest(
        actor_of(withdrawal.actor),
        keeps_shares=x.patched(patches.WITHDRAWAL_KEEPS_SHARES),
    )
    refusal = x.model.check(command)
    actor = withdrawal.actor
    if refusal is not None and command.keeps_shares:
        # Closing as the withdrawal arrived: the outcome stands and the record says why.
        x.note("WithdrawalNotApplied", actor.agency_id, actor.practitioner.user_id,
               refusal.rule.value)  # fmt: skip
    if refusal is None:
        x.model.apply(command)
        if x.model.withdrawn:
            # Something was or may be shared: the share and its owed decisions stand.
            detail = "shared" if x.model.delivered else "delivery_in_flight"
        else:
            detail = ""
            x.record.basis = f"Withdrawn by {x.recipient}"
        x.note("RequestWithdrawn", actor.agency_id, actor.practitioner.user_id, detail)
        x.publish()


def change_urgency(x: ExchangeState, change: pb.UrgencyChange) -> None:
    """The requester re-rated the urgency: the deadlines move."""
    if not seals.forwarded_by_case(x, change):
        return
    x.model.urgency = urgency_of(change.urgency)
    x.urgency_version += 1
    x.note("UrgencyChanged", change.actor.agency_id, change.actor.practitioner.user_id,
           f"urgency={pb.Urgency.Name(change.urgency)}")  # fmt: skip
    x.publish()
