"""ConsentWithdrawalNotice: consent withdrawn after an exchange has closed.

The exchange's own workflow records a withdrawal while it is still open; once it has closed,
the gateway starts this small workflow (one per exchange, so a repeat finds the first) which
records the withdrawal and pushes it to the recipient's system, retrying until it is received.
"""

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import agency_calls
from workflows.domain.vocabulary import timestamp

with workflow.unsafe.imports_passed_through():
    from activities.names import NOTICE_SEAL, NOTIFY_OPERATOR, RECEIVE_CONSENT_WITHDRAWN
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

NOTICE_NEVER_FAILS = "notice-never-fails"
"""A refused notice alerts the operator and is retried; the workflow never fails."""
SEALED_NOTICE_PATCH = "gateway-sealed-notice"
"""The hub checks the gateway's seal on the notice before anything is pushed; notices started
before take the old branch (nothing checked)."""
NOT_SEALED = "NoticeNotSealedByGateway"
NOTICE_RETRY_PAUSE = timedelta(minutes=30)
NOTICE_RETRY = agency_calls.retrying(timedelta(minutes=5))
"""Notices started before a refusal was retried: tried until the recipient takes it."""


@workflow.defn
class ConsentWithdrawalNotice:
    """Record a consent withdrawal for a closed exchange and tell the recipient."""

    @workflow.run
    async def run(self, notice: pb.ConsentWithdrawalNoticeInput) -> pb.ConsentWithdrawal:
        """Push the notice to the recipient; return the withdrawal as recorded.

        Raises:
            ApplicationError: the gateway did not seal the notice for this workflow (a start
                straight to Temporal): nothing is pushed and the workflow fails, for the
                operators' alert on failed workflows.
        """
        if workflow.patched(SEALED_NOTICE_PATCH):
            await _check_seal(notice)
        withdrawal = pb.ConsentWithdrawal()
        withdrawal.CopyFrom(notice.withdrawal)
        withdrawal.withdrawn_at.CopyFrom(timestamp(workflow.now()))
        workflow.set_current_details(
            f"Telling {notice.recipient_agency_id} that consent held by "
            f"{notice.holding_agency_id} was withdrawn."
        )
        if workflow.patched(NOTICE_NEVER_FAILS):
            await _push_until_received(notice, withdrawal)
        else:
            await _push(notice, withdrawal, NOTICE_RETRY)
        withdrawal.recipient_notified = True
        return withdrawal


async def _check_seal(notice: pb.ConsentWithdrawalNoticeInput) -> None:
    """Refuse a notice the gateway did not seal for this workflow (the hub checks it)."""
    checked = await agency_calls.hub(
        NOTICE_SEAL,
        notice,
        pb.GateResult,
        summary="Check the gateway's seal on the notice",
        retry=agency_calls.GATE_RETRY,
    )
    if not checked.passed:
        raise ApplicationError(
            "the notice is not sealed by the gateway: nothing was sent",
            type=NOT_SEALED, non_retryable=True,
        )  # fmt: skip


async def _push_until_received(
    notice: pb.ConsentWithdrawalNoticeInput, withdrawal: pb.ConsentWithdrawal
) -> None:
    """Push the notice; a refusal alerts the operator once and is tried again each pause,
    so the notice is never lost and this workflow never fails."""
    alerted = False
    while True:
        try:
            await _push(notice, withdrawal, agency_calls.NOTIFY_BURST)
            return
        except ActivityError:
            workflow.set_current_details(
                f"{notice.recipient_agency_id} has not taken the consent-withdrawal notice "
                "yet: the partnership operator was alerted; trying again."
            )
        if not alerted:
            alerted = True
            await _alert_operator(notice)
        await workflow.sleep(NOTICE_RETRY_PAUSE, summary="Retry the notice")


async def _push(
    notice: pb.ConsentWithdrawalNoticeInput,
    withdrawal: pb.ConsentWithdrawal,
    retry_policy: RetryPolicy,
) -> None:
    """Tell the recipient's system (its adapter) that consent was withdrawn."""
    await agency_calls.start(
        RECEIVE_CONSENT_WITHDRAWN,
        agency_pb.ReceiveConsentWithdrawnRequest(
            notice_id=f"{notice.case_ref}.{notice.holding_agency_id}.consent-withdrawn",
            case_ref=notice.case_ref,
            delivery_ids=notice.delivery_ids,
            holding_agency_id=notice.holding_agency_id,
            withdrawn_at=withdrawal.withdrawn_at,
        ),
        agency_pb.ReceiveConsentWithdrawnResponse,
        agency_id=notice.recipient_agency_id,
        summary=f"Tell {notice.recipient_agency_id} consent was withdrawn",
        retry=retry_policy,
    )


async def _alert_operator(notice: pb.ConsentWithdrawalNoticeInput) -> None:
    """Alert the partnership operator that the recipient has not taken the notice; a failing
    alert is let go (the notice is tried again all the same)."""
    escalation = pb.Escalation(
        step="consent_withdrawal", level="partnership_operator",
        agency_id=notice.recipient_agency_id, at=timestamp(workflow.now()),
    )  # fmt: skip
    with contextlib.suppress(ActivityError):
        await agency_calls.hub(
            NOTIFY_OPERATOR,
            escalation,
            summary="Alert the partnership operator: consent withdrawal not taken",
        )
