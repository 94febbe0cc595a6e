"""How long a disclosure's activities may take and how often they are tried.

👉 Temporal is the one retry layer: adapters make each gRPC call once, with a deadline below
the activity's start-to-close timeout, and raise non-retryable errors for refusals. These are
constants: nothing changes them once the module is loaded.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.agency import AGENCY_CALL_TIMEOUT, ApplicationErrorType

GATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
AGENCY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=6,
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
# 👉 A notification that cannot get through must not hold up the ladder: a bounded burst,
# then the next rung (and the operator) hears of it instead.
NOTIFY_BURST = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
AGENCY_START_TO_CLOSE = AGENCY_CALL_TIMEOUT + timedelta(seconds=10)
DELIVERY_RETRY_PAUSE = timedelta(minutes=30)
"""A delivery that failed its burst is tried again after this pause, for as long as it fails."""
