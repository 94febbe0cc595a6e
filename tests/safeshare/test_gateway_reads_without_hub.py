"""Reads that do not need the hub: each workflow keeps its view in its memo (encrypted by the
project's codec), and GetCase reads it with one describe per workflow.

The real gateway over mTLS, the real hub worker and fake agency workers, a dev server, and a
Temporal client that encrypts every payload with the payload codec, as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.agency import agency_task_queue
from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare import tls
from safeshare.client import CaseClient
from safeshare.codec.aes import ENCODING
from safeshare.codec.converter import data_converter
from safeshare.codec.keys import KeyRing
from safeshare.gateway.server import create_gateway_server
from safeshare.gateway.servicer import CaseServiceServicer
from safeshare.hub import build_hub_worker
from safeshare.pki import DevPki
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER, gateway_key_file
from tests.safeshare.gateway_support import (
    AGENCIES,
    CSC,
    GP,
    SCHOOL,
    Gateway,
    acknowledgement,
    change_urgency,
    new_request,
    propose_override,
    wait_for_state,
)
from workflows import memo_view, names
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(180)]


@dataclass
class Stack:
    """The gateway, and the hub worker that a test may stop."""

    gateway: Gateway
    hub: AsyncExitStack

    async def stop_hub(self) -> None:
        await self.hub.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry
) -> AsyncIterator[Stack]:
    config = dev_server.client.config()
    config["data_converter"] = data_converter(KeyRing.generate("test-key"))
    client = Client(**config)
    fakes = FakeAgencies()
    hub_queue = f"hub-test-{uuid.uuid4()}"
    async with AsyncExitStack() as agencies, AsyncExitStack() as hub:
        await hub.enter_async_context(
            build_hub_worker(client, task_queue=hub_queue, gateway_key_path=gateway_key_file())
        )
        for agency_id in AGENCIES:
            await agencies.enter_async_context(
                Worker(
                    client,
                    task_queue=agency_task_queue(agency_id),
                    activities=fakes.activities_for(agency_id),
                )
            )
        servicer = CaseServiceServicer(client, registry, hub_queue, signer=TEST_SIGNER)
        server, port = await create_gateway_server(
            client,
            registry,
            tls.server_credentials(pki.gateway()),
            hub_task_queue=hub_queue,
            servicer=servicer,
        )
        gateway = Gateway(client, port, pki, fakes, servicer)
        try:
            yield Stack(gateway, hub)
        finally:
            for channel in gateway.channels:
                await channel.close()
            await server.stop(None)


async def get_case(gateway: Gateway, agency: str, case_ref: str) -> pb.CaseView:
    call = service_pb.GetCaseRequest(case_ref=case_ref)
    return (await gateway.cached(agency).GetCase(call, timeout=20)).case


def without_holders(view: pb.CaseView) -> pb.CaseView:
    case = pb.CaseView()
    case.CopyFrom(view)
    del case.record.holders[:]
    case.ClearField("next_deadline")
    return case


async def test_get_case_on_an_open_case_answers_with_every_hub_worker_stopped(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    case_ref = await gateway.open_case(refused=True)  # waits on the holder's consent decision
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    before = {agency: await get_case(gateway, agency, case_ref) for agency in (CSC, SCHOOL)}

    await stack.stop_hub()

    after = {agency: await get_case(gateway, agency, case_ref) for agency in (CSC, SCHOOL)}
    assert after == before
    assert after[CSC].state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert after[CSC].waiting_on == pb.WAITING_ON_HOLDER
    [holder] = after[SCHOOL].record.holders
    assert holder.holding_agency_id == SCHOOL
    assert holder.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert holder.entries

    # ListCases (visibility) and WatchCase (describes and history long-polls) need no hub
    # either: the watch sends every event so far.
    async with CaseClient.connect(f"127.0.0.1:{gateway.port}", gateway.pki.agency(CSC)) as csc:
        listed = await csc.list_cases(waiting_on=pb.WAITING_ON_HOLDER, page_size=200)
        watched = csc.watch_case(case_ref)
        so_far = len(after[CSC].record.entries) + len(after[CSC].record.holders[0].entries)
        events = [await asyncio.wait_for(anext(watched), 30) for _ in range(so_far)]
        await watched.aclose()
    assert case_ref in [c.case_ref for c in listed.cases]
    assert [e.entry for e in events] == sorted(
        [*after[CSC].record.entries, *after[CSC].record.holders[0].entries],
        key=lambda e: e.at.ToNanoseconds(),
    )


async def test_a_commands_reply_and_a_read_right_after_it_agree(stack: Stack) -> None:
    gateway = stack.gateway
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    # The case's own part agrees at once; its exchanges move their deadlines when the case's
    # signal reaches them, in their own tasks, so the holders' part may move on in between.
    changed = await gateway.cached(CSC).ChangeUrgency(change_urgency(case_ref))
    after_change = await get_case(gateway, CSC, case_ref)
    assert without_holders(after_change) == without_holders(changed.case)
    assert after_change.record.urgency == changed.case.record.urgency == pb.URGENCY_GREEN
    proposed = await gateway.cached(SCHOOL).ProposeOverride(propose_override(case_ref))
    read = await get_case(gateway, SCHOOL, case_ref)

    assert read == proposed.case
    [holder] = read.record.holders
    assert holder.HasField("override_proposal")
    assert holder.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION


async def test_the_views_in_the_memos_are_encrypted_and_name_no_one(stack: Stack) -> None:
    gateway = stack.gateway
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    view = await get_case(gateway, CSC, case_ref)
    child = view.record.request.subjects[0]
    personal = [child.given_name, child.family_name, child.date_of_birth]
    assert all(personal)

    for workflow_id in (case_workflow_id(case_ref), holder_exchange_workflow_id(case_ref, SCHOOL)):
        described = await gateway.client.get_workflow_handle(workflow_id).describe()
        fields = described.raw_description.workflow_execution_info.memo.fields
        parts = {key: payload for key, payload in fields.items() if key.startswith("view")}
        assert parts, f"{workflow_id} publishes no view"
        for key, payload in parts.items():
            assert payload.metadata["encoding"] == ENCODING, key
            for value in personal:
                assert value.encode() not in payload.SerializeToString(), key
                assert value not in key
    # The decoded memo is the view that GetCase shows the requester.
    memo = await (
        await gateway.client.get_workflow_handle(case_workflow_id(case_ref)).describe()
    ).memo()
    case = memo_view.assemble(pb.CaseView, memo)
    assert case is not None
    assert case.record.request.subjects[0] == child


# -- WatchCase is pushed, not polled ---------------------------------------------------------


async def test_a_watch_is_woken_by_the_histories_not_by_its_poll(stack: Stack) -> None:
    gateway = stack.gateway
    # 👉 No snapshot is taken on a timer during this test: every event after the first
    # snapshot reaches the watcher only because a history long-poll woke the watch.
    gateway.servicer.poll_interval = dt.timedelta(hours=1)
    case_ref = await gateway.open_case()
    got: list[service_pb.CaseEvent] = []

    async def watch_to_the_end() -> None:
        async with CaseClient.connect(f"127.0.0.1:{gateway.port}", gateway.pki.agency(CSC)) as csc:
            acknowledged = False
            async for event in csc.watch_case(case_ref):
                got.append(event)
                if event.entry.event == "RecordsDelivered" and not acknowledged:
                    acknowledged = True
                    await gateway.cached(CSC).Acknowledge(acknowledgement(case_ref))

    await asyncio.wait_for(watch_to_the_end(), 60)
    record = await gateway.result(case_ref)
    events = [e.entry.event for e in got]
    assert [e.number for e in got] == list(range(1, len(got) + 1))
    assert events[-1] == "CaseClosed"
    assert {"RecordsDelivered", "Acknowledged", "ExchangeClosed"} <= set(events)
    assert len(got) == len(record.entries) + sum(len(h.entries) for h in record.holders)


# -- cases started before views were published -----------------------------------------------


@workflow.defn(name="SharingCase")
class CaseBeforeViews:
    """A case as one started before views were published answers: by query only."""

    @workflow.init
    def __init__(self, view: pb.CaseView) -> None:
        self._view = view

    @workflow.run
    async def run(self, view: pb.CaseView) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def case_view(self) -> pb.CaseView:
        return self._view


@workflow.defn(name=names.HOLDER_EXCHANGE)
class ExchangeBeforeViews:
    """An exchange as one started before views were published answers: by query only."""

    @workflow.init
    def __init__(self, record: pb.HolderRecord) -> None:
        self._record = record

    @workflow.run
    async def run(self, record: pb.HolderRecord) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def holder_record(self) -> pb.HolderRecord:
        return self._record


async def test_a_case_started_before_views_were_published_is_read_by_its_queries(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    call = new_request()
    case_ref = case_ref_for(CSC, call.request.request_id)
    request = call.request
    request.requesting_agency_id = CSC
    case = pb.CaseView(
        case_ref=case_ref,
        state=pb.CASE_STATE_EXCHANGING,
        record=pb.DecisionRecord(case_ref=case_ref, request=request, urgency=request.urgency),
    )
    case.record.gate.passed = True
    case.record.entries.add(event="RequestReceived", agency_id=CSC)
    holder = pb.HolderRecord(
        holding_agency_id=SCHOOL,
        state=pb.CASE_STATE_AWAITING_CONSENT_DECISION,
        waiting_on=pb.WAITING_ON_HOLDER,
    )
    holder.entries.add(event="ConsentChecked", agency_id=SCHOOL)
    queue = f"before-views-{uuid.uuid4()}"
    async with Worker(
        gateway.client,
        task_queue=queue,
        workflows=[CaseBeforeViews, ExchangeBeforeViews],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await gateway.client.start_workflow(
            CaseBeforeViews.run, case, id=case_workflow_id(case_ref), task_queue=queue
        )
        exchange = await gateway.client.start_workflow(
            ExchangeBeforeViews.run,
            holder,
            id=holder_exchange_workflow_id(case_ref, SCHOOL),
            task_queue=queue,
        )
        view = await get_case(gateway, CSC, case_ref)
        await exchange.terminate()
        await gateway.client.get_workflow_handle(case_workflow_id(case_ref)).terminate()

    assert view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert [e.event for e in view.record.entries] == ["RequestReceived"]
    [read] = view.record.holders
    assert [e.event for e in read.entries] == ["ConsentChecked"]


async def test_pushed_events_of_two_holders_keep_one_order_across_reconnects(stack: Stack) -> None:
    gateway = stack.gateway
    gateway.servicer.poll_interval = dt.timedelta(hours=1)  # pushed only, as above
    case_ref = await gateway.open_case(holders=(SCHOOL, GP))
    whole: list[service_pb.CaseEvent] = []
    resumed: list[service_pb.CaseEvent] = []

    async def watch_whole(csc: CaseClient) -> None:
        acknowledged: set[str] = set()
        async for event in csc.watch_case(case_ref):
            whole.append(event)
            holder = event.holding_agency_id
            if event.entry.event == "RecordsDelivered" and holder not in acknowledged:
                acknowledged.add(holder)
                await gateway.cached(CSC).Acknowledge(acknowledgement(case_ref, holder))

    async def watch_with_a_reconnect(csc: CaseClient) -> None:
        first = csc.watch_case(case_ref)
        resumed.extend([await anext(first) for _ in range(3)])
        await first.aclose()
        async for event in csc.watch_case(case_ref, from_event=resumed[-1].number + 1):
            resumed.append(event)

    async with CaseClient.connect(f"127.0.0.1:{gateway.port}", gateway.pki.agency(CSC)) as csc:
        await asyncio.wait_for(asyncio.gather(watch_whole(csc), watch_with_a_reconnect(csc)), 90)
        # Read again once closed: every entry at once, in the order the pushes promised.
        after = [event async for event in csc.watch_case(case_ref)]

    def keyed(events: list[service_pb.CaseEvent]) -> list[tuple[int, str, str, int]]:
        return [(e.number, e.holding_agency_id, e.entry.event, e.entry.at.ToNanoseconds())
                for e in events]  # fmt: skip

    record = await gateway.result(case_ref)
    assert keyed(whole) == keyed(resumed) == keyed(after)
    assert {e.holding_agency_id for e in whole} == {"", SCHOOL, GP}
    assert len(whole) == len(record.entries) + sum(len(h.entries) for h in record.holders)
