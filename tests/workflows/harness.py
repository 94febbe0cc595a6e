"""A harness for SharingCase on the time-skipping server: the real workflows and the real
protocol gate on a hub worker, fake agency adapters registered under the real activity names
on the real per-agency task queues, and helpers to act as each practitioner.

Set ``SAFESHARE_RECORD_HISTORIES=1`` to write each finished case's histories to
``tests/histories/`` (the replay corpus); the corpus is append-only, so a new shape of an
existing path is recorded under a name of its own: ``SAFESHARE_RECORD_HISTORIES=<tag>`` names
each file ``<tag>-<name>``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Worker

from activities.agency import ApplicationErrorType, agency_task_queue
from activities.approvers import ApproverLookup
from activities.names import (
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    NOTIFY_OPERATOR,
    NOTIFY_PRACTITIONER,
    RECEIVE_CONSENT_WITHDRAWN,
    RECEIVE_DELIVERY,
)
from activities.protocol_gate import ProtocolGate
from partnership.registry import DEFAULT_REGISTRY_PATH
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent, sharing_request, timestamp
from tests.gateway_seal import gateway_key_file, sealing_env
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.sharing_case import SharingCase

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
CSC, SCHOOL, GP, POLICE = "northshire-csc", "oakfield-primary", "riverside-gp", "northshire-police"


def items_for(categories: list[pb.InformationCategory.ValueType]) -> list[pb.RecordItem]:
    """Two items per category: a fact and an opinion."""
    return [
        pb.RecordItem(
            item_id=f"item-{pb.InformationCategory.Name(c).lower()}-{n}",
            category=c,
            kind=pb.ITEM_KIND_FACT if n == 1 else pb.ITEM_KIND_OPINION,
            source="records team",
            recorded_at=timestamp(dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
            content=f"fictional content {n}",
        )
        for c in categories
        for n in (1, 2)
    ]


@dataclass
class FakeAgencies:
    """Every agency's fake adapter: what holders answer, what recipients received."""

    consent: dict[str, pb.ConsentRecord] = field(default_factory=dict)
    lookup_error: dict[str, str] = field(default_factory=dict)
    delivery_failures_left: int = 0
    deliveries: list[agency_pb.ReceiveDeliveryRequest] = field(default_factory=list)
    extractions: list[agency_pb.ExtractRecordsRequest] = field(default_factory=list)
    notifications: list[tuple[str, agency_pb.NotifyPractitionerRequest]] = field(
        default_factory=list
    )
    withdrawal_notices: list[agency_pb.ReceiveConsentWithdrawnRequest] = field(default_factory=list)
    operator_alerts: list[pb.Escalation] = field(default_factory=list)
    delivery_hold: asyncio.Event | None = None
    """When set, ReceiveDelivery stores the delivery, then waits for it before answering."""
    delivery_in_flight: asyncio.Event = field(default_factory=asyncio.Event)
    withdrawal_notice_refusals_left: int = 0

    def activities_for(self, agency_id: str) -> list[Callable[..., Any]]:
        """The four agency activities, bound to ``agency_id``."""

        @activity.defn(name=LOOKUP_CONSENT)
        async def lookup(
            request: agency_pb.LookupConsentRequest,
        ) -> agency_pb.LookupConsentResponse:
            if agency_id in self.lookup_error:
                raise ApplicationError(
                    "LookupConsent refused", self.lookup_error[agency_id],
                    type=ApplicationErrorType.AGENCY_REJECTED, non_retryable=True,
                )  # fmt: skip
            return agency_pb.LookupConsentResponse(
                consent=self.consent.get(agency_id, given_consent())
            )

        @activity.defn(name=EXTRACT_RECORDS)
        async def extract(
            request: agency_pb.ExtractRecordsRequest,
        ) -> agency_pb.ExtractRecordsResponse:
            self.extractions.append(request)
            # Offer one category more than asked: the workflow must filter it out.
            extra = [pb.INFORMATION_CATEGORY_POLICE_INCIDENTS]
            return agency_pb.ExtractRecordsResponse(items=items_for([*request.categories, *extra]))

        @activity.defn(name=RECEIVE_DELIVERY)
        async def deliver(
            request: agency_pb.ReceiveDeliveryRequest,
        ) -> agency_pb.ReceiveDeliveryResponse:
            if self.delivery_failures_left > 0:
                self.delivery_failures_left -= 1
                raise ApplicationError(
                    "ReceiveDelivery failed: UNAVAILABLE", "UNAVAILABLE",
                    type=ApplicationErrorType.AGENCY_UNAVAILABLE,
                )  # fmt: skip
            self.deliveries.append(request)
            if self.delivery_hold is not None:
                self.delivery_in_flight.set()
                await self.delivery_hold.wait()
            return agency_pb.ReceiveDeliveryResponse(
                receipt=pb.DeliveryReceipt(
                    delivery_id=request.delivery_id,
                    item_count=len(request.items),
                    content_digest=request.content_digest,
                )
            )

        @activity.defn(name=NOTIFY_PRACTITIONER)
        async def notify(
            request: agency_pb.NotifyPractitionerRequest,
        ) -> agency_pb.NotifyPractitionerResponse:
            self.notifications.append((agency_id, request))
            return agency_pb.NotifyPractitionerResponse(notification_id=request.notification_id)

        @activity.defn(name=RECEIVE_CONSENT_WITHDRAWN)
        async def withdrawn(
            request: agency_pb.ReceiveConsentWithdrawnRequest,
        ) -> agency_pb.ReceiveConsentWithdrawnResponse:
            if self.withdrawal_notice_refusals_left > 0:
                self.withdrawal_notice_refusals_left -= 1
                raise ApplicationError(
                    "ReceiveConsentWithdrawn refused: FAILED_PRECONDITION", "FAILED_PRECONDITION",
                    type=ApplicationErrorType.AGENCY_REJECTED, non_retryable=True,
                )  # fmt: skip
            self.withdrawal_notices.append(request)
            return agency_pb.ReceiveConsentWithdrawnResponse(notice_id=request.notice_id)

        return [lookup, extract, deliver, notify, withdrawn]

    @activity.defn(name=NOTIFY_OPERATOR)
    async def notify_operator(self, escalation: pb.Escalation) -> None:
        self.operator_alerts.append(escalation)


