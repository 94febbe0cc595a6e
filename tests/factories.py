"""Builders for valid messages, so each test states only what it varies."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from protos.sharing.v1 import case_pb2 as pb


def timestamp(at: dt.datetime) -> Timestamp:
    """A protobuf Timestamp for ``at``."""
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def sharing_request(
    *,
    requesting_agency_id: str = "northshire-csc",
    holding_agency_id: str = "oakfield-primary",
    holders: tuple[str, ...] = (),
    urgency: pb.Urgency.ValueType = pb.URGENCY_AMBER,
    categories: tuple[pb.InformationCategory.ValueType, ...] = (
        pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
    ),
) -> pb.SharingRequest:
    """A complete, valid request about the fictional 'consent-given' child."""
    return pb.SharingRequest(
        request_id=f"test-{uuid.uuid4()}",
        requester=pb.Practitioner(
            user_id="sw-0042",
            role="social_worker",
            training_valid_until=timestamp(dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
        ),
        holding_agency_ids=list(holders) or [holding_agency_id],
        subjects=[
            pb.Subject(
                role=pb.SUBJECT_ROLE_CHILD,
                given_name="Amara",
                family_name="Okafor-Test",
                date_of_birth="2016-03-14",
                nhs_number="9990000018",
            )
        ],
        purpose=pb.PURPOSE_SAFEGUARDING,
        lawful_basis="Children Act 1989 s47",
        categories=[
            pb.CategoryRequest(category=c, necessity="to assess risk to the child")
            for c in categories
        ],
        urgency=urgency,
        agency_reference="CSC-TEST-1",
        family_aware=True,
        requesting_agency_id=requesting_agency_id,
    )


def given_consent(**overrides: object) -> pb.ConsentRecord:
    """A consent record that covers any safeguarding request until 2030."""
    consent = pb.ConsentRecord(
        status=pb.CONSENT_STATUS_GIVEN,
        given_by_relationship="mother",
        parental_responsibility=True,
        purposes=[pb.PURPOSE_SAFEGUARDING, pb.PURPOSE_EDUCATION],
        categories=list(pb.InformationCategory.values())[1:],
        valid_from=timestamp(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
        valid_until=timestamp(dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
        verification="signed consent form",
    )
    for name, value in overrides.items():
        if isinstance(value, list):
            del getattr(consent, name)[:]
            getattr(consent, name).extend(value)
        else:
            setattr(consent, name, value)
    return consent
