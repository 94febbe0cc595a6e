"""GetCase never half-answers: read as fast as a client polls while a case closes, every answer
that says CLOSED carries the outcome (the requester's and the holder's)."""

from __future__ import annotations

import asyncio
import time

import pytest

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from tests.safeshare.gateway_support import (
    CSC,
    SCHOOL,
    WAIT,
    Gateway,
    acknowledgement,
    wait_for_state,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_every_closed_answer_while_a_case_closes_has_its_outcome(gateway: Gateway) -> None:
    csc, school = gateway.cached(CSC), gateway.cached(SCHOOL)
    ref = await gateway.open_case()
    await wait_for_state(csc, ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    seen: list[tuple[str, pb.CaseState.ValueType, pb.Outcome.ValueType]] = []

    async def poll(who: str) -> None:
        stub = csc if who == CSC else school
        deadline = time.monotonic() + WAIT.total_seconds()
        while time.monotonic() < deadline:
            view = (await stub.GetCase(service_pb.GetCaseRequest(case_ref=ref))).case
            seen.append((who, view.state, view.record.outcome))
            if view.state == pb.CASE_STATE_CLOSED and gateway_closed[0]:
                return
            await asyncio.sleep(0.005)

    gateway_closed = [False]
    readers = [asyncio.create_task(poll(CSC)), asyncio.create_task(poll(SCHOOL))]
    await csc.Acknowledge(acknowledgement(ref))
    await gateway.result(ref)  # the case workflow has closed
    gateway_closed[0] = True
    await asyncio.gather(*readers)

    closed = [s for s in seen if s[1] == pb.CASE_STATE_CLOSED]
    assert {who for who, _, _ in closed} == {CSC, SCHOOL}
    assert [s for s in closed if s[2] == pb.OUTCOME_UNSPECIFIED] == []
