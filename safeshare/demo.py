"""The demo cases the dev stack submits, and what their practitioners do: one of each path.

Request ids are fixed, so a second start finds the same cases (SubmitRequest is idempotent)
instead of opening new ones. Subjects are the sandbox's fictional children.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agency_adapters.sandbox_agency.rows import Child
from agency_adapters.sandbox_agency.seed import DEMO_CHILDREN
from protos.sharing.v1 import case_pb2 as pb
from safeshare.client import CaseClient
from safeshare.tls import TlsFiles

RESTING_STATES = (
    pb.CASE_STATE_AWAITING_CONSENT_DECISION,
    pb.CASE_STATE_AWAITING_OVERRIDE_DECISION,
    pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT,
    pb.CASE_STATE_CLOSED,
)


class Script(enum.Enum):
    """What the demo's practitioners do once a case comes to rest."""

    ACKNOWLEDGE = "acknowledge"
    LEAVE_WAITING = "leave waiting"
    OVERRIDE = "override"
    DECLINE = "decline"


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
    script: Script
    story: str


DEMO_CASES = (
    DemoCase(
        "demo-1", "northshire-csc", "oakfield-primary", "consent-given",
        pb.PURPOSE_SAFEGUARDING, pb.URGENCY_AMBER,
        (pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE, pb.INFORMATION_CATEGORY_WELFARE_CONCERNS),
        Script.ACKNOWLEDGE, "consent covers: delivered and acknowledged",
    ),
    DemoCase(
        "demo-2", "oakfield-primary", "riverside-gp", "consent-given",
        pb.PURPOSE_HEALTH_AND_WELLBEING, pb.URGENCY_GREEN,
        (pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,),
        Script.LEAVE_WAITING, "consent covers: delivered, waiting for the school to acknowledge",
    ),
    DemoCase(
        "demo-3", "northshire-police", "northshire-csc", "consent-refused",
        pb.PURPOSE_SAFEGUARDING, pb.URGENCY_RED,
        (pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT,),
        Script.OVERRIDE, "consent refused: override proposed, approved, delivered",
    ),
    DemoCase(
        "demo-4", "riverside-gp", "oakfield-primary", "consent-partial",
        pb.PURPOSE_HEALTH_AND_WELLBEING, pb.URGENCY_AMBER,
        (pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE, pb.INFORMATION_CATEGORY_WELFARE_CONCERNS),
        Script.DECLINE, "consent does not cover: the school declines, with reasons",
    ),
    DemoCase(
        "demo-5", "northshire-csc", "northshire-police", "consent-withdrawn",
        pb.PURPOSE_PROTECTION_FROM_HARM, pb.URGENCY_AMBER,
        (pb.INFORMATION_CATEGORY_POLICE_INCIDENTS,),
        Script.LEAVE_WAITING, "consent withdrawn: waiting for the police to decide",
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
    come to rest, and play each case's script as its practitioners would."""
    return list(
        await asyncio.gather(*(_run_case(gateway, agency_tls, case, wait) for case in DEMO_CASES))
    )


def _actor(agency_id: str, user: str, role: str) -> pb.Actor:
    return pb.Actor(practitioner=pb.Practitioner(user_id=f"{agency_id}-{user}", role=role))


async def _run_case(
    gateway: str, agency_tls: dict[str, TlsFiles], case: DemoCase, wait: float
) -> DemoResult:
    async with (
        CaseClient.connect(gateway, agency_tls[case.requester]) as requester,
        CaseClient.connect(gateway, agency_tls[case.holder]) as holder,
    ):
        submitted = await requester.submit(demo_request(case))
        ref = submitted.case_ref
        view = await _until_resting(requester, ref, wait)
        try:
            if (
                case.script is Script.OVERRIDE
                and view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
            ):
                await holder.propose_override(ref, _override(case))
                await holder.decide_override(
                    ref,
                    pb.OverrideDecision(
                        actor=pb.Actor(
                            practitioner=pb.Practitioner(
                                user_id="dsl-1", role="designated_safeguarding_lead"
                            )
                        ),
                        approve=True,
                        reason="s47 threshold met; sharing is necessary and proportionate",
                    ),
                )
                view = await _until_resting(requester, ref, wait, after=view.state)
            if (
                case.script is Script.DECLINE
                and view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
            ):
                await holder.decline_to_share(
                    ref,
                    pb.DeclineDecision(
                        actor=_actor(case.holder, "practitioner-1", "teacher"),
                        reasons=["consent_not_covering", "not_necessary_for_purpose"],
                        explanation="the GP's concern can be met by the school nurse's review",
                    ),
                )
                view = await _until_resting(requester, ref, wait, after=view.state)
            if (
                case.script in (Script.ACKNOWLEDGE, Script.OVERRIDE)
                and view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
            ):
                await requester.acknowledge(ref, _acknowledgement(case))
                view = await _until_resting(requester, ref, wait, after=view.state)
        except grpc.aio.AioRpcError as err:
            # A second start finds the cases where the first left them.
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        return DemoResult(case, ref, submitted.created, await requester.get(ref))


def _override(case: DemoCase) -> pb.OverrideProposal:
    return pb.OverrideProposal(
        actor=_actor(case.holder, "practitioner-1", "social_worker"),
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="police report a risk of significant harm to the child",
        legal_basis="Children Act 1989 s47; DPA 2018 Sch 1 para 18",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="only social care involvement, for the strategy meeting",
        minimum_data_set=list(case.categories),
        alternatives_considered="asking the father again: refused; risk of delay",
        advice_sought="designated safeguarding lead",
        subject_will_be_told=False,
        not_telling_reason="telling the family now may increase the risk to the child",
    )


def _acknowledgement(case: DemoCase) -> pb.Acknowledgement:
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(
            user_id=f"{case.requester}-practitioner-1", role="designated_safeguarding_lead"
        ),
        status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
        use="added to the child's assessment",
        feedback="received in time, thank you",
    )


async def _until_resting(
    client: CaseClient, case_ref: str, wait: float, after: int | None = None
) -> pb.CaseView:
    """Poll the case until it rests at a step where a person must act (or it closed), and
    is no longer at ``after``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            view = await client.get(case_ref)
        except grpc.aio.AioRpcError as err:
            # The workflow's first task may not have run yet: a query then fails.
            # A busy machine may also let one poll run past its deadline: poll again.
            if err.code() not in (
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                raise
            view = pb.CaseView(case_ref=case_ref)
        if (view.state in RESTING_STATES and view.state != after) or loop.time() > deadline:
            return view
        await asyncio.sleep(0.25)


# -- disclosures: a holder tells a partner without being asked ---------------------------------


@dataclass(frozen=True)
class DemoDisclosure:
    """One demo disclosure: who tells whom, of what kind, and whether the recipient confirms."""

    disclosure_id: str
    holder: str
    recipient: str
    kind: pb.DisclosureKind.ValueType
    acknowledge: bool
    story: str


DEMO_DISCLOSURES = (
    DemoDisclosure(
        "demo-oe-1", "northshire-police", "oakfield-primary",
        pb.DISCLOSURE_KIND_OPERATION_ENCOMPASS, False,
        "Operation Encompass: police tell the school, due before the next school day",
    ),
    DemoDisclosure(
        "demo-concern-1", "riverside-gp", "northshire-csc", pb.DISCLOSURE_KIND_CONCERN, True,
        "a GP's RED concern raised with children's social care: delivered and acknowledged",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class DemoDisclosureResult:
    """A demo disclosure as the dev stack reports it."""

    disclosure: DemoDisclosure
    case_ref: str
    created: bool
    view: pb.CaseView


def demo_disclosure(demo: DemoDisclosure) -> pb.Disclosure:
    """The Disclosure the holder's system submits for ``demo`` (a fictional child)."""
    child = _child("consent-given")
    disclosure = pb.Disclosure(
        disclosure_id=demo.disclosure_id,
        discloser=pb.Practitioner(
            user_id=f"{demo.holder}-practitioner-1", role="safeguarding_officer",
            training_valid_until=_timestamp(dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
        ),
        kind=demo.kind,
        subjects=[pb.Subject(role=pb.SUBJECT_ROLE_CHILD, given_name=child.given_name,
                             family_name=child.family_name, date_of_birth=child.date_of_birth,
                             nhs_number=child.nhs_number)],
        recipient_agency_ids=[demo.recipient],
        agency_reference=demo.disclosure_id.upper(),
    )  # fmt: skip
    disclosure.consent.without_consent.CopyFrom(
        pb.WithoutConsent(
            consent_state=pb.CONSENT_STATUS_NOT_SOUGHT,
            lawful_basis="DPA 2018 Sch 1 para 18 (safeguarding of children)",
            reason_code=pb.OVERRIDE_REASON_SAFEGUARDING_AT_RISK,
            reason="telling the parents first could put the child at risk",
        )
    )
    if demo.kind == pb.DISCLOSURE_KIND_OPERATION_ENCOMPASS:
        disclosure.caveats.extend(
            [pb.HANDLING_CAVEAT_DO_NOT_CONTACT_PARENTS_OR_CARERS, pb.HANDLING_CAVEAT_DSL_ONLY]
        )
        disclosure.operation_encompass.CopyFrom(
            pb.OperationEncompassNotification(
                police_reference="NP-DEMO-0001",
                incident_at=_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)),
                incident_place="family home",
                child_present=pb.CHILD_PRESENCE_PRESENT,
                voice_of_the_child="fictional: said they were scared and hid upstairs",
                circumstances="fictional: verbal argument between adults; officers attended",
            )
        )
    else:
        disclosure.caveats.append(pb.HANDLING_CAVEAT_DO_NOT_TELL_THE_CHILD)
        disclosure.categories.append(pb.INFORMATION_CATEGORY_HEALTH_SUMMARY)
        disclosure.concern.CopyFrom(
            pb.ConcernRaised(
                urgency=pb.URGENCY_RED,
                concern="fictional: unexplained bruising seen at a routine appointment",
                action_taken="fictional: examined, recorded and photographed with consent",
            )
        )
    return disclosure