def actor(agency_id: str, user_id: str, role: str = "practitioner") -> pb.Actor:
    """An actor as the gateway would stamp it."""
    return pb.Actor(agency_id=agency_id, practitioner=pb.Practitioner(user_id=user_id, role=role))


@dataclass
class Case:
    """A running case and ways to act on it."""

    env: WorkflowEnvironment
    handle: WorkflowHandle[SharingCase, pb.DecisionRecord]
    request: pb.SharingRequest
    agencies: FakeAgencies
    name: str

    @property
    def ref(self) -> str:
        return case_ref_for(self.request.requesting_agency_id, self.request.request_id)

    def exchange(
        self, holder: str | None = None
    ) -> WorkflowHandle[HolderExchange, pb.HolderRecord]:
        holder = holder or self.request.holding_agency_ids[0]
        return self.env.client.get_workflow_handle_for(
            HolderExchange.run, holder_exchange_workflow_id(self.ref, holder)
        )

    async def holder_state(self, holder: str | None = None) -> pb.HolderRecord:
        return await self.exchange(holder).query(HolderExchange.holder_record)

    async def until(
        self, state: pb.CaseState.ValueType, holder: str | None = None
    ) -> pb.HolderRecord:
        """Query the exchange until it reaches ``state`` (bounded: about 20 s of real time)."""
        record = pb.HolderRecord()
        for _ in range(400):
            try:
                record = await self.holder_state(holder)
            except Exception:  # the child may not have started yet
                await asyncio.sleep(0.05)
                continue
            if record.state == state:
                return record
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"exchange never reached {pb.CaseState.Name(state)}: "
            f"{pb.CaseState.Name(record.state)} {[e.event for e in record.entries]}"
        )

    async def result(self) -> pb.DecisionRecord:
        record = await self.handle.result()
        if os.environ.get("SAFESHARE_RECORD_HISTORIES"):
            await self._record_histories()
        return record

    async def _record_histories(self) -> None:
        await record_histories(self.env, self.handle.id, self.ref, self.request, self.name)


