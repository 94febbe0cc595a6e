"""The seeded mix of cases a chaos run submits, and the outcome each must reach.

Subjects are the sandbox's fictional children (agency_adapters/sandbox_agency/seed.py): the
"consent-given" child's consent covers every purpose, recipient and category; the
"consent-refused" and "consent-partial" children's do not.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from agency_adapters.sandbox_agency.seed import DEMO_CHILDREN, held_categories_for
from protos.sharing.v1 import case_pb2 as pb
from tests.disclosure_factories import concern, encompass


class Scenario(enum.Enum):
    """What the practitioners of a case do, and so how it must end."""

    CONSENT = "consent"
    """Consent covers: delivered, acknowledged."""
    OVERRIDE = "override"
    """Consent refused: override proposed, approved by a different approver, delivered."""
    OVERRIDE_REJECTED = "override_rejected"
    """Consent refused: override proposed and rejected: nothing shared."""
    DECLINED = "declined"
    """Consent does not cover: the holder declines, with reasons."""
    WITHDRAWN = "withdrawn"
    """Consent refused: the requester withdraws while the holder decides."""
    RESUBMITTED = "resubmitted"
    """Consent covers; the request is submitted again with the same request id."""
    DUPLICATE_ACK = "duplicate_ack"
    """Consent covers; the recipient acknowledges twice."""
    WITHDRAWN_RACING = "withdrawn_racing"
    """Consent covers: the requester withdraws at once, racing the delivery. Either outcome is
    right (WITHDRAWN, or SHARED_WITH_CONSENT if the delivery landed) as long as the record
    and what the recipient holds agree."""
    DISCLOSED = "disclosed"
    """A disclosure: the police tell the child's school of a domestic-abuse incident (Operation
    Encompass, without consent on its statutory basis); the school acknowledges."""
    DISCLOSURE_REJECTED = "disclosure_rejected"
    """A disclosure: a GP raises an AMBER concern with children's social care without consent;
    the GP's approver rejects it: nothing is delivered."""
    RED_UNJUSTIFIED = "red_unjustified"
    """Consent refused, RED: the holder shares first and leaves the justification owed until
    its deadline has passed and the whole ladder has fired (seconds under the chaos registry's
    RED timescales), then justifies; a different approver approves."""


WEIGHTS = {
    Scenario.CONSENT: 45,
    Scenario.OVERRIDE: 14,
    Scenario.OVERRIDE_REJECTED: 5,
    Scenario.DECLINED: 10,
    Scenario.WITHDRAWN: 8,
    Scenario.RESUBMITTED: 10,
    Scenario.DUPLICATE_ACK: 8,
    Scenario.RED_UNJUSTIFIED: 5,
    Scenario.WITHDRAWN_RACING: 5,
    Scenario.DISCLOSED: 6,
    Scenario.DISCLOSURE_REJECTED: 3,
}

DISCLOSURES = {Scenario.DISCLOSED, Scenario.DISCLOSURE_REJECTED}
"""Scenarios a holder opens without a request (``CaseSpec.holder`` tells ``requester``)."""
# Who discloses to whom (the committed registry's police, school, GP and social care).
DISCLOSURE_PARTIES = {
    Scenario.DISCLOSED: ("northshire-police", "oakfield-primary"),
    Scenario.DISCLOSURE_REJECTED: ("riverside-gp", "northshire-csc"),
}

EXPECTED_OUTCOME = {
    Scenario.CONSENT: pb.OUTCOME_SHARED_WITH_CONSENT,
    Scenario.OVERRIDE: pb.OUTCOME_SHARED_UNDER_OVERRIDE,
    Scenario.OVERRIDE_REJECTED: pb.OUTCOME_NOT_SHARED,
    Scenario.DECLINED: pb.OUTCOME_NOT_SHARED,
    Scenario.WITHDRAWN: pb.OUTCOME_WITHDRAWN,
    Scenario.RESUBMITTED: pb.OUTCOME_SHARED_WITH_CONSENT,
    Scenario.DUPLICATE_ACK: pb.OUTCOME_SHARED_WITH_CONSENT,
    Scenario.RED_UNJUSTIFIED: pb.OUTCOME_SHARED_UNDER_OVERRIDE,
    Scenario.DISCLOSED: pb.OUTCOME_SHARED_UNDER_OVERRIDE,  # shared on a basis other than consent
    Scenario.DISCLOSURE_REJECTED: pb.OUTCOME_NOT_SHARED,
}

