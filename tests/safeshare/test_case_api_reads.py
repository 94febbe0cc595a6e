"""ListCases and WatchCase over real mTLS, against the real gateway, hub worker and dev server.

Reuses test_gateway's fixture and helpers (fake agencies: consent given unless refused).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.client import CaseClient
from tests.eventually import eventually
from tests.safeshare.gateway_support import (
    CSC,
    GP,
    POLICE,
    SCHOOL,
    Gateway,
    acknowledgement,
    new_request,
    refused,
    violations,
    wait_for_state,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
STREAM_WAIT = 30.0


@asynccontextmanager
async def client_for(gw: Gateway, agency_id: str) -> AsyncIterator[CaseClient]:
    async with CaseClient.connect(f"127.0.0.1:{gw.port}", gw.pki.agency(agency_id)) as client:
        yield client


async def take(events: AsyncIterator[service_pb.CaseEvent], n: int) -> list[service_pb.CaseEvent]:
    """The next ``n`` events of a watch (bounded)."""
    got: list[service_pb.CaseEvent] = []

    async def read() -> None:
        async for event in events:
            got.append(event)
            if len(got) == n:
                return

    await asyncio.wait_for(read(), STREAM_WAIT)
    return got


async def drain(events: AsyncIterator[service_pb.CaseEvent]) -> list[service_pb.CaseEvent]:
    """Every event until the stream ends (bounded: it must end when the case closes)."""

    async def read() -> list[service_pb.CaseEvent]:
        return [event async for event in events]

    return await asyncio.wait_for(read(), STREAM_WAIT)


def keyed(events: list[service_pb.CaseEvent]) -> list[tuple[int, str, str, str]]:
    return [
        (e.number, e.holding_agency_id, e.entry.event, e.entry.at.ToJsonString()) for e in events
    ]


# -- WatchCase ------------------------------------------------------------------------------------


async def test_watch_streams_a_whole_case_and_resumes_without_loss_or_repeat(
    gateway: Gateway,
) -> None:
    case_ref = await gateway.open_case()
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)

    async with client_for(gateway, CSC) as csc:
        # First connection: read a few events, then drop the stream mid-case.
        first = csc.watch_case(case_ref)
        before = await take(first, 3)
        await first.aclose()
        await csc.acknowledge(case_ref, acknowledgement(case_ref).acknowledgement)
        # Reconnect from the next number: the rest, up to the end of the (now closed) case.
        rest = await drain(csc.watch_case(case_ref, from_event=before[-1].number + 1))
        whole = await drain(csc.watch_case(case_ref))
    async with client_for(gateway, SCHOOL) as school:
        as_holder = await drain(school.watch_case(case_ref))

    record = await gateway.result(case_ref)
    resumed = before + rest
    assert [e.number for e in resumed] == list(range(1, len(resumed) + 1))
    assert keyed(resumed) == keyed(whole) == keyed(as_holder)
    expected = [("", e.event, e.at.ToJsonString()) for e in record.entries] + [
        (h.holding_agency_id, e.event, e.at.ToJsonString())
        for h in record.holders
        for e in h.entries
    ]
    assert sorted((h, ev, at) for _, h, ev, at in keyed(whole)) == sorted(expected)
    assert whole[0].entry.event == record.entries[0].event
    assert whole[-1].entry.event == "CaseClosed"
    times = [e.entry.at.ToDatetime() for e in whole]
    assert times == sorted(times)


async def test_watch_of_a_closed_case_from_past_its_end_sends_nothing(gateway: Gateway) -> None:
    case_ref = await gateway.open_case()
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    await gateway.cached(CSC).Acknowledge(acknowledgement(case_ref))
    record = await gateway.result(case_ref)
    total = len(record.entries) + sum(len(h.entries) for h in record.holders)

    async with client_for(gateway, CSC) as csc:
        last = await drain(csc.watch_case(case_ref, from_event=total))
        none = await drain(csc.watch_case(case_ref, from_event=total + 1))

    assert [e.number for e in last] == [total]
    assert none == []


async def test_watch_refuses_non_parties_and_bad_arguments(gateway: Gateway) -> None:
    case_ref = await gateway.open_case(refused=True)

    async with client_for(gateway, GP) as gp, client_for(gateway, CSC) as csc:
        stranger = await refused(drain(gp.watch_case(case_ref)))
        bad = await refused(drain(csc.watch_case("not-a-case", from_event=-1)))

    assert stranger.code() == grpc.StatusCode.NOT_FOUND
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(bad)] == ["case_ref", "from_event"]


async def test_a_watch_whose_deadline_passes_stops_polling(gateway: Gateway) -> None:
    case_ref = await gateway.open_case(refused=True)  # stays open, waiting on the holder
    await wait_for_state(gateway.cached(CSC), case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    async with client_for(gateway, CSC) as csc:
        expired = await refused(drain(csc.watch_case(case_ref, deadline=1.5)))

    assert expired.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(200):
        if gateway.servicer.active_watches == 0:
            break
        await asyncio.sleep(0.05)
    assert gateway.servicer.active_watches == 0


async def test_too_many_watches_are_refused_as_resource_exhausted(gateway: Gateway) -> None:
    case_ref = await gateway.open_case(refused=True)
    gateway.servicer.max_watches = 0
    try:
        async with client_for(gateway, CSC) as csc:
            busy = await refused(drain(csc.watch_case(case_ref)))
    finally:
        gateway.servicer.max_watches = 200

    assert busy.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- ListCases ------------------------------------------------------------------------------------


async def list_all(client: CaseClient, **filters: object) -> list[service_pb.CaseSummary]:
    """Every page of a listing, with a small page size so paging is exercised."""
    found: list[service_pb.CaseSummary] = []
    token = ""
    for _ in range(200):
        page = await client.list_cases(page_size=2, page_token=token, **filters)  # type: ignore[arg-type]
        assert len(page.cases) <= 2
        found.extend(page.cases)
        token = page.next_page_token
        if not token:
            return found
    raise AssertionError("the listing never ended")


async def listed_eventually(
    client: CaseClient, wanted: set[str], **filters: object
) -> list[service_pb.CaseSummary]:
    """Poll the listing until it holds ``wanted`` (visibility lags the cases a little)."""
    return await eventually(
        lambda: list_all(client, **filters),
        lambda found: wanted <= {s.case_ref for s in found},
        what=f"listed {sorted(wanted)}",
        within=10,
        every=0.1,
        last=lambda found: sorted(wanted - {s.case_ref for s in found}),
    )


async def test_list_cases_pages_filters_and_shows_only_the_callers_cases(
    gateway: Gateway,
) -> None:
    police = gateway.cached(POLICE)
    waiting: list[str] = []
    delivered: list[str] = []
    for refused_consent in (True, True, False):
        call = new_request(SCHOOL)
        ref = (await police.SubmitRequest(call)).case_ref
        (waiting if refused_consent else delivered).append(ref)
        if refused_consent:
            gateway.fakes.refused.add(ref)
    # A case POLICE is not party to: never in its listing.
    others = await gateway.cached(GP).SubmitRequest(new_request(CSC))
    for ref in waiting:
        await wait_for_state(police, ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    await wait_for_state(police, delivered[0], pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)

    async with client_for(gateway, POLICE) as as_police, client_for(gateway, SCHOOL) as as_school:
        every = await listed_eventually(as_police, {*waiting, *delivered})
        on_holder = await listed_eventually(
            as_police, set(waiting), waiting_on=pb.WAITING_ON_HOLDER
        )
        on_recipient = await listed_eventually(
            as_police, set(delivered), state=pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        )
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)  # RED: the holder has 2 hours
        due = await listed_eventually(as_police, set(waiting), deadline_before=soon)
        not_yet = await list_all(
            as_police, deadline_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        )
        as_holder = await listed_eventually(as_school, {*waiting, *delivered})

    refs = [s.case_ref for s in every]
    assert len(refs) == len(set(refs)), "a page repeated a case"
    assert others.case_ref not in refs
    assert all(s.requesting_agency_id == POLICE or POLICE in s.holding_agency_ids for s in every)
    assert all(not s.holding_agency_id for s in every)  # whole cases
    assert all(
        s.waiting_on == pb.WAITING_ON_HOLDER and s.holding_agency_id == SCHOOL for s in on_holder
    )
    assert not set(delivered) & {s.case_ref for s in on_holder}
    assert all(s.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT for s in on_recipient)
    assert not set(waiting) & {s.case_ref for s in on_recipient}
    assert all(s.next_deadline.ToDatetime(dt.UTC) < soon for s in due)
    assert not set(waiting) & {s.case_ref for s in not_yet}
    # (a disclosure the school was sent lists it as a recipient)
    assert all(
        SCHOOL in s.holding_agency_ids or SCHOOL in s.recipient_agency_ids for s in as_holder
    )


async def test_list_cases_refuses_bad_filters_and_foreign_page_tokens(gateway: Gateway) -> None:
    police = gateway.cached(POLICE)
    await police.SubmitRequest(new_request(SCHOOL))
    await police.SubmitRequest(new_request(SCHOOL))
    async with client_for(gateway, POLICE) as client:
        first = service_pb.ListCasesResponse()
        for _ in range(100):
            first = await client.list_cases(page_size=1)
            if first.next_page_token:
                break
            await asyncio.sleep(0.1)
        assert first.next_page_token

        other_filters = await refused(
            client.list_cases(state=pb.CASE_STATE_CLOSED, page_token=first.next_page_token)
        )
        garbage = await refused(client.list_cases(page_token="!!not base64!!"))
        mixed = await refused(
            client.list_cases(state=pb.CASE_STATE_CLOSED, waiting_on=pb.WAITING_ON_HOLDER)
        )
        # Unknown enum numbers break the request's shape; its other fields are named with them.
        unknown = await refused(
            client.list_cases(state=99, waiting_on=42, page_size=-1)  # type: ignore[arg-type]
        )
        negative = await refused(client.list_cases(page_size=-1))

    for err in (other_filters, garbage, mixed, unknown, negative):
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(other_filters)] == ["page_token"]
    assert [f for f, _ in violations(garbage)] == ["page_token"]
    assert [f for f, _ in violations(mixed)] == ["waiting_on"]
    assert violations(unknown) == [
        ("state", "unknown value 99"),
        ("waiting_on", "unknown value 42"),
        ("page_size", violations(negative)[0][1]),
    ]
    assert [f for f, _ in violations(negative)] == ["page_size"]


async def test_the_client_resubmits_to_the_same_case(gateway: Gateway) -> None:
    call = new_request(SCHOOL)
    async with client_for(gateway, CSC) as csc:
        first = await csc.submit(call.request)
        again = await csc.submit(call.request)
        view = await csc.get(first.case_ref)

    assert first.created and not again.created
    assert again.case_ref == first.case_ref == view.case_ref
