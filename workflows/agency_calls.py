"""A workflow's calls into the agencies' systems and the hub: their options in one place.

An agency activity runs on that agency's own task queue (its adapter worker calls the agency's
``agency.v1`` system, once, with a deadline); a hub activity runs on the workflow's own queue.
Each call site states only what differs: the activity, its input, whose system, the retry
policy and the summary operators see in the UI.

Side-effect free and without module state (a pure module the sandbox passes through).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.agency import (
        AGENCY_CALL_TIMEOUT,
        ApplicationErrorType,
        agency_task_queue,
        error_code,
    )

R = TypeVar("R")
P = ParamSpec("P")


def retrying(maximum_interval: timedelta, attempts: int = 0) -> RetryPolicy:
    """Retry an agency activity with backoff up to ``maximum_interval``, ``attempts`` times in
    all (0: until it succeeds); never a refusal by the agency."""
    # 👉 Temporal is the one retry layer: adapters make each gRPC call once, with a deadline
    # below the activity's start-to-close timeout, and raise non-retryable errors for refusals.
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=maximum_interval,
        maximum_attempts=attempts,
        non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
    )


AGENCY_RETRY = retrying(timedelta(minutes=1))
DELIVERY_RETRY = retrying(timedelta(seconds=30), attempts=6)
"""Delivery gives up after a bounded burst and tells operators, then tries again later."""
# 👉 On an escalation path a notification that cannot get through must not hold up the
# ladder: a bounded burst, then the next rung (and the operator) hears of it instead.
NOTIFY_BURST = retrying(timedelta(seconds=30), attempts=5)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
"""Until it gets through, refusals too (runs recorded before the ladder never failed)."""
GATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
"""The hub's protocol gate (and its seal checks) is asked until it answers."""
AGENCY_START_TO_CLOSE = AGENCY_CALL_TIMEOUT + timedelta(seconds=10)
HUB_START_TO_CLOSE = timedelta(seconds=30)
HEARTBEAT = timedelta(seconds=10)
"""Adapters heartbeat while a long call is in flight: a dead adapter is noticed in seconds
and the call retried elsewhere."""


def start(
    activity: str,
    arg: Any,
    result_type: type[R],
    *,
    agency_id: str,
    summary: str,
    retry: RetryPolicy = AGENCY_RETRY,
    heartbeat: bool = False,
) -> workflow.ActivityHandle[R]:
    """Start ``activity`` at ``agency_id``'s system (its adapter's task queue); awaiting the
    handle raises ``ActivityError`` when the agency refused it or every attempt failed."""
    return workflow.start_activity(
        activity,
        arg,
        task_queue=agency_task_queue(agency_id),
        result_type=result_type,
        start_to_close_timeout=AGENCY_START_TO_CLOSE,
        heartbeat_timeout=HEARTBEAT if heartbeat else None,
        retry_policy=retry,
        summary=summary,
    )


async def hub(
    activity: str,
    arg: Any,
    result_type: type[R] | None = None,
    *,
    summary: str,
    retry: RetryPolicy = NOTIFY_BURST,
) -> Any:
    """Run a hub activity (the operators' alerts, the partnership registry).

    Raises:
        ActivityError: it failed every attempt of ``retry``.
    """
    return await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=HUB_START_TO_CLOSE,
        retry_policy=retry,
        summary=summary,
    )


@dataclass(frozen=True)
class Failed:
    """Why an activity failed, as a workflow may record it."""

    code: str
    """A code for the failure (never the agency's own message)."""
    refused: bool
    """The agency refused it (nothing was done), rather than being unavailable."""

    @classmethod
    def of(cls, err: ActivityError) -> Failed:
        """The failure ``err`` reports."""
        cause = err.cause
        refused = isinstance(cause, ApplicationError) and (
            cause.type == ApplicationErrorType.AGENCY_REJECTED
        )
        return cls(code=error_code(err), refused=refused)


def _answer_or_failure(
    start: Callable[P, workflow.ActivityHandle[R]],
) -> Callable[P, Coroutine[Any, Any, R | Failed]]:
    async def attempt(*args: P.args, **kwargs: P.kwargs) -> R | Failed:
        """Run an activity as ``start`` does: its answer, or why it failed."""
        try:
            return await start(*args, **kwargs)
        except ActivityError as err:
            return Failed.of(err)

    return attempt


attempt = _answer_or_failure(start)
"""Run an activity at an agency's system (as ``start`` does): its answer, or why it failed."""
