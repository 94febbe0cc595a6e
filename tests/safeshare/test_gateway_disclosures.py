"""SubmitDisclosure, RecordDisclosureNotMade and DecideDisclosure through the real gateway on
real mTLS, with the real hub worker on a real Temporal dev server: who may act (the holder is
the certificate's agency; a non-party finds no case; a recipient cannot act as the holder),
field violations for every missing field of a kind's fixed dataset, and idempotency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.demo import run_demo_disclosures
from safeshare.gateway.commands import command_id_of
from tests.disclosure_factories import CSC, GP, POLICE, SCHOOL, concern, encompass
from tests.eventually import eventually
from tests.safeshare.gateway_support import (
    WAIT,
    Gateway,
    new_request,
    refused,
    violations,
)
from workflows.disclosure_case import DisclosureCase
from workflows.ids import case_ref_for, case_workflow_id, disclosure_ref_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


def submit(disclosure: pb.Disclosure) -> service_pb.SubmitDisclosureRequest:
    return service_pb.SubmitDisclosureRequest(disclosure=disclosure)


async def wait_for(
    stub: Any, case_ref: str, done: Callable[[pb.CaseView], bool], what: str
) -> pb.CaseView:
    """Poll GetCase until ``done`` holds (bounded); a recipient finds no case until the
    protocol gate has passed and routed the disclosure to it."""

    async def read() -> pb.CaseView:
        try:
            return (await stub.GetCase(service_pb.GetCaseRequest(case_ref=case_ref))).case
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return pb.CaseView()

    return await eventually(
        read, done, what=what, last=lambda view: f"case is {pb.CaseState.Name(view.state)}"
    )


def delivered(view: pb.CaseView) -> bool:
    return any(r.HasField("receipt") for r in view.record.disclosure.recipients)


async def test_an_encompass_notification_is_delivered_acknowledged_and_closed(
    gateway: Gateway,
) -> None:
    disclosure = encompass()
    disclosure.holding_agency_id = GP  # a body cannot choose the disclosing agency
    police, school = gateway.as_agency(POLICE), gateway.as_agency(SCHOOL)
    opened = await police.SubmitDisclosure(submit(disclosure))
    assert opened.created and opened.case_ref == disclosure_ref_for(
        POLICE, disclosure.disclosure_id
    )

    seen = await wait_for(school, opened.case_ref, delivered, "delivered")
    assert seen.record.disclosure.holding_agency_id == POLICE
    assert seen.waiting_on == pb.WAITING_ON_RECIPIENT and seen.HasField("next_deadline")
    assert list(seen.record.disclosure.disclosure.caveats) == list(disclosure.caveats)
    # The recipient does not see the holder's reasoning for sharing without consent.
    assert not seen.record.disclosure.disclosure.consent.without_consent.reason

    ack = pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="dsl-0001", role="designated_safeguarding_lead"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED, agency_id=GP,
    )  # fmt: skip
    acked = await school.Acknowledge(
        service_pb.AcknowledgeRequest(case_ref=opened.case_ref, acknowledgement=ack)
    )
    (own,) = acked.case.record.disclosure.recipients
    assert own.acknowledgement.agency_id == SCHOOL  # the certificate's, not the body's
    handle = gateway.client.get_workflow_handle_for(
        DisclosureCase.run, case_workflow_id(opened.case_ref)
    )
    record = await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    # WatchCase: the recipient's events of the disclosure, numbered, ending at its close.
    events = [
        r.event
        async for r in school.WatchCase(service_pb.WatchCaseRequest(case_ref=opened.case_ref))
    ]
    assert [e.number for e in events] == list(range(1, len(events) + 1))
    names = [e.entry.event for e in events]
    assert names[0] == "DisclosureReceived" and names[-1] == "CaseClosed"
    assert "RecordsDelivered" in names and "Acknowledged" in names
    # Closed: the holder still reads the whole case.
    closed = await police.GetCase(service_pb.GetCaseRequest(case_ref=opened.case_ref))
    assert closed.case.state == pb.CASE_STATE_CLOSED
    assert closed.case.record.disclosure.disclosure.consent.without_consent.reason


async def test_a_resubmitted_disclosure_returns_its_case(gateway: Gateway) -> None:
    police = gateway.as_agency(POLICE)
    disclosure = encompass()
    first = await police.SubmitDisclosure(submit(disclosure))
    again = await police.SubmitDisclosure(submit(disclosure))
    assert (first.created, again.created) == (True, False)
    assert first.case_ref == again.case_ref
    # The same id from another agency is another case.
    other = await gateway.as_agency(GP).SubmitDisclosure(
        submit(concern(pb.URGENCY_RED, consent=True))
    )
    assert other.case_ref != first.case_ref


async def test_a_non_party_finds_no_case_and_a_recipient_cannot_act_as_holder(
    gateway: Gateway,
) -> None:
    gp = gateway.as_agency(GP)
    opened = await gp.SubmitDisclosure(submit(concern(pb.URGENCY_AMBER)))
    csc = gateway.as_agency(CSC)
    await wait_for(
        gp, opened.case_ref, lambda v: v.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION,
        "awaiting approval",
    )  # fmt: skip
    for outsider in (SCHOOL, POLICE):
        err = await refused(
            gateway.as_agency(outsider).GetCase(service_pb.GetCaseRequest(case_ref=opened.case_ref))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
    decision = pb.DisclosureApproval(
        actor=pb.Actor(agency_id=GP, practitioner=pb.Practitioner(user_id="cg-1", role="manager")),
        approve=True, reason="fictional",
    )  # fmt: skip
    call = service_pb.DecideDisclosureRequest(case_ref=opened.case_ref, decision=decision)
    # The recipient (a party once the gate routed the disclosure to it) cannot decide for
    # the holder, whatever its body says; the holder's approver can.
    err = await refused(csc.DecideDisclosure(call))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    await gp.DecideDisclosure(call)
    await wait_for(csc, opened.case_ref, delivered, "delivered")
    # Nor acknowledge as the holder: the holder is no recipient.
    ack = service_pb.AcknowledgeRequest(
        case_ref=opened.case_ref,
        acknowledgement=pb.Acknowledgement(
            practitioner=pb.Practitioner(user_id="gp-0007", role="gp"),
            status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
        ),
    )
    err = await refused(gp.Acknowledge(ack))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_every_missing_field_of_the_encompass_dataset_is_a_field_violation(
    gateway: Gateway,
) -> None:
    disclosure = encompass()
    disclosure.operation_encompass.CopyFrom(pb.OperationEncompassNotification())
    err = await refused(gateway.as_agency(POLICE).SubmitDisclosure(submit(disclosure)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    prefix = "disclosure.operation_encompass."
    assert [f for f, _ in violations(err)] == [
        prefix + name
        for name in ("police_reference", "incident_at", "incident_place", "child_present",
                     "voice_of_the_child", "circumstances")
    ]  # fmt: skip
    # Another kind's dataset, no consent position and a recipient that is not a partner.
    wrong = encompass()
    wrong.concern.CopyFrom(concern().concern)
    wrong.ClearField("consent")
    err = await refused(gateway.as_agency(POLICE).SubmitDisclosure(submit(wrong)))
    assert [f for f, _ in violations(err)] == ["disclosure.consent", "disclosure.concern"]
    nowhere = encompass(recipients=("nowhere-school",))
    err = await refused(gateway.as_agency(POLICE).SubmitDisclosure(submit(nowhere)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert violations(err) == [("disclosure.recipient_agency_ids[0]", "not a partner agency")]
    itself = encompass(recipients=(POLICE,))
    err = await refused(gateway.as_agency(POLICE).SubmitDisclosure(submit(itself)))
    assert [f for f, _ in violations(err)] == ["disclosure.recipient_agency_ids[0]"]


async def test_a_disclosure_considered_and_not_made_is_recorded(gateway: Gateway) -> None:
    call = service_pb.RecordDisclosureNotMadeRequest(
        not_made=pb.DisclosureNotMade(
            disclosure_id="considered-gp-1",
            decided_by=pb.Practitioner(user_id="gp-0007", role="gp"),
            kind=pb.DISCLOSURE_KIND_CONCERN, recipient_agency_ids=[CSC],
            reasons=["threshold_not_met"], explanation="fictional",
        )
    )  # fmt: skip
    gp = gateway.as_agency(GP)
    recorded = await gp.RecordDisclosureNotMade(call)
    again = await gp.RecordDisclosureNotMade(call)
    assert recorded.created and not again.created
    view = await wait_for(
        gp, recorded.case_ref, lambda v: v.state == pb.CASE_STATE_CLOSED, "closed"
    )
    assert view.record.outcome == pb.OUTCOME_NOT_SHARED
    assert view.record.disclosure.not_made.reasons == ["threshold_not_met"]
    err = await refused(gp.RecordDisclosureNotMade(service_pb.RecordDisclosureNotMadeRequest(
        not_made=pb.DisclosureNotMade(disclosure_id="x", kind=pb.DISCLOSURE_KIND_CONCERN)
    )))  # fmt: skip
    assert [f for f, _ in violations(err)] == [
        "not_made.decided_by.user_id", "not_made.decided_by.role", "not_made.reasons",
        "not_made.explanation",
    ]  # fmt: skip


async def test_the_demo_opens_an_encompass_notification_and_a_concern(gateway: Gateway) -> None:
    tls_files = {agency: gateway.pki.agency(agency) for agency in (POLICE, SCHOOL, GP, CSC)}
    results = await run_demo_disclosures(f"127.0.0.1:{gateway.port}", tls_files, wait=20)
    by_kind = {r.view.record.disclosure.kind: r for r in results}
    encompass_case = by_kind[pb.DISCLOSURE_KIND_OPERATION_ENCOMPASS]
    assert encompass_case.view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
    assert encompass_case.view.record.disclosure.recipients[0].HasField("acknowledge_by")
    concern_case = by_kind[pb.DISCLOSURE_KIND_CONCERN]
    assert concern_case.view.state == pb.CASE_STATE_CLOSED
    assert concern_case.view.record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    # A second start finds the same cases.
    again = await run_demo_disclosures(f"127.0.0.1:{gateway.port}", tls_files, wait=20)
    assert [r.case_ref for r in again] == [r.case_ref for r in results]
    assert not any(r.created for r in again)


async def listed(stub: Any, **filters: Any) -> dict[str, service_pb.CaseSummary]:
    """Every entry ListCases gives ``stub``'s agency with these filters, by case ref (each
    case, or each exchange of a case, at most once: a second entry fails here)."""
    found: dict[str, service_pb.CaseSummary] = {}
    entries: set[tuple[str, str]] = set()
    token = ""
    while True:
        page = await stub.ListCases(
            service_pb.ListCasesRequest(page_size=100, page_token=token, **filters)
        )
        for summary in page.cases:
            entry = (summary.case_ref, summary.holding_agency_id)
            assert entry not in entries, f"{entry} listed twice"
            entries.add(entry)
            found[summary.case_ref] = summary
        token = page.next_page_token
        if not token:
            return found


async def listed_eventually(stub: Any, case_ref: str, **filters: Any) -> service_pb.CaseSummary:
    """The case's entry once visibility has caught up (bounded)."""
    found = await eventually(
        lambda: listed(stub, **filters),
        lambda found: case_ref in found,
        what=f"{case_ref} listed",
        within=10,
        last=sorted,
    )
    return found[case_ref]


