"""Operators tell disclosures from requests: a running Operation Encompass notification on a
real dev server is listed by the disclosures' saved view and by `safeshare cases list` with
its kind, and not by `--kind request`."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from contextlib import AsyncExitStack

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from activities.names import NOTIFY_OPERATOR, NOTIFY_PRACTITIONER, RECEIVE_DELIVERY
from activities.protocol_gate import ProtocolGate
from activities.review import ProtocolReviewActivities
from activities.review_figures import ReviewWindow
from activities.review_report import sections
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from safeshare import metrics
from safeshare.alerts import OperatorAlerts
from safeshare.operators.cases import list_cases, list_query
from safeshare.operators.views import view
from tests.disclosure_factories import POLICE, SCHOOL, encompass
from tests.gateway_seal import gateway_key_file, sealing_client
from workflows.disclosure_case import DisclosureCase
from workflows.ids import case_workflow_id, disclosure_ref_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


@activity.defn(name=RECEIVE_DELIVERY)
async def receive(request: agency_pb.ReceiveDeliveryRequest) -> agency_pb.ReceiveDeliveryResponse:
    return agency_pb.ReceiveDeliveryResponse(
        receipt=pb.DeliveryReceipt(delivery_id=request.delivery_id, item_count=len(request.items))
    )


@activity.defn(name=NOTIFY_PRACTITIONER)
async def notify(
    request: agency_pb.NotifyPractitionerRequest,
) -> agency_pb.NotifyPractitionerResponse:
    return agency_pb.NotifyPractitionerResponse(notification_id=request.notification_id)


@activity.defn(name=NOTIFY_OPERATOR)
async def alert(escalation: pb.Escalation) -> None:
    return None


async def test_a_disclosure_is_listed_as_one(dev_server: WorkflowEnvironment) -> None:
    client = sealing_client(dev_server.client)  # it plays the gateway
    hub = f"hub-{uuid.uuid4().hex[:8]}"
    disclosure = encompass()
    ref = disclosure_ref_for(POLICE, disclosure.disclosure_id)
    async with AsyncExitStack() as stack:
        gate = ProtocolGate(DEFAULT_REGISTRY_PATH, gateway_key_file())
        await stack.enter_async_context(
            Worker(client, task_queue=hub, workflows=[DisclosureCase],
                   activities=[gate.check_disclosure, alert])
        )  # fmt: skip
        await stack.enter_async_context(
            Worker(client, task_queue=agency_task_queue(SCHOOL), activities=[receive, notify])
        )
        handle = await client.start_workflow(
            DisclosureCase.run, pb.DisclosureCaseInput(disclosure=disclosure),
            id=case_workflow_id(ref), task_queue=hub,
        )  # fmt: skip
        query = f"{view('disclosures-open').query()} AND WorkflowId='{handle.id}'"
        for _ in range(100):  # visibility lags the workflow by a moment
            if (await client.count_workflows(f"{query} AND WaitingOn='RECIPIENT'")).count:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the disclosure never reached the disclosures-open view")
        listed, _ = list_query(kind="operation_encompass")
        table = await list_cases(client, f"{listed} AND WorkflowId='{handle.id}'", False, 10)
        assert table.row_count == 1
        cells = {column.header: next(iter(column.cells)) for column in table.columns}
        assert cells["kind"] == "OPERATION_ENCOMPASS"
        assert (cells["holders"], cells["recipients"]) == (POLICE, SCHOOL)
        requests_only, _ = list_query(kind="request")
        assert not (
            await client.count_workflows(f"{requests_only} AND WorkflowId='{handle.id}'")
        ).count
        # The protocol review counts it by kind; a second, acknowledged one met its deadline.
        acknowledged = encompass()
        second = await client.start_workflow(
            DisclosureCase.run, pb.DisclosureCaseInput(disclosure=acknowledged),
            id=case_workflow_id(disclosure_ref_for(POLICE, acknowledged.disclosure_id)),
            task_queue=hub,
        )  # fmt: skip
        for _ in range(100):
            view_now = await second.query(DisclosureCase.case_view)
            if view_now.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                break
            await asyncio.sleep(0.1)
        await second.execute_update(
            DisclosureCase.acknowledge,
            pb.Acknowledgement(
                agency_id=SCHOOL, status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
                practitioner=pb.Practitioner(user_id="dsl-1", role="designated_safeguarding_lead"),
            ),
        )  # fmt: skip
        await second.result()
        described = await handle.describe()
        assert described.start_time is not None
        # From this test's first disclosure as the server stamped it: a case another test opened
        # a moment before (perhaps encrypted with its own keys) is outside the window. Tests run
        # one at a time, so what starts from here on is this test's two disclosures.
        window = ReviewWindow(
            start=described.start_time.isoformat(),
            end=(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat(),
        )
        review = ProtocolReviewActivities(client, DEFAULT_REGISTRY_PATH)
        for _ in range(100):  # visibility catches up with the close
            figures = await ActivityEnvironment().run(review.gather_figures, window)
            if figures.disclosure_deadlines.get("OPERATION_ENCOMPASS", {}).get("met"):
                break
            await asyncio.sleep(0.1)
        assert figures.disclosures_by_kind == {"OPERATION_ENCOMPASS": 2}
        assert figures.disclosure_deadlines == {"OPERATION_ENCOMPASS": {"met": 1, "open": 1}}
        assert (figures.cases_opened, figures.undecodable_cases) == (0, 0)  # no other test's
        section = next(s for s in sections(figures) if s.title == "Disclosures by kind")
        assert any(row[0] == "OPERATION_ENCOMPASS" for row in section.rows)
        await handle.terminate("test done")


async def test_the_hub_counts_disclosures_waiting_past_their_acknowledgement_deadline(
    dev_server: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SafeShareDisclosureAcknowledgementOverdue alerts on: the count by kind of open
    disclosures awaiting acknowledgement past their deadline (other tests' disclosures share
    the namespace, so the case is seen by the count rising across its deadline)."""
    client = sealing_client(dev_server.client)  # it plays the gateway
    hub = f"hub-{uuid.uuid4().hex[:8]}"
    counted: dict[str, int] = {}
    monkeypatch.setattr(metrics, "set_disclosures_overdue", counted.__setitem__)
    alerts = OperatorAlerts(client)
    async with AsyncExitStack() as stack:
        gate = ProtocolGate(DEFAULT_REGISTRY_PATH, gateway_key_file())
        await stack.enter_async_context(
            Worker(client, task_queue=hub, workflows=[DisclosureCase],
                   activities=[gate.check_disclosure, alert])
        )  # fmt: skip
        await stack.enter_async_context(
            Worker(client, task_queue=agency_task_queue(SCHOOL), activities=[receive, notify])
        )
        disclosure = encompass()
        handle = await client.start_workflow(
            DisclosureCase.run, pb.DisclosureCaseInput(disclosure=disclosure),
            id=case_workflow_id(disclosure_ref_for(POLICE, disclosure.disclosure_id)),
            task_queue=hub,
        )  # fmt: skip
        query = f"WorkflowId='{handle.id}' AND CaseState='AWAITING_ACKNOWLEDGEMENT'"
        for _ in range(100):  # visibility lags the workflow by a moment
            if (await client.count_workflows(query)).count:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the disclosure never waited on its acknowledgement")
        deadline = (await handle.query(DisclosureCase.case_view)).next_deadline.ToDatetime(dt.UTC)
        await alerts.refresh(now=deadline - dt.timedelta(seconds=1))
        before = dict(counted)
        await alerts.refresh(now=deadline + dt.timedelta(seconds=1))
        assert set(counted) == {"OPERATION_ENCOMPASS", "CONCERN", "CHILD_PROTECTION_FILE_TRANSFER"}
        assert counted["OPERATION_ENCOMPASS"] >= before["OPERATION_ENCOMPASS"] + 1
        await handle.terminate("test done")