RACING_OUTCOMES = {pb.OUTCOME_WITHDRAWN, pb.OUTCOME_SHARED_WITH_CONSENT}
"""A withdrawal racing a delivery: either, as long as the record says what the recipient holds."""

SHARES = {
    Scenario.CONSENT,
    Scenario.OVERRIDE,
    Scenario.RESUBMITTED,
    Scenario.DUPLICATE_ACK,
    Scenario.RED_UNJUSTIFIED,
    Scenario.DISCLOSED,
}
"""The scenarios that must deliver exactly once; every other must deliver nothing."""


@dataclass(frozen=True)
class CaseSpec:
    """One case of the run."""

    request_id: str
    requester: str
    """For a disclosure: its recipient."""
    holder: str
    child_key: str
    scenario: Scenario
    categories: tuple[pb.InformationCategory.ValueType, ...]
    urgency: pb.Urgency.ValueType

    @property
    def minimum_data_set(self) -> tuple[pb.InformationCategory.ValueType, ...]:
        """What an override proposal approves: the first category asked for."""
        return self.categories[:1]


def plan_cases(seed: int, count: int, agencies: list[str], run_id: str) -> list[CaseSpec]:
    """``count`` cases drawn from ``WEIGHTS`` with ``random.Random(seed)``.

    Args:
        seed: the run's seed; the same seed plans the same cases.
        count: how many cases.
        agencies: the partnership's agencies (requesters and holders).
        run_id: a tag in every request id, so runs on one server never collide.
    """
    rng = random.Random(seed)
    scenarios = list(WEIGHTS)
    weights = [WEIGHTS[s] for s in scenarios]
    specs = []
    for index in range(count):
        scenario = rng.choices(scenarios, weights)[0]
        requester, holder = rng.sample(agencies, 2)
        if scenario in DISCLOSURES:
            holder, requester = DISCLOSURE_PARTIES[scenario]
        held = list(held_categories_for(holder))
        categories = tuple(sorted(rng.sample(held, rng.randint(1, min(2, len(held))))))
        if scenario is Scenario.WITHDRAWN_RACING or (
            scenario in SHARES and scenario not in {Scenario.OVERRIDE, Scenario.RED_UNJUSTIFIED}
        ):
            child = "consent-given"
        elif scenario is Scenario.DECLINED:
            child = rng.choice(["consent-refused", "consent-partial", "consent-not-recorded"])
        else:
            child = "consent-refused"
        specs.append(
            CaseSpec(
                request_id=f"chaos-{run_id}-{index:05d}",
                requester=requester,
                holder=holder,
                child_key=child,
                scenario=scenario,
                categories=categories,
                urgency=pb.URGENCY_RED
                if scenario in (Scenario.RED_UNJUSTIFIED, Scenario.DISCLOSED)
                else pb.URGENCY_AMBER
                if scenario is Scenario.DISCLOSURE_REJECTED
                else rng.choice([pb.URGENCY_AMBER, pb.URGENCY_GREEN]),
            )
        )
    return specs


