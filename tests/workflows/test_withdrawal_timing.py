"""A withdrawal takes effect when it arrives: during the first consent lookup the exchange
ends as its view says it has (not when the holder's system answers), and during a failing
delivery's pause the recipient is asked again at once (not up to 30 minutes later), with the
record still saying what the recipient holds.

Timing here is workflow time (event and entry timestamps on the time-skipping server), so the
checks are exact, not a measurement.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.names import LOOKUP_CONSENT
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.workflows.harness import CSC, FakeAgencies, actor, running_case
from workflows.holder_exchange import DELIVERY_RETRY_PAUSE
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

WITHDRAWAL = pb.RequestWithdrawal(
    actor=actor(CSC, "sw-1", "social_worker"), reason="child moved out of area"
)


class SlowLookup(FakeAgencies):
    """The holder's consent lookup answers only when released (a slow holder system)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lookup_started = asyncio.Event()
        self.release = asyncio.Event()

    def activities_for(self, agency_id: str) -> list[Callable[..., Any]]:
        found = super().activities_for(agency_id)
        fast = next(
            f for f in found if getattr(f, "__temporal_activity_definition").name == LOOKUP_CONSENT
        )

        @activity.defn(name=LOOKUP_CONSENT)
        async def lookup(
            request: agency_pb.LookupConsentRequest,
        ) -> agency_pb.LookupConsentResponse:
            self.lookup_started.set()
            await self.release.wait()
            return await fast(request)

        return [lookup if f is fast else f for f in found]


async def _event_time(handle: Any, kind: EventType.ValueType) -> dt.datetime:
    async for event in handle.fetch_history_events():
        if event.event_type == kind:
            return event.event_time.ToDatetime(dt.UTC)
    raise AssertionError(f"no {EventType.Name(kind)} in {handle.id}")


async def test_a_withdrawal_during_the_first_lookup_ends_the_exchange_at_once(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = SlowLookup()
    async with running_case(time_skipping, agencies, "withdrawn-during-lookup") as case:
        await asyncio.wait_for(agencies.lookup_started.wait(), 20)
        await case.handle.execute_update(SharingCase.withdraw_request, WITHDRAWAL)
        try:
            # The lookup is still held: the case and its exchange end without its answer.
            record = await asyncio.wait_for(case.result(), 30)
            exchange = case.exchange()
            described = await exchange.describe()
            assert described.status is not None and described.status.name == "COMPLETED"
            signalled = await _event_time(
                exchange, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            )
            completed = await _event_time(
                exchange, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
            )
        finally:
            agencies.release.set()
    assert record.outcome == pb.OUTCOME_WITHDRAWN
    [holder] = record.holders
    events = [e.event for e in holder.entries]
    assert events.index("RequestWithdrawn") < events.index("ConsentLookupCancelled")
    assert "ConsentChecked" not in events
    # Closed in the same moment of workflow time as the withdrawal reached it (the old code
    # waited for the lookup's timeouts and retries: minutes of workflow time).
    assert completed - signalled < dt.timedelta(seconds=5), completed - signalled


async def test_a_withdrawal_during_a_failing_delivery_asks_the_recipient_again_at_once(
    time_skipping: WorkflowEnvironment,
) -> None:
    # Every attempt of the first round fails (the recipient is down), then it recovers.
    agencies = FakeAgencies(delivery_failures_left=6)
    async with running_case(time_skipping, agencies, "withdrawn-delivery-failing") as case:
        await case.until(pb.CASE_STATE_DELIVERING)
        for _ in range(400):  # the first round fails and the exchange pauses
            if (await case.holder_state()).delivery_failures:
                break
            await time_skipping.sleep(dt.timedelta(seconds=30))
        else:
            raise AssertionError("the delivery never failed")
        assert not agencies.deliveries
        await case.handle.execute_update(SharingCase.withdraw_request, WITHDRAWAL)
        record = await asyncio.wait_for(case.result(), 60)
    [holder] = record.holders
    entries = {e.event: e.at.ToDatetime(dt.UTC) for e in holder.entries}
    # The recipient was asked again at once and answered: what it holds is recorded.
    assert len(agencies.deliveries) == 1
    assert holder.receipt.delivery_id == agencies.deliveries[0].delivery_id
    assert record.withdrawal.reason == WITHDRAWAL.reason
    assert "DeliveryRetriedForWithdrawal" in entries
    waited = entries["RecordsDelivered"] - entries["RequestWithdrawn"]
    assert waited < dt.timedelta(minutes=2) < DELIVERY_RETRY_PAUSE, waited
    assert holder.delivery_failures == 1
