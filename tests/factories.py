"""Builders for valid messages, so each test states only what it varies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from protos.sharing.v1 import case_pb2 as pb


class ChildLike(Protocol):
    """A child as the sandbox agency holds one (``agency_adapters.sandbox_agency.rows.Child``)."""

    @property
    def given_name(self) -> str: ...
    @property
    def family_name(self) -> str: ...
    @property
    def date_of_birth(self) -> str: ...
    @property
    def nhs_number(self) -> str: ...


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
    child: ChildLike | None = None,
    necessity: str = "to assess risk to the child",
    training_until: dt.datetime = dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
) -> pb.SharingRequest:
    """A complete, valid request: by default about the fictional 'consent-given' child
    (Amara Okafor-Test), or about ``child`` (a sandbox agency's child, matched on name, date
    of birth and NHS number). An empty ``requesting_agency_id`` leaves it to the gateway,
    which names the caller from its certificate."""
    subject = pb.Subject(
        role=pb.SUBJECT_ROLE_CHILD,
        given_name="Amara",
        family_name="Okafor-Test",
        date_of_birth="2016-03-14",
        nhs_number="9990000018",
    )
    if child is not None:
        subject.given_name, subject.family_name = child.given_name, child.family_name
        subject.date_of_birth, subject.nhs_number = child.date_of_birth, child.nhs_number
    return pb.SharingRequest(
        request_id=f"test-{uuid.uuid4()}",
        requester=pb.Practitioner(
            user_id="sw-0042",
            role="social_worker",
            training_valid_until=timestamp(training_until),
        ),
        holding_agency_ids=list(holders) or [holding_agency_id],
        subjects=[subject],
        purpose=pb.PURPOSE_SAFEGUARDING,
        lawful_basis="Children Act 1989 s47",
        categories=[pb.CategoryRequest(category=c, necessity=necessity) for c in categories],
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
