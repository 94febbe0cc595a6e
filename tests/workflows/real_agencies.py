"""Cases on the time-skipping server against REAL agencies: the sandbox agency servers on
loopback mTLS ports, each behind SafeShare's real adapter worker, so every agency call (and
every refusal ``agency.v1`` documents) is the real one. Only the partnership operator's alert
(a hub-side log line) is recorded in memory, so tests can see it fired.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.approvers import ApproverLookup
from activities.names import NOTIFY_OPERATOR
from activities.protocol_gate import ProtocolGate
from agency_adapters.sandbox_agency.server import SandboxAgency, create_sandbox_server
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.agency.v1.sandbox_control_pb2 import Faults
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from safeshare.tls import channel_credentials, server_credentials
from tests.factories import sharing_request
from tests.gateway_seal import gateway_key_file, sealing_env
from tests.workflows.harness import record_histories
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.sharing_case import SharingCase

CHILDREN = {
    "consent-given": ("Amara", "Okafor-Test", "2016-03-14", "9990000018"),
    "consent-refused": ("Leo", "Brennan-Test", "2014-11-02", "9990000026"),
    "consent-expired": ("Kai", "Whitfield-Test", "2012-01-20", "9990000042"),
    "consent-two-categories": ("Ruby", "Marsh-Test", "2016-10-21", "9990000077"),
}


def child(key: str) -> pb.Subject:
    """The CHILD subject of one of the sandbox's seeded fictional children."""
    given, family, born, nhs = CHILDREN[key]
    return pb.Subject(role=pb.SUBJECT_ROLE_CHILD, given_name=given, family_name=family,
                      date_of_birth=born, nhs_number=nhs)  # fmt: skip


@dataclass
class Operator:
    """The partnership operator's alerts (the hub's NotifyOperator activity)."""

    alerts: list[pb.Escalation] = field(default_factory=list)
    failing: bool = False

    @activity.defn(name=NOTIFY_OPERATOR)
    async def notify(self, escalation: pb.Escalation) -> None:
        if self.failing:
            raise ApplicationError("operator alerting is down", non_retryable=True)
        self.alerts.append(escalation)


@dataclass
class RealCase:
    """A case running against sandbox agencies."""

    env: WorkflowEnvironment
    handle: WorkflowHandle[SharingCase, pb.DecisionRecord]
    request: pb.SharingRequest
    agencies: dict[str, SandboxAgency]
    operator: Operator

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

    async def result(self, name: str) -> pb.DecisionRecord:
        """The case's record; with SAFESHARE_RECORD_HISTORIES set, its histories are added
        to the replay corpus as ``name``."""
        record = await self.handle.result()
        if os.environ.get("SAFESHARE_RECORD_HISTORIES"):
            await record_histories(self.env, self.handle.id, self.ref, self.request, name)
        return record

    def faults(self, agency_id: str, **toggles: Any) -> None:
        """Replace an agency's fault toggles (none clears them)."""
        self.agencies[agency_id].faults.set(Faults(**toggles))


@asynccontextmanager
async def case_at_real_agencies(
    env: WorkflowEnvironment,
    pki: DevPki,
    tmp_path: Path,
    *,
    subject: str = "consent-refused",
    operator: Operator | None = None,
    hub_workflows: Sequence[type] = (SharingCase, HolderExchange, ConsentWithdrawalNotice),
    registry_path: Path = DEFAULT_REGISTRY_PATH,
    **request_args: Any,
) -> AsyncIterator[RealCase]:
    """Start a case whose every agency is a sandbox behind a real adapter worker."""
    env = sealing_env(env)
    gate = ProtocolGate(registry_path, gateway_key_file())
    request = sharing_request(**request_args)
    del request.subjects[:]
    request.subjects.append(child(subject))
    operator = operator or Operator()
    hub_queue = f"hub-{uuid.uuid4().hex[:8]}"
    agency_ids = sorted({request.requesting_agency_id, *request.holding_agency_ids})
    agencies: dict[str, SandboxAgency] = {}
    async with AsyncExitStack() as stack:
        for agency_id in agency_ids:
            agency = await create_sandbox_server(
                agency_id, tmp_path / f"{agency_id}.db", server_credentials(pki.agency(agency_id))
            )
            stack.push_async_callback(agency.stop, None)
            agencies[agency_id] = agency
            channel = await stack.enter_async_context(
                open_agency_channel(
                    f"127.0.0.1:{agency.port}", channel_credentials(pki.adapter(agency_id))
                )
            )
            await stack.enter_async_context(
                build_adapter_worker(env.client, agency_id, channel, call_timeout=5)
            )
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=hub_queue,
                workflows=list(hub_workflows),
                activities=[
                    gate.check,
                    gate.check_notice,
                    ApproverLookup(registry_path).approvers_of,
                    operator.notify,
                ],
            )
        )
        handle = await env.client.start_workflow(
            SharingCase.run,
            request,
            id=case_workflow_id(case_ref_for(request.requesting_agency_id, request.request_id)),
            task_queue=hub_queue,
        )
        yield RealCase(env, handle, request, agencies, operator)
