"""Practitioners are compared as one canonical spelling: nobody approves their own override
by writing their user id differently, and only the closed list of approver roles decides.

The real SharingCase and HolderExchange on the time-skipping server, with the holder's and the
recipient's adapters faked (their answers do not matter here): the rule lives in the
exchange's validators, which every decision passes through whoever sends it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from partnership.registry_file import DEFAULT_REGISTRY_PATH, load_registry
from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.workflows.harness import GP, actor, running_case
from workflows.holder_exchange import HolderExchange

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEALTH = pb.INFORMATION_CATEGORY_HEALTH_SUMMARY
LEAD = "designated_safeguarding_lead"
FULLWIDTH = "\uff27\uff30\uff0d\uff24\uff33\uff2c"  # "GP-DSL" in fullwidth forms: NFKC folds it


def proposal(user_id: str) -> pb.OverrideProposal:
    return pb.OverrideProposal(
        actor=actor(GP, user_id, LEAD),
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="disclosed injuries",
        legal_basis="Children Act 1989 s47",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        necessity_and_proportionality="the health summary only",
        minimum_data_set=[HEALTH],
        alternatives_considered="none in time",
        advice_sought="caldicott guardian",
        subject_will_be_told=False,
        not_telling_reason="risk to the child",
    )


def decision(user_id: str, role: str = LEAD) -> pb.OverrideDecision:
    return pb.OverrideDecision(actor=actor(GP, user_id, role), approve=True, reason="threshold met")


async def refusal(call: object) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call  # type: ignore[misc]
    assert isinstance(failure.value.cause, ApplicationError)
    return failure.value.cause


async def test_the_proposer_cannot_approve_their_own_override_by_spelling(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(consent={GP: given_consent(status=pb.CONSENT_STATUS_REFUSED)})
    async with running_case(time_skipping, agencies, "practitioners-canonical",
                            holding_agency_id=GP, categories=(HEALTH,)) as case:  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        exchange = case.exchange()
        await exchange.execute_update(HolderExchange.propose_override, proposal("Gp-Dsl"))
        proposed = await case.holder_state()
        # Recorded canonical: what the approver is compared against.
        assert proposed.override_proposal.actor.practitioner.user_id == "gp-dsl"
        for spelling in ("gp-dsl", "GP-DSL", "gp-dsl ", " Gp-Dsl", FULLWIDTH):
            refused = await refusal(
                exchange.execute_update(HolderExchange.decide_override, decision(spelling))
            )
            assert (spelling, refused.type) == (spelling, "NotPermitted")
            assert "own override" in refused.message
        for role in ("receptionist", "Receptionist", "lead", "designated safeguarding"):
            refused = await refusal(
                exchange.execute_update(HolderExchange.decide_override, decision("gp-2", role))
            )
            assert (role, refused.type) == (role, "NotPermitted")
        outside = await refusal(
            exchange.execute_update(HolderExchange.decide_override, decision("gp dsl"))
        )
        assert outside.type == "Invalid"
        # A different person in an approver role, however the role is spelt, decides.
        result = await exchange.execute_update(
            HolderExchange.decide_override, decision("GP-Caldicott", "Caldicott Guardian")
        )
        decided = await case.holder_state()
        assert [e.user_id for e in result.entries if e.event == "OverrideApproved"] == [
            "gp-caldicott"
        ]
        assert decided.override_decision.actor.practitioner.user_id == "gp-caldicott"
        assert decided.override_decision.actor.practitioner.role == "caldicott_guardian"
        approved = [e for e in decided.entries if e.event == "OverrideApproved"]
        assert [e.user_id for e in approved] == ["gp-caldicott"]
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await exchange.execute_update(
            HolderExchange.acknowledge,
            pb.Acknowledgement(
                practitioner=pb.Practitioner(user_id="SW-1", role="Social Worker"),
                status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
                agency_id=case.request.requesting_agency_id,
            ),
        )
        record = await case.result()
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert record.holders[0].acknowledgement.practitioner.user_id == "sw-1"


async def test_only_an_approver_the_registry_names_decides_the_agencys_overrides(
    time_skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    # The committed registry names the GP's approvers (gp-caldicott among them, not gp-2).
    registry = DEFAULT_REGISTRY_PATH
    named = load_registry(registry).get(GP)
    assert named is not None and "gp-caldicott" in named.approvers
    agencies = FakeAgencies(consent={GP: given_consent(status=pb.CONSENT_STATUS_REFUSED)})
    async with running_case(time_skipping, agencies, "approvers-named", registry_path=registry,
                            holding_agency_id=GP, categories=(HEALTH,)) as case:  # fmt: skip
        await case.until(pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        exchange = case.exchange()
        await exchange.execute_update(HolderExchange.propose_override, proposal("gp-dsl"))
        # A manager is an approver role, but not one of the GP's named approvers.
        refused = await refusal(
            exchange.execute_update(HolderExchange.decide_override, decision("gp-2", "manager"))
        )
        assert refused.type == "NotPermitted"
        assert "registry names" in refused.message
        waiting = await case.holder_state()
        assert waiting.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
        assert not waiting.HasField("override_decision")
        await exchange.execute_update(
            HolderExchange.decide_override, decision("gp-caldicott", "caldicott_guardian")
        )
        assert (await case.holder_state()).override_decision.approve
        await case.until(pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        await exchange.execute_update(
            HolderExchange.acknowledge,
            pb.Acknowledgement(
                practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
                status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
                agency_id=case.request.requesting_agency_id,
            ),
        )
        record = await case.result()
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