async def test_list_cases_lists_a_disclosure_to_its_holder_and_recipients_only(
    gateway: Gateway,
) -> None:
    police, school = gateway.as_agency(POLICE), gateway.as_agency(SCHOOL)
    gp, csc = gateway.as_agency(GP), gateway.as_agency(CSC)
    opened = await police.SubmitDisclosure(submit(encompass()))
    await wait_for(school, opened.case_ref, delivered, "delivered")

    # The holder and the recipient list it as a disclosure: its kind and recipients set, no
    # requester, so it is told apart from a request.
    for stub in (police, school):
        entry = await listed_eventually(stub, opened.case_ref)
        assert entry.disclosure_kind == pb.DISCLOSURE_KIND_OPERATION_ENCOMPASS
        assert list(entry.recipient_agency_ids) == [SCHOOL]
        assert list(entry.holding_agency_ids) == [POLICE]
        assert entry.requesting_agency_id == "" and entry.holding_agency_id == ""
        assert entry.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
    # Filters that list exchanges list it too, as its own state and whose move it is.
    waiting = await listed_eventually(school, opened.case_ref, waiting_on=pb.WAITING_ON_RECIPIENT)
    assert waiting.waiting_on == pb.WAITING_ON_RECIPIENT and waiting.HasField("next_deadline")
    # A request is listed with no kind and its requester.
    request = new_request()
    await csc.SubmitRequest(request)
    asked = await listed_eventually(csc, case_ref_for(CSC, request.request.request_id))
    assert asked.disclosure_kind == pb.DISCLOSURE_KIND_UNSPECIFIED
    assert asked.requesting_agency_id == CSC and not asked.recipient_agency_ids
    # Non-parties never list it, whatever the filter.
    for outsider in (gp, csc):
        for filters in ({}, {"waiting_on": pb.WAITING_ON_RECIPIENT}):
            assert opened.case_ref not in await listed(outsider, **filters)

    # Considered and not made: the holder lists it; the recipient it named never does.
    not_made = await gp.RecordDisclosureNotMade(
        service_pb.RecordDisclosureNotMadeRequest(
            not_made=pb.DisclosureNotMade(
                disclosure_id=f"considered-{opened.case_ref}",
                decided_by=pb.Practitioner(user_id="gp-0007", role="gp"),
                kind=pb.DISCLOSURE_KIND_CONCERN, recipient_agency_ids=[CSC],
                reasons=["threshold_not_met"], explanation="fictional",
            )
        )
    )  # fmt: skip
    entry = await listed_eventually(gp, not_made.case_ref, state=pb.CASE_STATE_CLOSED)
    assert entry.outcome == pb.OUTCOME_NOT_SHARED
    assert entry.disclosure_kind == pb.DISCLOSURE_KIND_CONCERN
    closed: dict[str, Any] = {"state": pb.CASE_STATE_CLOSED}
    for filters in ({}, closed):
        assert not_made.case_ref not in await listed(csc, **filters)


