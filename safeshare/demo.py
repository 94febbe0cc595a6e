"""The demo cases the dev stack submits: one of each path the walking skeleton has.

Request ids are fixed, so a second start finds the same cases (SubmitRequest is idempotent)
instead of opening new ones. Subjects are the sandbox's fictional children.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agency_adapters.sandbox.seed import DEMO_CHILDREN
from agency_adapters.sandbox.store import Child
from protos.sharing.v1 import case_pb2 as pb
from safeshare.client import CaseClient
from safeshare.tls import TlsFiles

RESTING_STATES = (pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT, pb.CASE_STATE_CLOSED)


@dataclass(frozen=True)
class DemoCase:
    """One demo case: who asks whom, about which fictional child, and what the demo does."""

    request_id: str
    requester: str
    holder: str
    child_key: str
    purpose: pb.Purpose.ValueType
    urgency: pb.Urgency.ValueType
    categories: tuple[pb.InformationCategory.ValueType, ...]
    acknowledge: bool
    story: str


DEMO_CASES = (
    DemoCase(
        "demo-1", "northshire-csc", "oakfield-primary", "consent-given",
        pb.PURPOSE_SAFEGUARDING, pb.URGENCY_AMBER,
        (pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE, pb.INFORMATION_CATEGORY_WELFARE_CONCERNS),
        True, "consent covers: delivered and acknowledged",
    ),
    DemoCase(
        "demo-2", "oakfield-primary", "riverside-gp", "consent-given",
        pb.PURPOSE_HEALTH_AND_WELLBEING, pb.URGENCY_GREEN,
        (pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,),
        False, "consent covers: delivered, waiting for the school to acknowledge",
    ),
    DemoCase(
        "demo-3", "northshire-police", "northshire-csc", "consent-refused",
        pb.PURPOSE_SAFEGUARDING, pb.URGENCY_RED,
        (pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT,),
        False, "consent refused: not shared (the override path is issue #3)",
    ),
    DemoCase(
        "demo-4", "riverside-gp", "oakfield-primary", "consent-partial",
        pb.PURPOSE_HEALTH_AND_WELLBEING, pb.URGENCY_AMBER,
        (pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE, pb.INFORMATION_CATEGORY_WELFARE_CONCERNS),
        False, "consent does not cover this purpose or category: not shared",
    ),
)  # fmt: skip


def _timestamp(at: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _child(key: str) -> Child:
    return next(child for child in DEMO_CHILDREN if child.key == key)


def demo_request(case: DemoCase) -> pb.SharingRequest:
    """The SharingRequest the requesting agency's system submits for ``case``."""
    child = _child(case.child_key)
    return pb.SharingRequest(
        request_id=case.request_id,
        requester=pb.Practitioner(
            user_id=f"{case.requester}-practitioner-1",
            role="designated_safeguarding_lead",
            training_valid_until=_timestamp(dt.datetime(2027, 12, 31, tzinfo=dt.UTC)),
        ),
        holding_agency_ids=[case.holder],
        subjects=[
            pb.Subject(
                role=pb.SUBJECT_ROLE_CHILD,
                given_name=child.given_name,
                family_name=child.family_name,
                date_of_birth=child.date_of_birth,
                nhs_number=child.nhs_number,
                postcode=child.postcode,
            )
        ],
        purpose=case.purpose,
        lawful_basis="Children Act 2004 s10 and s11; UK GDPR Art 6(1)(e)",
        categories=[
            pb.CategoryRequest(category=c, necessity="needed to assess the child's needs")
            for c in case.categories
        ],
        urgency=case.urgency,
        agency_reference=f"{case.requester.upper()}-{case.request_id.upper()}",
        family_aware=True,
    )


@dataclass(frozen=True)
class DemoResult:
    """A demo case as the dev stack reports it."""

    case: DemoCase
    case_ref: str
    created: bool
    view: pb.CaseView


async def run_demo(
    gateway: str, agency_tls: dict[str, TlsFiles], wait: float = 60.0
) -> list[DemoResult]:
    """Submit every demo case through the gateway as its requesting agency, wait for each to
    come to rest, and acknowledge the ones the demo acknowledges."""
    return list(
        await asyncio.gather(
            *(_run_case(gateway, agency_tls[case.requester], case, wait) for case in DEMO_CASES)
        )
    )


async def _run_case(gateway: str, tls: TlsFiles, case: DemoCase, wait: float) -> DemoResult:
    async with CaseClient.connect(gateway, tls) as client:
        submitted = await client.submit(demo_request(case))
        view = await _until_resting(client, submitted.case_ref, wait)
        if case.acknowledge and view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
            try:
                await client.acknowledge(
                    submitted.case_ref,
                    pb.Acknowledgement(
                        practitioner=pb.Practitioner(
                            user_id=f"{case.requester}-practitioner-1",
                            role="designated_safeguarding_lead",
                        ),
                        status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
                        use="added to the child's assessment",
                        feedback="received in time, thank you",
                    ),
                )
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
            view = await _until_resting(client, submitted.case_ref, wait, closed=True)
        return DemoResult(case, submitted.case_ref, submitted.created, view)


async def _until_resting(
    client: CaseClient, case_ref: str, wait: float, closed: bool = False
) -> pb.CaseView:
    wanted = (pb.CASE_STATE_CLOSED,) if closed else RESTING_STATES
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            view = await client.get(case_ref)
        except grpc.aio.AioRpcError as err:
            # The workflow's first task may not have run yet: a query then fails.
            if err.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE):
                raise
            view = pb.CaseView(case_ref=case_ref)
        if view.state in wanted or loop.time() > deadline:
            return view
        await asyncio.sleep(0.25)
