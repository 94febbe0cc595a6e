"""A harness for SharingCase on the time-skipping server: the real workflows and the real
protocol gate on a hub worker, fake agency adapters registered under the real activity names
on the real per-agency task queues, and helpers to act as each practitioner.

Set ``SAFESHARE_RECORD_HISTORIES=1`` to write each finished case's histories to
``tests/histories/`` (the replay corpus); the corpus is append-only, so a new shape of an
existing path is recorded under a name of its own: ``SAFESHARE_RECORD_HISTORIES=<tag>`` names
each file ``<tag>-<name>``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Worker

from activities.agency import agency_task_queue
from activities.approvers import ApproverLookup
from activities.protocol_gate import ProtocolGate
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import gateway_key_file, sealing_env
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
CSC, SCHOOL, GP, POLICE = "northshire-csc", "oakfield-primary", "riverside-gp", "northshire-police"


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
        return await eventually(
            lambda: self.holder_state(holder),
            lambda record: record.state == state,
            what=f"exchange reached {pb.CaseState.Name(state)}",
            retry_on=(Exception,),  # the child may not have started yet
            last=lambda record: (
                f"{pb.CaseState.Name(record.state)} {[e.event for e in record.entries]}"
            ),
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
                workflow_runner=workflow_runner(),  # the production runner, as the hub's
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
