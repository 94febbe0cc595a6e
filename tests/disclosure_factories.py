"""Valid disclosures of each kind, about the sandbox's fictional 'consent-given' child."""

from __future__ import annotations

import datetime as dt
import uuid

from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent, timestamp

POLICE, SCHOOL, CSC, GP = "northshire-police", "oakfield-primary", "northshire-csc", "riverside-gp"
CHILD = pb.Subject(role=pb.SUBJECT_ROLE_CHILD, given_name="Amara", family_name="Okafor-Test",
                   date_of_birth="2016-03-14", nhs_number="9990000018")  # fmt: skip
WITHOUT_CONSENT = pb.DisclosureConsent(
    without_consent=pb.WithoutConsent(
        consent_state=pb.CONSENT_STATUS_NOT_SOUGHT,
        lawful_basis="Victims and Prisoners Act 2024 (Operation Encompass); DPA 2018 Sch 1 para 18",
        reason_code=pb.OVERRIDE_REASON_SAFEGUARDING_AT_RISK,
        reason="telling the parents first could put the child at risk",
    )
)


def _discloser(user_id: str, role: str) -> pb.Practitioner:
    return pb.Practitioner(
        user_id=user_id, role=role,
        training_valid_until=timestamp(dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
    )  # fmt: skip


def encompass(
    *, recipients: tuple[str, ...] = (SCHOOL,), no_school_place: bool = False
) -> pb.Disclosure:
    """A police notification of a domestic-abuse incident to the child's school."""
    return pb.Disclosure(
        disclosure_id=f"oe-{uuid.uuid4()}",
        discloser=_discloser("pc-0117", "encompass_officer"),
        kind=pb.DISCLOSURE_KIND_OPERATION_ENCOMPASS,
        subjects=[CHILD],
        recipient_agency_ids=list(recipients),
        no_school_place=no_school_place,
        caveats=[pb.HANDLING_CAVEAT_DO_NOT_CONTACT_PARENTS_OR_CARERS, pb.HANDLING_CAVEAT_DSL_ONLY],
        consent=WITHOUT_CONSENT,
        operation_encompass=pb.OperationEncompassNotification(
            police_reference="NP-2026-000123",
            incident_at=timestamp(dt.datetime(2026, 12, 4, 21, 10, tzinfo=dt.UTC)),
            incident_place="family home",
            child_present=pb.CHILD_PRESENCE_PRESENT,
            voice_of_the_child="fictional: the child said they hid upstairs",
            circumstances="fictional: verbal argument, officers attended",
        ),
        agency_reference="NP-OE-1",
        holding_agency_id=POLICE,
    )


def concern(
    urgency: pb.Urgency.ValueType = pb.URGENCY_AMBER, *, consent: bool = False
) -> pb.Disclosure:
    """A GP's concern raised with children's social care."""
    disclosure = pb.Disclosure(
        disclosure_id=f"concern-{uuid.uuid4()}",
        discloser=_discloser("gp-0007", "gp"),
        kind=pb.DISCLOSURE_KIND_CONCERN,
        subjects=[CHILD],
        recipient_agency_ids=[CSC],
        categories=[pb.INFORMATION_CATEGORY_HEALTH_SUMMARY],
        caveats=[pb.HANDLING_CAVEAT_DO_NOT_TELL_THE_CHILD],
        concern=pb.ConcernRaised(
            urgency=urgency,
            concern="fictional: repeated unexplained bruising",
            action_taken="fictional: examined and recorded",
        ),
        agency_reference="GP-C-1",
        holding_agency_id=GP,
    )
    if consent:
        disclosure.consent.consent.CopyFrom(given_consent())
    else:
        disclosure.consent.CopyFrom(WITHOUT_CONSENT)
    return disclosure


def file_transfer(new_school: str = "elmbrook-secondary") -> pb.Disclosure:
    """A child protection file passed from the school to the child's new school."""
    return pb.Disclosure(
        disclosure_id=f"cp-{uuid.uuid4()}",
        discloser=_discloser("dsl-0001", "designated_safeguarding_lead"),
        kind=pb.DISCLOSURE_KIND_CHILD_PROTECTION_FILE_TRANSFER,
        subjects=[CHILD],
        recipient_agency_ids=[new_school],
        caveats=[pb.HANDLING_CAVEAT_DSL_ONLY],
        consent=WITHOUT_CONSENT,
        child_protection_file=pb.ChildProtectionFileTransfer(
            file_reference="CPF-77",
            starts_at_new_school_on="2027-01-05",
            contents_summary="fictional: CP plan, chronology, minutes",
        ),
        agency_reference="CPF-77",
        holding_agency_id=SCHOOL,
    )
