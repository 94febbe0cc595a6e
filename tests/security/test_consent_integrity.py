"""A holder's "consent given" never overrides the holder's own system.

Against the real sandbox agency behind the real adapter worker (time-skipping server): when
the holder's system says REFUSED, a practitioner recording consent GIVEN is refused and nothing
is delivered (only an override or a decline is open); when the system has no consent recorded,
a "given" is looked up afresh and refused with the system's reasons; once the system itself
records the consent, the same decision goes through (the positive control).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.eventually import eventually
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.workflows.harness import CSC, SCHOOL, actor, running_case
from tests.workflows.real_agencies import RealCase, case_at_real_agencies
from workflows.holder_exchange import HolderExchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECEPTIONIST = actor(SCHOOL, "reception-1", "receptionist")


async def refusal_of(call: object) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call  # type: ignore[misc]
    assert isinstance(failure.value.cause, ApplicationError)
    return failure.value.cause


async def awaiting_decision(case: RealCase) -> pb.HolderRecord:
    return await eventually(
        lambda: case.exchange().query(HolderExchange.holder_record),
        lambda record: record.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION,
        what="awaited a consent decision",
        retry_on=(Exception,),  # not started yet
    )


async def test_consent_given_over_the_systems_refusal_is_refused_and_nothing_is_delivered(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    async with case_at_real_agencies(
        time_skipping, pki, tmp_path, subject="consent-refused"
    ) as case:
        before = await awaiting_decision(case)
        assert before.consent.status == pb.CONSENT_STATUS_REFUSED
        refused = await refusal_of(
            case.exchange().execute_update(
                HolderExchange.record_consent,
                pb.ConsentDecision(actor=RECEPTIONIST, consent=given_consent()),
            )
        )
        assert refused.type == "NotPermitted"
        assert "override" in refused.message
        # Not "not sought" either: consent was sought, and refused.
        not_sought = await refusal_of(
            case.exchange().execute_update(
                HolderExchange.record_consent,
                pb.ConsentDecision(
                    actor=RECEPTIONIST,
                    not_sought=pb.NotSought(reason=pb.NOT_SOUGHT_REASON_UNDUE_DELAY,
                                            explanation="no time"),
                ),
            )
        )  # fmt: skip
        assert not_sought.type == "NotPermitted"
        after = await case.exchange().query(HolderExchange.holder_record)
        assert after.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
        assert after.consent.status == pb.CONSENT_STATUS_REFUSED
        assert case.agencies[CSC].store.deliveries() == []


async def test_consent_given_that_the_system_does_not_hold_is_refused_with_its_reasons(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    async with case_at_real_agencies(
        time_skipping, pki, tmp_path, subject="consent-expired"
    ) as case:
        await awaiting_decision(case)
        refused = await refusal_of(
            case.exchange().execute_update(
                HolderExchange.record_consent,
                pb.ConsentDecision(actor=RECEPTIONIST, consent=given_consent()),
            )
        )
        assert refused.type == "NotPermitted"
        assert "consent_not_confirmed" in refused.message
        assert "consent_expired" in refused.message
        after = await case.exchange().query(HolderExchange.holder_record)
        assert after.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
        assert "ConsentNotConfirmed" in [e.event for e in after.entries]
        assert case.agencies[CSC].store.deliveries() == []


async def test_consent_the_system_confirms_goes_on_to_share(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(
        consent={SCHOOL: pb.ConsentRecord(status=pb.CONSENT_STATUS_NOT_RECORDED)}
    )
    async with running_case(time_skipping, agencies, "consent-confirmed-by-system") as case:
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        refused = await refusal_of(
            case.exchange().execute_update(
                HolderExchange.record_consent,
                pb.ConsentDecision(actor=RECEPTIONIST, consent=given_consent()),
            )
        )
        assert "consent_not_recorded" in refused.message
        agencies.consent[SCHOOL] = given_consent()  # the family's consent is now on the system
        await case.exchange().execute_update(
            HolderExchange.record_consent,
            pb.ConsentDecision(actor=RECEPTIONIST, consent=given_consent()),
        )
        record = await case.holder_state()
        assert record.consent.status == pb.CONSENT_STATUS_GIVEN
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await case.exchange().execute_update(
            HolderExchange.acknowledge,
            pb.Acknowledgement(practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
                               status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED, agency_id=CSC),
        )  # fmt: skip
        final = await case.result()
    assert final.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert len(agencies.deliveries) == 1
