"""``safeshare cases`` against a real dev server with encrypted payloads: list works from search
attributes without keys; show and follow read the decision record with the operators' keys."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner

from activities.agency import agency_task_queue
from protos.sharing.v1 import case_pb2 as pb
from safeshare.access.log import AccessLog
from safeshare.cli import app
from safeshare.codec import KeyRing, write_key_file
from safeshare.hub import build_hub_worker
from safeshare.operators.cases import list_query
from safeshare.operators.options import OperatorError
from safeshare.temporal import TemporalSettings, connect_temporal
from tests.factories import given_consent, sharing_request
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import gateway_key_file, sealing_client
from tests.workflows.harness import CSC, SCHOOL, actor
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.sharing_case import SharingCase

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def test_filters_become_visibility_queries() -> None:
    both = "(WorkflowType='SharingCase' OR WorkflowType='DisclosureCase')"
    assert list_query() == (both, False)
    assert list_query(red=True, state="closed") == (
        f"{both} AND CaseState='CLOSED' AND Urgency='RED'", False
    )  # fmt: skip
    assert list_query(waiting_on="approver", overdue=True, now=NOW) == (
        "(WorkflowType='HolderExchange' OR WorkflowType='DisclosureCase') AND "
        "WaitingOn='APPROVER' AND NextDeadline < '2026-11-01T12:00:00Z' AND "
        "ExecutionStatus='Running'", True
    )  # fmt: skip
    assert list_query(state="AWAITING_ACKNOWLEDGEMENT")[1] is True
    # Requests or disclosures only, or one kind of disclosure.
    assert list_query(kind="request") == ("WorkflowType='SharingCase'", False)
    assert list_query(kind="disclosure") == ("WorkflowType='DisclosureCase'", False)
    assert list_query(kind="operation_encompass") == (
        "WorkflowType='DisclosureCase' AND CaseKind='OPERATION_ENCOMPASS'",
        False,
    )
    for bad in ({"waiting_on": "x' OR 1=1"}, {"state": "nonsense"}, {"kind": "x' OR 1=1"}):
        with pytest.raises(OperatorError):
            list_query(**bad)  # type: ignore[arg-type]


def cli(*argv: str, keys: Path | None = None) -> tuple[int, str, str]:
    env = {"SAFESHARE_KEYS_FILE": str(keys)} if keys else {"SAFESHARE_KEYS_FILE": ""}
    env["SAFESHARE_OPERATOR"] = "operator-cy"
    result = CliRunner().invoke(app, list(argv), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_list_show_and_follow_an_encrypted_case(
    dev_server: WorkflowEnvironment, tmp_path: Path, access_log_files: tuple[Path, Path]
) -> None:
    ring = KeyRing.generate()
    keys = tmp_path / "keys.json"
    write_key_file(keys, ring)
    address = dev_server.client.service_client.config.target_host
    # It plays the gateway: it seals its start and decisions with the tests' gateway key.
    client = sealing_client(await connect_temporal(TemporalSettings(address=address, keys=ring)))
    agencies = FakeAgencies(consent={SCHOOL: given_consent(status=pb.CONSENT_STATUS_REFUSED)})
    queue = f"hub-{uuid.uuid4().hex[:8]}"
    request = sharing_request()
    ref = case_ref_for(request.requesting_agency_id, request.request_id)
    target = ("--temporal-address", address)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            build_hub_worker(client, task_queue=queue, gateway_key_path=gateway_key_file())
        )
        for agency_id in (CSC, SCHOOL):
            await stack.enter_async_context(Worker(
                client, task_queue=agency_task_queue(agency_id),
                activities=agencies.activities_for(agency_id),
            ))  # fmt: skip
        await client.start_workflow(
            SharingCase.run, request, id=case_workflow_id(ref), task_queue=queue
        )
        exchange = client.get_workflow_handle_for(
            HolderExchange.run, holder_exchange_workflow_id(ref, SCHOOL)
        )
        for _ in range(600):
            try:
                state = (await exchange.query(HolderExchange.holder_record)).state
            except Exception:  # not started yet
                state = pb.CASE_STATE_UNSPECIFIED
            if state == pb.CASE_STATE_AWAITING_CONSENT_DECISION:
                break
            await asyncio.sleep(0.05)
        await exchange.execute_update(HolderExchange.propose_override, pb.OverrideProposal(
            actor=actor(SCHOOL, "teacher-1", "teacher"),
            consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
            harm_statement="pattern of absence", legal_basis="Children Act 1989 s47",
            reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
            necessity_and_proportionality="attendance only",
            minimum_data_set=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
            alternatives_considered="asked again", advice_sought="DSL",
            subject_will_be_told=False, not_telling_reason="risk to the child",
        ))  # fmt: skip

        # Visibility catches up a moment after the update (bounded).
        for _ in range(300):
            code, out, err = await asyncio.to_thread(
                cli, "cases", "list", "--waiting-on", "approver", *target
            )
            if f"case-{ref}" in out:
                break
            await asyncio.sleep(0.1)
        assert code == 0, err
        assert f"case-{ref}" in out and "APPROVER" in out and SCHOOL in out
        code, out, _ = await asyncio.to_thread(cli, "cases", "list", "--red", *target)
        assert code == 0 and f"case-{ref}" not in out  # an AMBER case

        code, out, err = await asyncio.to_thread(cli, "cases", "show", ref, *target)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert "payload keys" in err
        code, out, err = await asyncio.to_thread(cli, "cases", "show", ref, *target, keys=keys)
        assert code == 0, err
        assert "AWAITING_OVERRIDE_DECISION" in out and "waiting on APPROVER" in out
        assert "OverrideProposed" in out and "ConsentChecked" in out
        assert "Amara" not in out  # the child's details stay in the record

        following = asyncio.create_task(asyncio.to_thread(
            cli, "cases", "follow", ref, "--interval", "0.2", *target, keys=keys
        ))  # fmt: skip
        await exchange.execute_update(HolderExchange.decide_override, pb.OverrideDecision(
            actor=actor(SCHOOL, "dsl-1", "designated_safeguarding_lead"), approve=True,
            reason="threshold met",
        ))  # fmt: skip
        for _ in range(600):
            if (await exchange.query(HolderExchange.holder_record)).state == (
                pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
            ):
                break
            await asyncio.sleep(0.05)
        await exchange.execute_update(HolderExchange.acknowledge, pb.Acknowledgement(
            practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
            status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED, use="strategy", agency_id=CSC,
        ))  # fmt: skip
        code, out, err = await asyncio.wait_for(following, 60)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("20")]
    assert len(lines) == len(set(lines))  # each entry printed once
    events = [line.split()[4] for line in lines]
    assert events.index("OverrideProposed") < events.index("RecordsDelivered")
    assert events.index("RecordsDelivered") < events.index("Acknowledged")
    assert {"RequestReceived", "OverrideApproved", "CaseClosed"} <= set(events)
    assert f"case-{ref} closed: SHARED_UNDER_OVERRIDE" in out
    # Each read with the keys is in the case's access history, naming the operator.
    history = AccessLog(access_log_files[0]).events(ref)
    assert [(e.channel.value, e.action.value, e.user_id, e.purpose.value) for e in history] == [
        ("cli", "view", "operator-cy", "operator_support"),
        ("cli", "watch", "operator-cy", "operator_support"),
    ]
