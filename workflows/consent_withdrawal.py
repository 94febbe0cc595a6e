"""ConsentWithdrawalNotice: consent withdrawn after an exchange has closed.

The exchange's own workflow records a withdrawal while it is still open; once it has closed,
the gateway starts this small workflow (one per exchange, so a repeat finds the first) which
records the withdrawal and pushes it to the recipient's system, retrying until it is received.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows import translate

with workflow.unsafe.imports_passed_through():
    from activities.agency import (
        AGENCY_CALL_TIMEOUT,
        RECEIVE_CONSENT_WITHDRAWN,
        ApplicationErrorType,
        agency_task_queue,
    )
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)


@workflow.defn
class ConsentWithdrawalNotice:
    """Record a consent withdrawal for a closed exchange and tell the recipient."""

    @workflow.run
    async def run(self, notice: pb.ConsentWithdrawalNoticeInput) -> pb.ConsentWithdrawal:
        """Push the notice to the recipient; return the withdrawal as recorded."""
        withdrawal = pb.ConsentWithdrawal()
        withdrawal.CopyFrom(notice.withdrawal)
        withdrawal.withdrawn_at.CopyFrom(translate.timestamp(workflow.now()))
        workflow.set_current_details(
            f"Telling {notice.recipient_agency_id} that consent held by "
            f"{notice.holding_agency_id} was withdrawn."
        )
        await workflow.execute_activity(
            RECEIVE_CONSENT_WITHDRAWN,
            agency_pb.ReceiveConsentWithdrawnRequest(
                notice_id=f"{notice.case_ref}.{notice.holding_agency_id}.consent-withdrawn",
                case_ref=notice.case_ref,
                delivery_ids=notice.delivery_ids,
                holding_agency_id=notice.holding_agency_id,
                withdrawn_at=withdrawal.withdrawn_at,
            ),
            task_queue=agency_task_queue(notice.recipient_agency_id),
            result_type=agency_pb.ReceiveConsentWithdrawnResponse,
            start_to_close_timeout=AGENCY_CALL_TIMEOUT + timedelta(seconds=10),
            retry_policy=NOTICE_RETRY,
            summary=f"Tell {notice.recipient_agency_id} consent was withdrawn",
        )
        withdrawal.recipient_notified = True
        return withdrawal