async def record_histories(
    env: WorkflowEnvironment, case_id: str, ref: str, request: pb.SharingRequest, name: str
) -> None:
    """Write a finished case's histories to the replay corpus as ``<name>.<kind>.json``
    (``<tag>-<name>`` when ``SAFESHARE_RECORD_HISTORIES`` is a tag)."""
    tag = os.environ.get("SAFESHARE_RECORD_HISTORIES", "1")
    name = name if tag == "1" else f"{tag}-{name}"
    HISTORIES.mkdir(exist_ok=True)
    ids = [case_id] + [holder_exchange_workflow_id(ref, h) for h in request.holding_agency_ids]
    for index, workflow_id in enumerate(ids):
        try:
            history = await env.client.get_workflow_handle(workflow_id).fetch_history()
        except Exception:  # an exchange never started (gate rejected, withdrawn early)
            continue
        kind = "case" if index == 0 else f"exchange-{index}"
        path = HISTORIES / f"{name}.{kind}.json"
        if path.exists():  # the corpus is append-only: a recorded history never changes
            continue
        path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        # The history format has no workflow id; replay needs it (case refs derive from it).
        index_path = HISTORIES / "workflow-ids.json"
        ids_by_file = json.loads(index_path.read_text()) if index_path.exists() else {}
        ids_by_file[path.name] = workflow_id
        index_path.write_text(json.dumps(ids_by_file, indent=1, sort_keys=True) + "\n")


@asynccontextmanager
async def running_case(
    env: WorkflowEnvironment,
    agencies: FakeAgencies,
    name: str,
    *,
    registry_path: Path = DEFAULT_REGISTRY_PATH,
    hub_interceptors: Sequence[Interceptor] = (),
    **request_args: Any,
) -> AsyncIterator[Case]:
    """Start a case with the hub worker and every agency's fake adapter running."""
    env = sealing_env(env)
    request = sharing_request(**request_args)
    hub_queue = f"hub-{uuid.uuid4().hex[:8]}"
    agency_ids = {request.requesting_agency_id, *request.holding_agency_ids}
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=hub_queue,
                workflows=[SharingCase, HolderExchange],
                activities=[
                    ProtocolGate(registry_path, gateway_key_file()).check,
                    ApproverLookup(registry_path).approvers_of,
                    agencies.notify_operator,
                ],
                interceptors=hub_interceptors,
            )
        )
        for agency_id in agency_ids:
            await stack.enter_async_context(
                Worker(
                    env.client,
                    task_queue=agency_task_queue(agency_id),
                    activities=agencies.activities_for(agency_id),
                )
            )
        handle = await env.client.start_workflow(
            SharingCase.run,
            request,
            id=case_workflow_id(case_ref_for(request.requesting_agency_id, request.request_id)),
            task_queue=hub_queue,
        )
        yield Case(env, handle, request, agencies, name)


def notified(agencies: FakeAgencies) -> dict[str, list[tuple[str, str]]]:
    """Notifications by step: (agency, kind/role) in order."""
    by_step: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for agency_id, note in agencies.notifications:
        label = agency_pb.NotificationKind.Name(note.kind).removeprefix("NOTIFICATION_KIND_")
        if note.practitioner_role:
            label += f"/{note.practitioner_role}"
        by_step[note.step].append((agency_id, label))
    return dict(by_step)