async def run_demo_disclosures(
    gateway: str, agency_tls: dict[str, TlsFiles], wait: float = 60.0
) -> list[DemoDisclosureResult]:
    """Submit every demo disclosure as its holder; the recipients that the demo has confirm
    receipt once it is delivered."""
    return list(
        await asyncio.gather(
            *(_run_disclosure(gateway, agency_tls, demo, wait) for demo in DEMO_DISCLOSURES)
        )
    )


async def _run_disclosure(
    gateway: str, agency_tls: dict[str, TlsFiles], demo: DemoDisclosure, wait: float
) -> DemoDisclosureResult:
    async with (
        CaseClient.connect(gateway, agency_tls[demo.holder]) as holder,
        CaseClient.connect(gateway, agency_tls[demo.recipient]) as recipient,
    ):
        submitted = await holder.submit_disclosure(demo_disclosure(demo))
        ref = submitted.case_ref
        view = await _until_resting(holder, ref, wait)
        if demo.acknowledge and view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
            try:
                await recipient.acknowledge(
                    ref,
                    pb.Acknowledgement(
                        practitioner=pb.Practitioner(
                            user_id=f"{demo.recipient}-duty-1", role="social_worker"
                        ),
                        status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
                        use="strategy discussion opened",
                    ),
                )
            except grpc.aio.AioRpcError as err:
                # A second start finds the disclosure where the first left it.
                if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
            view = await _until_resting(holder, ref, wait, after=view.state)
        return DemoDisclosureResult(demo, ref, submitted.created, await holder.get(ref))
