"""What the bench submits and decides: fictional sandbox children, one request per case.

Common path: the school holds consent that covers the request (demo-1's shape). Override path:
consent refused at social care, the holder proposes an override and an approver approves it
(demo-3's shape). Requesters are the recipients, so their sandbox stores the delivery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from agency_adapters.sandbox_agency.seed import DEMO_CHILDREN
from protos.sharing.v1 import case_pb2 as pb
from workflows.ids import case_ref_for


@dataclass(frozen=True)
class Route:
    """One route through a case: who asks whom, about which child, at what urgency."""

    name: str
    requester: str
    holder: str
    child_key: str
    urgency: pb.Urgency.ValueType
    category: pb.InformationCategory.ValueType


COMMON = Route(
    "common", "northshire-csc", "oakfield-primary", "consent-given",
    pb.URGENCY_AMBER, pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
)  # fmt: skip
OVERRIDE = Route(
    "override", "northshire-police", "northshire-csc", "consent-refused",
    pb.URGENCY_RED, pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT,
)  # fmt: skip


def _timestamp(at: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def request(path: Route, request_id: str) -> pb.SharingRequest:
    """The SharingRequest for one bench case on ``path``."""
    child = next(c for c in DEMO_CHILDREN if c.key == path.child_key)
    return pb.SharingRequest(
        request_id=request_id,
        requester=pb.Practitioner(
            user_id=f"{path.requester}-bench-1",
            role="designated_safeguarding_lead",
            training_valid_until=_timestamp(dt.datetime(2030, 12, 31, tzinfo=dt.UTC)),
        ),
        holding_agency_ids=[path.holder],
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
        purpose=pb.PURPOSE_SAFEGUARDING,
        lawful_basis="Children Act 2004 s10 and s11; UK GDPR Art 6(1)(e)",
        categories=[pb.CategoryRequest(category=path.category, necessity="assess needs")],
        urgency=path.urgency,
        agency_reference=f"BENCH-{request_id}",
        family_aware=True,
    )


def case_ref(path: Route, request_id: str) -> str:
    """The case reference the gateway gives ``request_id`` (derived, so known in advance)."""
    return case_ref_for(path.requester, request_id)


def _actor(agency_id: str, user: str, role: str) -> pb.Actor:
    return pb.Actor(practitioner=pb.Practitioner(user_id=f"{agency_id}-{user}", role=role))


def override_proposal(path: Route) -> pb.OverrideProposal:
    """The holder's override proposal (demo-3's justification)."""
    return pb.OverrideProposal(
        actor=_actor(path.holder, "bench-1", "social_worker"),
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="police report a risk of significant harm to the child",
        legal_basis="Children Act 1989 s47; DPA 2018 Sch 1 para 18",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="only social care involvement, for the strategy meeting",
        minimum_data_set=[path.category],
        alternatives_considered="asking the father again: refused; risk of delay",
        advice_sought="designated safeguarding lead",
        subject_will_be_told=False,
        not_telling_reason="telling the family now may increase the risk to the child",
    )


def override_approval(path: Route) -> pb.OverrideDecision:
    """A different person, one of the approvers the registry names for the holder, approves."""
    return pb.OverrideDecision(
        actor=pb.Actor(
            practitioner=pb.Practitioner(user_id="dsl-1", role="designated_safeguarding_lead")
        ),
        approve=True,
        reason="s47 threshold met; sharing is necessary and proportionate",
    )


def urgency_change(path: Route) -> pb.UrgencyChange:
    """The requester re-rates its request RED (the bench's decision RPC)."""
    return pb.UrgencyChange(
        actor=_actor(path.requester, "bench-1", "designated_safeguarding_lead"),
        urgency=pb.URGENCY_RED,
        reason="new information raises the risk",
    )


def acknowledgement(path: Route) -> pb.Acknowledgement:
    """The recipient's acknowledgement."""
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(
            user_id=f"{path.requester}-bench-1", role="designated_safeguarding_lead"
        ),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
        use="added to the child's assessment",
    )
