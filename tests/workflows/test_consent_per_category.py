"""Consent per category, against real sandbox agencies on a real server: what the consent on
record covers is delivered at once on the consent basis; the exchange waits on the holder only
for the rest; a second delivery carries what the approved override adds; every item reaches
the recipient's store with its basis, and the decision record shows each category asked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.workflows.harness import CSC, SCHOOL, actor
from tests.workflows.real_agencies import case_at_real_agencies
from workflows.holder_exchange import HolderExchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATTENDANCE = pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE
WELFARE = pb.INFORMATION_CATEGORY_WELFARE_CONCERNS
IDENTITY = pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT
TEACHER = actor(SCHOOL, "teacher-1", "teacher")
DSL = actor(SCHOOL, "dsl-1", "designated_safeguarding_lead")


def identity_override() -> pb.OverrideProposal:
    return pb.OverrideProposal(
        actor=TEACHER,
        # The record gives consent for two categories and withholds it for this one.
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="the child may be moved out of the area",
        legal_basis="Children Act 1989 s47",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="only the current address is needed",
        minimum_data_set=[IDENTITY],
        alternatives_considered="asking the father: not reachable",
        advice_sought="designated safeguarding lead",
        subject_will_be_told=False,
        not_telling_reason="telling the father may lead him to move the child",
    )


async def holder_at(case: object, state: pb.CaseState.ValueType) -> pb.HolderRecord:
    record = pb.HolderRecord()
    for _ in range(200):
        try:
            record = await case.exchange().query(HolderExchange.holder_record)  # type: ignore[attr-defined]
        except Exception:  # not started yet
            await asyncio.sleep(0.05)
            continue
        if record.state == state:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {pb.CaseState.Name(state)}: {record.entries}")


async def test_consent_covering_two_of_three_categories_shares_them_at_once(
    dev_server: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    async with case_at_real_agencies(
        dev_server,
        pki,
        tmp_path,
        subject="consent-two-categories",
        categories=(ATTENDANCE, WELFARE, IDENTITY),
    ) as case:
        # The two covered categories are delivered on consent without anyone acting; the
        # exchange then waits on the holder for the third.
        waiting = await holder_at(case, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        assert waiting.waiting_on == pb.WAITING_ON_HOLDER
        recipient = case.agencies[CSC].store
        first = f"{case.ref}.{SCHOOL}.1"
        items = recipient.delivered_items(first)
        assert items and {i.category for i in items} == {ATTENDANCE, WELFARE}
        bases = recipient.delivered_bases(first)
        assert set(bases) == {i.item_id for i in items}
        assert {(b.kind, b.consent_record_id, b.consent_version) for b in bases.values()} == {
            (pb.BASIS_KIND_CONSENT, "consent-consent-two-categories", 1)
        }
        by_category = {c.category: c for c in waiting.categories}
        assert by_category[ATTENDANCE].shared and by_category[WELFARE].shared
        assert not by_category[IDENTITY].shared and not by_category[IDENTITY].not_shared_reason

        # The holder decides on the rest: an override with its own minimum data set.
        await case.exchange().execute_update(HolderExchange.propose_override, identity_override())
        await case.exchange().execute_update(
            HolderExchange.decide_override,
            pb.OverrideDecision(actor=DSL, approve=True, reason="address needed for s47"),
        )
        await holder_at(case, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        second = f"{case.ref}.{SCHOOL}.2"
        later = recipient.delivered_items(second)
        assert later and {i.category for i in later} == {IDENTITY}
        assert {b.kind for b in recipient.delivered_bases(second).values()} == {
            pb.BASIS_KIND_OVERRIDE
        }
        await case.exchange().execute_update(
            HolderExchange.acknowledge,
            pb.Acknowledgement(
                agency_id=CSC,
                practitioner=pb.Practitioner(user_id=case.request.requester.user_id,
                                             role="social_worker"),
                status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
            ),
        )  # fmt: skip
        record = await case.result("consent-two-of-three")
    [holder] = record.holders
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    decisions = {c.category: c for c in holder.categories}
    assert set(decisions) == {ATTENDANCE, WELFARE, IDENTITY}  # every category asked
    for category in (ATTENDANCE, WELFARE):
        assert decisions[category].shared and decisions[category].delivery_id == first
        assert decisions[category].basis.kind == pb.BASIS_KIND_CONSENT
        assert decisions[category].basis.consent_record_id == "consent-consent-two-categories"
    assert decisions[IDENTITY].shared and decisions[IDENTITY].delivery_id == second
    assert decisions[IDENTITY].basis.kind == pb.BASIS_KIND_OVERRIDE
    assert decisions[IDENTITY].basis.override_reason == pb.OVERRIDE_REASON_SIGNIFICANT_HARM
    assert all(c.HasField("shared_at") for c in holder.categories)


async def test_declining_the_rest_keeps_what_consent_shared(
    dev_server: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    async with case_at_real_agencies(
        dev_server,
        pki,
        tmp_path,
        subject="consent-two-categories",
        categories=(ATTENDANCE, WELFARE, IDENTITY),
    ) as case:
        await holder_at(case, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        await case.exchange().execute_update(
            HolderExchange.decline_to_share,
            pb.DeclineDecision(actor=TEACHER, reasons=["not necessary"], explanation="no"),
        )
        held = await holder_at(case, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        decisions = {c.category: c for c in held.categories}
        assert decisions[IDENTITY].not_shared_reason == "declined"
        assert not decisions[IDENTITY].shared
        assert decisions[ATTENDANCE].shared
        await case.handle.terminate("test over")