async def test_a_repeated_disclosure_decision_answers_the_same_receipt_after_the_case_moved_on(
    gateway: Gateway,
) -> None:
    gp, csc = gateway.as_agency(GP), gateway.as_agency(CSC)
    opened = await gp.SubmitDisclosure(submit(concern(pb.URGENCY_AMBER)))
    await wait_for(
        gp, opened.case_ref, lambda v: v.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION,
        "awaiting approval",
    )  # fmt: skip
    decision = pb.DisclosureApproval(
        actor=pb.Actor(agency_id=GP, practitioner=pb.Practitioner(user_id="cg-1", role="manager")),
        approve=True, reason="fictional",
    )  # fmt: skip
    call = service_pb.DecideDisclosureRequest(
        case_ref=opened.case_ref, decision=decision, command_id="approve-1"
    )
    first = await gp.DecideDisclosure(call)
    # The case moves on: delivered, acknowledged by the recipient, closed.
    await wait_for(csc, opened.case_ref, delivered, "delivered")
    ack = pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="sw-0001", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
    )
    await csc.Acknowledge(
        service_pb.AcknowledgeRequest(case_ref=opened.case_ref, acknowledgement=ack)
    )
    handle = gateway.client.get_workflow_handle_for(
        DisclosureCase.run, case_workflow_id(opened.case_ref)
    )
    await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    again = await gp.DecideDisclosure(call)
    # The receipt is the decision's own result, identical; the view is the case as it stands.
    assert again.applied == first.applied
    assert first.applied.command_id == "approve-1" and first.applied.entry_number > 0
    assert first.applied.state != pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    assert first.applied.outcome == pb.OUTCOME_UNSPECIFIED
    assert again.case.state == pb.CASE_STATE_CLOSED
    assert len(again.case.record.entries) > first.applied.entry_number
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        async for e in handle.fetch_history_events()
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert [command_id_of(u) for u in accepted].count("approve-1") == 1
