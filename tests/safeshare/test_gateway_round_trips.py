"""How many Temporal round trips each decision RPC makes: the case is read once per command
(before the update to learn the caller's role, unless the parties the gateway remembers say
it), and after the update only the workflows the reply shows that the command changed.

The gateway under test has a Temporal client of its own whose calls are counted (the workers
and the test use another), so the counts are the gateway's alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.safeshare.gateway_support import (
    CSC,
    SCHOOL,
    Gateway,
    acknowledgement,
    change_urgency,
    decide_override,
    propose_override,
    serving,
    wait_for_state,
    withdraw_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

UPDATE_CALLS = ("update_workflow_execution", "poll_workflow_execution_update")


@dataclass
class Counted:
    """The gateway's Temporal calls, by RPC name."""

    calls: Counter[str]

    async def during(self, call: Awaitable[Any]) -> Counter[str]:
        """The calls made while ``call`` ran: reads by name, the update as one."""
        self.calls.clear()
        await call
        counted = Counter(self.calls)
        updates = sum(counted.pop(name, 0) for name in UPDATE_CALLS)
        if updates:
            counted["update"] = 1  # one update, however often its result was polled for
        return counted


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def counted_gateway(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry
) -> AsyncIterator[tuple[Gateway, Counted]]:
    own = dev_server.client
    client = await Client.connect(
        own.service_client.config.target_host,
        namespace=own.namespace,
        data_converter=own.data_converter,
    )
    counted = Counted(Counter())
    inner = client.service_client._rpc_call

    async def counting(rpc: str, *args: Any, **kwargs: Any) -> Any:
        counted.calls[rpc] += 1
        return await inner(rpc, *args, **kwargs)

    client.service_client._rpc_call = counting  # type: ignore[method-assign]
    fakes = FakeAgencies(default_consent=given_consent(purposes=list(pb.Purpose.values())[1:]))
    async with serving(own, registry, pki, fakes, gateway_client=client) as gateway:
        yield gateway, counted


async def test_a_holder_decision_reads_the_case_and_its_exchange_once(
    counted_gateway: tuple[Gateway, Counted],
) -> None:
    gateway, counted = counted_gateway
    csc, school = gateway.cached(CSC), gateway.cached(SCHOOL)
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    proposed = await counted.during(school.ProposeOverride(propose_override(case_ref)))
    decided = await counted.during(school.DecideOverride(decide_override(case_ref)))
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    acknowledged = await counted.during(csc.Acknowledge(acknowledgement(case_ref)))

    # The case before the update (is the caller a party, in which role), the update, then
    # the exchange the update changed: the case's own view did not change.
    for calls in (proposed, decided, acknowledged):
        assert calls == {"describe_workflow_execution": 2, "update": 1}


async def test_a_requester_command_reads_the_case_only_after_it_changed_it(
    counted_gateway: tuple[Gateway, Counted],
) -> None:
    gateway, counted = counted_gateway
    csc = gateway.cached(CSC)
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    changed = await counted.during(csc.ChangeUrgency(change_urgency(case_ref)))
    withdrawn = await counted.during(csc.WithdrawRequest(withdraw_request(case_ref)))

    # This gateway has read the case, so it knows CSC requested it (a case's parties never
    # change): the update, then the case it changed and the case's one exchange.
    for calls in (changed, withdrawn):
        assert calls == {"describe_workflow_execution": 2, "update": 1}
