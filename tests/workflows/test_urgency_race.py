"""An urgency change that arrives while an exchange is being started reaches that exchange.

The exchange's input is built with the urgency in force when its start begins; a change
accepted before the start completes has no handle to signal yet. An interceptor holds the start
on a timer so the change lands in exactly that window.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from protos.sharing.v1 import case_pb2 as pb
from tests.eventually import eventually
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.workflows.harness import CSC, SCHOOL, actor, running_case
from workflows.sharing_case import SharingCase

HOLD = timedelta(seconds=3)
REFUSED = given_consent(status=pb.CONSENT_STATUS_REFUSED)
SOCIAL_WORKER = actor(CSC, "sw-1", "social_worker")


class _HeldStart(WorkflowOutboundInterceptor):
    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        await workflow.sleep(HOLD)  # a slow start, in the workflow's own (durable) time
        return await super().start_child_workflow(input)


class _HeldInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_HeldStart(outbound))


class HoldChildStarts(Interceptor):
    """Every child workflow start waits ``HOLD`` first."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _HeldInbound


async def _until_timer_started(case_handle: Any) -> None:
    async def events() -> list[Any]:
        return [e async for e in case_handle.fetch_history_events()]

    await eventually(
        events,
        lambda seen: any(e.HasField("timer_started_event_attributes") for e in seen),
        what="the exchange's start held",
        every=0.02,
        last=len,
    )


async def test_urgency_changed_while_the_exchange_starts_reaches_it(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={SCHOOL: REFUSED})
    async with running_case(time_skipping, agencies, "urgency-while-starting",
                            urgency=pb.URGENCY_GREEN,
                            hub_interceptors=[HoldChildStarts()]) as case:  # fmt: skip
        await _until_timer_started(case.handle)
        view = await case.handle.execute_update(
            SharingCase.change_urgency,
            pb.UrgencyChange(actor=SOCIAL_WORKER, urgency=pb.URGENCY_RED, reason="new disclosure"),
        )
        assert isinstance(view, pb.CommandResult)  # what changed, not the whole view
        assert [e.event for e in view.entries] == ["UrgencyChanged"]
        holder = await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        for _ in range(100):
            if "UrgencyChanged" in [e.event for e in holder.entries]:
                break
            await asyncio.sleep(0.05)
            holder = await case.holder_state()
        await case.handle.execute_update(
            SharingCase.withdraw_request, pb.RequestWithdrawal(actor=SOCIAL_WORKER, reason="done")
        )
        await case.result()
    assert "UrgencyChanged" in [e.event for e in holder.entries]
    start = holder.entries[0].at.ToDatetime()
    # RED: the holder's deadline is about 2 hours away, not GREEN's 24 working hours.
    assert holder.next_deadline.ToDatetime() - start < timedelta(hours=3)
