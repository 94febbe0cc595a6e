"""The protocol review on a real dev server: five cases with different outcomes run on the real
hub worker (fake agencies), then the review's figures are checked against figures the test
computes itself from the cases' decision records and the registry it wrote."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import textwrap
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from activities.review import ProtocolReviewActivities, visibility_time, window_query
from activities.review_figures import ReviewWindow, deadlines_missed
from activities.review_report import render_markdown
from protos.sharing.v1 import case_pb2 as pb
from safeshare.access.events import AccessEvent, Action, Channel, Outcome, Purpose
from safeshare.access.log import AccessLog
from safeshare.codec import KeyRing, data_converter
from safeshare.hub import build_hub_worker
from tests.eventually import eventually
from tests.factories import given_consent, sharing_request, timestamp
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import gateway_key_file, sealing_client
from tests.workflows.harness import CSC, GP, SCHOOL, actor
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.protocol_review import ProtocolReview, ReviewInput
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROVIDER = "bright-futures"
HISTORIES = Path(__file__).resolve().parent.parent / "histories"


def registry_file(folder: Path, today: dt.date) -> Path:
    """A registry with one signatory due for review soon, one overdue, and a provider."""
    soon = today + dt.timedelta(days=30)
    path = folder / "registry.toml"
    path.write_text(textwrap.dedent(f"""
        registry_version = 3
        protocol_version = "2026.1"
        [[agencies]]
        id = "{CSC}"
        name = "CSC"
        kind = "statutory"
        signed_protocol_version = "2026.1"
        review_date = 2030-01-01
        [[agencies]]
        id = "{SCHOOL}"
        name = "School"
        kind = "statutory"
        signed_protocol_version = "2026.1"
        review_date = {soon.isoformat()}
        [[agencies]]
        id = "{GP}"
        name = "GP"
        kind = "statutory"
        signed_protocol_version = "2026.1"
        review_date = 2030-01-01
        [[agencies]]
        id = "northshire-police"
        name = "Police"
        kind = "statutory"
        signed_protocol_version = "2026.1"
        review_date = 2020-01-01
        [[agencies]]
        id = "{PROVIDER}"
        name = "Bright Futures Family Support"
        kind = "commissioned"
        signed_protocol_version = "2026.1"
        review_date = 2020-01-01
        commissioned_by = "{CSC}"
    """))  # fmt: skip
    return path


def request(
    requester: str, holder: str, user: str, training: dt.datetime, purpose: int
) -> pb.SharingRequest:
    built = sharing_request(requesting_agency_id=requester, holding_agency_id=holder)
    built.requester.user_id = user
    built.requester.training_valid_until.CopyFrom(timestamp(training))
    built.purpose = purpose  # type: ignore[assignment]
    return built


@asynccontextmanager
async def hub(
    client: Client, registry: Path, agencies: FakeAgencies, access_log: Path | None = None
) -> AsyncIterator[str]:
    """The real hub worker on a fresh queue, and a fake adapter per agency."""
    queue = f"hub-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            build_hub_worker(
                client,
                registry,
                task_queue=queue,
                access_log=access_log,
                gateway_key_path=gateway_key_file(),
            )
        )
        for agency_id in (CSC, SCHOOL, GP, PROVIDER):
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=agency_task_queue(agency_id),
                    activities=agencies.activities_for(agency_id),
                )
            )
        yield queue


async def start(
    client: Client, queue: str, built: pb.SharingRequest
) -> WorkflowHandle[SharingCase, pb.DecisionRecord]:
    ref = case_ref_for(built.requesting_agency_id, built.request_id)
    return await client.start_workflow(
        SharingCase.run, built, id=case_workflow_id(ref), task_queue=queue
    )


async def until_state(
    client: Client, built: pb.SharingRequest, state: pb.CaseState.ValueType
) -> WorkflowHandle[HolderExchange, pb.HolderRecord]:
    ref = case_ref_for(built.requesting_agency_id, built.request_id)
    exchange = client.get_workflow_handle_for(
        HolderExchange.run, holder_exchange_workflow_id(ref, built.holding_agency_ids[0])
    )
    await eventually(
        lambda: exchange.query(HolderExchange.holder_record),
        lambda record: record.state == state,
        what=f"exchange reached {pb.CaseState.Name(state)}",
        within=30,
        retry_on=(Exception,),  # not started yet
    )
    return exchange


def acknowledgement(agency_id: str) -> pb.Acknowledgement:
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED, use="strategy discussion", agency_id=agency_id,
    )  # fmt: skip


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def test_review_figures_match_the_cases(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = sealing_client(dev_server.client)  # it plays the gateway
    now = dt.datetime.now(dt.UTC)
    registry = registry_file(tmp_path, now.date())
    agencies = FakeAgencies(
        consent={GP: given_consent(status=pb.CONSENT_STATUS_REFUSED)},
        lookup_error={PROVIDER: "NOT_FOUND"},
    )
    soon = now + dt.timedelta(days=20)
    later = now + dt.timedelta(days=400)
    shared = request(CSC, SCHOOL, "sw-1", later, pb.PURPOSE_SAFEGUARDING)
    awaiting = request(CSC, SCHOOL, "sw-2", soon, pb.PURPOSE_EDUCATION)
    overridden = request(CSC, GP, "sw-1", later, pb.PURPOSE_SAFEGUARDING)
    unknown = request(GP, PROVIDER, "gp-1", later, pb.PURPOSE_HEALTH_AND_WELLBEING)
    lapsed = request(GP, SCHOOL, "gp-2", now - dt.timedelta(days=1), pb.PURPOSE_SAFEGUARDING)
    reports = tmp_path / "reports"
    access = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())

    async with hub(client, registry, agencies, access.path) as queue:
        handles = [await start(client, queue, r) for r in (shared, awaiting, overridden,
                                                             unknown, lapsed)]  # fmt: skip
        # The period starts at this test's first case, as the server stamped it: a case another
        # test opened just before (in this shared dev server) is outside it. Tests run one at a
        # time, so every case and exchange started from here on is this test's.
        first_start = (await handles[0].describe()).start_time
        assert first_start is not None
        period_start = first_start.astimezone(dt.UTC)
        exchange = await until_state(client, shared, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await exchange.execute_update(HolderExchange.acknowledge, acknowledgement(CSC))
        exchange = await until_state(client, overridden, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await exchange.execute_update(HolderExchange.propose_override, pb.OverrideProposal(
            actor=actor(GP, "gp-9", "gp"), consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
            harm_statement="injuries inconsistent with the account given",
            legal_basis="Children Act 1989 s47", reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
            necessity_and_proportionality="attendance only",
            minimum_data_set=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
            alternatives_considered="none safe", advice_sought="Caldicott guardian",
            subject_will_be_told=True, subject_told_by=timestamp(later),
        ))  # fmt: skip
        await exchange.execute_update(HolderExchange.decide_override, pb.OverrideDecision(
            actor=actor(GP, "cg-1", "caldicott_guardian"), approve=True, reason="s47 met",
        ))  # fmt: skip
        exchange = await until_state(client, overridden, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await exchange.execute_update(HolderExchange.acknowledge, acknowledgement(CSC))
        waiting = await until_state(client, awaiting, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        closed = [await handles[i].result() for i in (0, 2, 3, 4)]
        open_case = await handles[1].query(SharingCase.case_view)
        open_holder = await waiting.query(HolderExchange.holder_record)

        # Visibility catches up with the workflows a moment later: wait for it (bounded).
        since = f"StartTime >= '{visibility_time(period_start)}'"
        for _ in range(300):
            done = await count(client, f"WorkflowType='SharingCase' AND {since} AND "
                                       "ExecutionStatus='Completed' AND Outcome != ''")  # fmt: skip
            waiting_ack = await count(client, f"WorkflowType='HolderExchange' AND {since} AND "
                                              "CaseState='AWAITING_ACKNOWLEDGEMENT'")  # fmt: skip
            if done == 4 and waiting_ack == 1:
                break
            await asyncio.sleep(0.1)
        # Reads in the window: two by CSC, one by an operator, and one refused read by GP.
        read_at = dt.datetime.now(dt.UTC)
        access.append([
            AccessEvent(read_at, "a" * 20, Channel.CASE_API, Action.VIEW, Outcome.ALLOWED,
                        CSC, "sw-1", Purpose.CASE_WORK),
            AccessEvent(read_at, "a" * 20, Channel.CASE_API, Action.WATCH, Outcome.ALLOWED,
                        CSC, "sw-1", Purpose.CASE_WORK),
            AccessEvent(read_at, "a" * 20, Channel.CODEC_SERVER, Action.DECRYPT, Outcome.ALLOWED,
                        "", "operator-ana", Purpose.OPERATOR_SUPPORT),
            AccessEvent(read_at, "a" * 20, Channel.CASE_API, Action.VIEW, Outcome.REFUSED,
                        GP, "gp-1", Purpose.CASE_WORK, "not_a_party"),
        ])  # fmt: skip
        result = await client.execute_workflow(
            ProtocolReview.run,
            ReviewInput(reports_dir=str(reports), period_start=period_start.isoformat()),
            id=f"review-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        await handles[1].terminate("test over")

    # The figures, computed from the decision records.
    records = [*closed, open_case.record]
    holders = [h for r in closed for h in r.holders] + [open_holder]
    name = pb.Outcome.Name
    figures = result.figures
    assert figures.cases_opened == 5
    assert figures.cases_by_requesting_agency == dict(
        Counter(r.request.requesting_agency_id for r in records)
    )
    assert figures.cases_by_purpose == dict(
        Counter(pb.Purpose.Name(r.request.purpose).removeprefix("PURPOSE_") for r in records)
    )
    assert figures.case_outcomes == dict(
        Counter([name(r.outcome).removeprefix("OUTCOME_") for r in closed] + ["OPEN"])
    )
    assert figures.case_outcomes == {"NOT_SHARED": 1, "OPEN": 1, "REJECTED_BY_PROTOCOL_GATE": 1,
                                     "SHARED_UNDER_OVERRIDE": 1, "SHARED_WITH_CONSENT": 1}  # fmt: skip
    assert figures.exchanges_by_holding_agency == dict(
        Counter(h.holding_agency_id for h in holders)
    )
    assert figures.exchange_outcomes == dict(
        Counter(name(h.outcome).removeprefix("OUTCOME_") if h.outcome else "OPEN" for h in holders)
    )
    assert figures.overrides_used == sum(h.override_used for h in holders) == 1
    assert figures.acknowledgements_outstanding == 1
    assert figures.deadlines_missed == deadlines_missed(holders) == {}
    assert figures.unreadable_records == 0
    soon_or_lapsed = {
        (r.request.requesting_agency_id, r.request.requester.user_id):
            r.request.requester.training_valid_until.ToDatetime(dt.UTC) <= now
        for r in records
        if r.request.requester.training_valid_until.ToDatetime(dt.UTC)
        <= now + dt.timedelta(days=60)
    }  # fmt: skip
    assert {(t.agency_id, t.user_id): t.lapsed for t in figures.training} == soon_or_lapsed
    assert soon_or_lapsed == {(CSC, "sw-2"): False, (GP, "gp-2"): True}
    assert [(s.agency_id, s.status) for s in figures.signatories] == [
        ("northshire-police", "review overdue"),
        (SCHOOL, "review due within 60 days"),
    ]
    assert [(p.provider_id, p.commissioner_id, p.commissioner_current)
            for p in figures.providers] == [(PROVIDER, CSC, True)]  # fmt: skip

    assert figures.accesses_by_agency == {CSC: 2, "partnership": 1}
    assert figures.accesses_by_purpose == {"case_work": 2, "operator_support": 1}
    assert [(r.agency_id, r.user_id, r.reason) for r in figures.refused_accesses] == [
        (GP, "gp-1", "not_a_party")
    ]

    markdown = await asyncio.to_thread(Path(result.files.markdown).read_text)
    assert "| not_a_party |" in markdown and "| operator_support | 1 |" in markdown
    assert "5 cases opened" in markdown and "| northshire-police |" in markdown
    assert "| SHARED_UNDER_OVERRIDE | 1 |" in markdown and "| gp-2 |" in markdown
    html = await asyncio.to_thread(Path(result.files.html).read_text)
    assert "<td>SHARED_WITH_CONSENT</td><td>1</td>" in html
    assert "Amara" not in markdown + html  # no child's details in the report


async def test_deadlines_missed_counts_each_reminder_by_step() -> None:
    """On a recorded case whose holder missed its deadline: one reminder rung per deadline."""
    history = json.loads((HISTORIES / "escalation-holder_responds.exchange-1.json").read_text())
    completed = history["events"][-1]["workflowExecutionCompletedEventAttributes"]
    payload = completed["result"]["payloads"][0]
    record = json_format.Parse(base64.b64decode(payload["data"]), pb.HolderRecord())
    levels = [(e.step, e.level) for e in record.escalations]
    assert ("holder_responds", "reminder") in levels
    assert deadlines_missed([record]) == dict(
        Counter(step for step, level in levels if level == "reminder")
    )
    assert window_query("SharingCase", ReviewWindow("2026-01-01T00:00:00+00:00",
                                                    "2026-02-01T00:00:00+00:00")) == (
        "WorkflowType='SharingCase' AND StartTime >= '2026-01-01T00:00:00.000000Z' "
        "AND StartTime < '2026-02-01T00:00:00.000000Z'"
    )  # fmt: skip


async def test_a_case_the_hub_cannot_decode_is_counted_and_noted_not_fatal(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A case whose request is encrypted with a key the hub does not hold (another deployment's,
    or a test's own ring) is counted from its search attributes and named as undecodable."""
    config = dev_server.client.config()
    config["data_converter"] = data_converter(KeyRing.generate("not-the-hubs-key"))
    foreign = await Client(**config).start_workflow(
        "SharingCase", request(CSC, SCHOOL, "sw-3", dt.datetime.now(dt.UTC),
                               pb.PURPOSE_SAFEGUARDING),
        id=f"case-undecodable-{uuid.uuid4().hex}", task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    try:
        started = (await foreign.describe()).start_time
        assert started is not None
        window = ReviewWindow(started.isoformat(), dt.datetime.now(dt.UTC).isoformat())
        await eventually(
            lambda: count(dev_server.client, window_query("SharingCase", window)),
            lambda n: n == 1,
            what="visibility lists the undecodable case",
        )
        review = ProtocolReviewActivities(
            dev_server.client, registry_file(tmp_path, dt.date.today())
        )
        figures = await ActivityEnvironment().run(review.gather_figures, window)
    finally:
        await foreign.terminate("test over")
        await dev_server.client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=dev_server.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=foreign.id),
            )
        )
    assert figures.cases_opened == 1 and figures.case_outcomes == {"OPEN": 1}
    assert figures.undecodable_cases == 1
    assert figures.training == []  # its lapsed training could not be read
    assert "1 could not be decoded with this hub's keys" in render_markdown(figures)