def _timestamp(at: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def sharing_request(spec: CaseSpec) -> pb.SharingRequest:
    """The request the requesting agency's system submits for ``spec``."""
    child = next(c for c in DEMO_CHILDREN if c.key == spec.child_key)
    return pb.SharingRequest(
        request_id=spec.request_id,
        requester=pb.Practitioner(
            user_id=f"{spec.requester}-requester",
            role="designated_safeguarding_lead",
            training_valid_until=_timestamp(dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
        ),
        holding_agency_ids=[spec.holder],
        subjects=[
            pb.Subject(
                role=pb.SUBJECT_ROLE_CHILD,
                given_name=child.given_name,
                family_name=child.family_name,
                date_of_birth=child.date_of_birth,
                nhs_number=child.nhs_number,
            )
        ],
        purpose=pb.PURPOSE_SAFEGUARDING,
        lawful_basis="Children Act 2004 s11",
        categories=[
            pb.CategoryRequest(category=c, necessity="needed for the assessment")
            for c in spec.categories
        ],
        urgency=spec.urgency,
        agency_reference=f"REF-{spec.request_id}",
        family_aware=True,
    )


def disclosure(spec: CaseSpec) -> pb.Disclosure:
    """The disclosure the holder's system opens for ``spec``, idempotent on its request id."""
    if spec.scenario is Scenario.DISCLOSED:
        found = encompass(recipients=(spec.requester,))
    else:
        found = concern(pb.URGENCY_AMBER)
        del found.recipient_agency_ids[:]
        found.recipient_agency_ids.append(spec.requester)
    found.disclosure_id = spec.request_id
    found.holding_agency_id = spec.holder
    found.agency_reference = f"REF-{spec.request_id}"
    return found


def disclosure_rejection(spec: CaseSpec) -> pb.DisclosureApproval:
    """The holder's approver rejects a disclosure without consent."""
    return pb.DisclosureApproval(
        actor=pb.Actor(
            practitioner=pb.Practitioner(user_id="dsl-1", role="designated_safeguarding_lead")
        ),
        approve=False,
        reason="threshold not met",
    )


def disclosure_acknowledgement(spec: CaseSpec) -> pb.Acknowledgement:
    """The recipient's designated safeguarding lead acknowledges the disclosure."""
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(
            user_id=f"{spec.requester}-dsl", role="designated_safeguarding_lead"
        ),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
    )


def actor(agency_id: str, user: str, role: str) -> pb.Actor:
    """A practitioner of ``agency_id`` (the gateway sets the agency from the certificate)."""
    return pb.Actor(practitioner=pb.Practitioner(user_id=f"{agency_id}-{user}", role=role))


def override_proposal(spec: CaseSpec) -> pb.OverrideProposal:
    """A complete override justification, proposed by the holder's social worker."""
    return pb.OverrideProposal(
        actor=actor(spec.holder, "proposer", "social_worker"),
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="risk of significant harm",
        legal_basis="Children Act 1989 s47",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="only what the strategy meeting needs",
        minimum_data_set=list(spec.minimum_data_set),
        alternatives_considered="asking again: refused",
        advice_sought="designated safeguarding lead",
        subject_will_be_told=False,
        not_telling_reason="telling now may increase the risk",
    )


def override_decision(spec: CaseSpec, approve: bool) -> pb.OverrideDecision:
    """The approver's decision: a different person from the proposer, in an approver role."""
    return pb.OverrideDecision(
        actor=pb.Actor(
            practitioner=pb.Practitioner(user_id="dsl-1", role="designated_safeguarding_lead")
        ),  # named in the registry
        approve=approve,
        reason="necessary and proportionate" if approve else "threshold not met",
    )


def share_first(spec: CaseSpec) -> pb.ShareFirstDecision:
    """RED: the holder shares the minimum data set now; the justification is owed."""
    return pb.ShareFirstDecision(
        actor=actor(spec.holder, "proposer", "social_worker"),
        harm_statement="immediate risk of significant harm",
        minimum_data_set=list(spec.minimum_data_set),
    )


def decline(spec: CaseSpec) -> pb.DeclineDecision:
    """The holder's decision not to share."""
    return pb.DeclineDecision(
        actor=actor(spec.holder, "practitioner", "teacher"),
        reasons=["consent_not_covering"],
        explanation="the concern can be met another way",
    )


def withdrawal(spec: CaseSpec) -> pb.RequestWithdrawal:
    """The requester's withdrawal."""
    return pb.RequestWithdrawal(
        actor=actor(spec.requester, "requester", "designated_safeguarding_lead"),
        reason="concern resolved",
    )


def acknowledgement(spec: CaseSpec) -> pb.Acknowledgement:
    """The recipient's acknowledgement."""
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(
            user_id=f"{spec.requester}-requester", role="designated_safeguarding_lead"
        ),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
        use="added to the assessment",
    )
