"""Disclosure cases on the time-skipping server against REAL agencies: sandbox agency servers
on loopback mTLS ports, each behind SafeShare's real adapter worker, the real protocol gate
and the hub's DisclosureCase. Only the partnership operator's alert is recorded in memory.

Set ``SAFESHARE_RECORD_HISTORIES=1`` to add each finished case's history to the replay corpus.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.approvers import ApproverLookup
from activities.protocol_gate import ProtocolGate
from agency_adapters.sandbox_agency.server import SandboxAgency, create_sandbox_server
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from safeshare.tls import channel_credentials, server_credentials
from tests.gateway_seal import gateway_key_file, sealing_env
from tests.workflows.harness import HISTORIES
from tests.workflows.real_agencies import Operator
from workflows.disclosure_case import DisclosureCase
from workflows.ids import case_workflow_id, disclosure_ref_for
from workflows.runner import workflow_runner

NEW_SCHOOL = "elmbrook-secondary"
SECOND_SCHOOL = f"""
[[agencies]]
id = "{NEW_SCHOOL}"
name = "Elmbrook Secondary School"
kind = "statutory"
signed_protocol_version = "2026.1"
review_date = 2027-09-30
closure_days = [2027-01-04]
school_day_starts = 08:30:00
school_terms = [
  {{ first = 2026-09-02, last = 2026-12-18 }},
  {{ first = 2027-01-04, last = 2027-03-26 }},
]
"""


def registry_with_a_second_school(tmp_path: Path) -> Path:
    """The partnership registry with a second school (a child protection file's new school)."""
    path = tmp_path / "registry.toml"
    path.write_text(DEFAULT_REGISTRY_PATH.read_text() + SECOND_SCHOOL)
    return path


@dataclass
class RealDisclosure:
    """A disclosure running against sandbox agencies."""

    env: WorkflowEnvironment
    handle: WorkflowHandle[DisclosureCase, pb.DecisionRecord]
    holder: str
    disclosure_id: str
    agencies: dict[str, SandboxAgency]
    operator: Operator

    @property
    def ref(self) -> str:
        return disclosure_ref_for(self.holder, self.disclosure_id)

    async def view(self) -> pb.CaseView:
        return await self.handle.query(DisclosureCase.case_view)

    async def result(self, name: str) -> pb.DecisionRecord:
        """The case's record; with SAFESHARE_RECORD_HISTORIES set, its history joins the
        replay corpus as ``<name>.case.json``."""
        record = await self.handle.result()
        if os.environ.get("SAFESHARE_RECORD_HISTORIES"):
            tag = os.environ["SAFESHARE_RECORD_HISTORIES"]  # a tag names a new recording
            path = HISTORIES / (f"{name}.case.json" if tag == "1" else f"{tag}-{name}.case.json")
            if not path.exists():  # the corpus is append-only
                history = await self.handle.fetch_history()
                path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
                index_path = HISTORIES / "workflow-ids.json"
                ids = json.loads(index_path.read_text())
                ids[path.name] = self.handle.id
                index_path.write_text(json.dumps(ids, indent=1, sort_keys=True) + "\n")
        return record


@asynccontextmanager
async def disclosure_at_real_agencies(
    env: WorkflowEnvironment,
    pki: DevPki,
    tmp_path: Path,
    case: pb.DisclosureCaseInput,
    *,
    agency_ids: tuple[str, ...],
    registry_path: Path = DEFAULT_REGISTRY_PATH,
) -> AsyncIterator[RealDisclosure]:
    """Start a disclosure case whose every agency is a sandbox behind a real adapter worker."""
    env = sealing_env(env)
    operator = Operator()
    hub_queue = f"hub-{uuid.uuid4().hex[:8]}"
    agencies: dict[str, SandboxAgency] = {}
    async with AsyncExitStack() as stack:
        for agency_id in sorted(agency_ids):
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
        gate = ProtocolGate(registry_path, gateway_key_file())
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=hub_queue,
                workflows=[DisclosureCase],
                workflow_runner=workflow_runner(),
                activities=[
                    gate.check_disclosure,
                    ApproverLookup(registry_path).approvers_of,
                    operator.notify,
                ],
            )
        )
        if case.HasField("disclosure"):
            holder, disclosure_id = case.disclosure.holding_agency_id, case.disclosure.disclosure_id
        else:
            holder, disclosure_id = case.not_made.holding_agency_id, case.not_made.disclosure_id
        handle = await env.client.start_workflow(
            DisclosureCase.run,
            case,
            id=case_workflow_id(disclosure_ref_for(holder, disclosure_id)),
            task_queue=hub_queue,
        )
        yield RealDisclosure(env, handle, holder, disclosure_id, agencies, operator)
