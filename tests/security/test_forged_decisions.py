"""Only the gateway decides: a client that reaches Temporal directly cannot start or decide a case.

The stack is the real one on a real Temporal dev server: the hub worker with the payload codec
and the gateway's public key, the gateway over mTLS with its signing key, fake agency systems on
the agencies' task queues (consent REFUSED for the attacked case). The attacker connects straight
to Temporal, first with no payload keys, then with them (an insider, a leaked key file): neither
can record consent, start a case, start an exchange or forward a command, nor start, approve
or acknowledge a disclosure, nor start a consent-withdrawal notice. The negative control
hands the attacker the gateway's signing key: then the same forged decision IS accepted, so the
refusals come from the seal check and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from partnership.registry import Registry
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.codec import DecryptionError, EncryptionCodec, KeyRing, data_converter
from safeshare.gateway import create_gateway_server
from safeshare.gateway.signing import GatewaySigner, ensure_signing_key
from safeshare.hub import build_hub_worker
from safeshare.pki import DevPki
from tests.disclosure_factories import GP, concern
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.fake_agencies import FakeAgencies
from tests.safeshare.gateway_support import (
    AGENCIES,
    CSC,
    SCHOOL,
    change_urgency,
    decline,
    new_request,
)
from workflows import ed25519, seal
from workflows.consent_withdrawal import NOT_SEALED as NOTICE_NOT_SEALED
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.disclosure_case import DisclosureCase
from workflows.domain.refusal import Rule
from workflows.holder_exchange import HolderExchange
from workflows.ids import (
    case_ref_for,
    case_workflow_id,
    consent_withdrawal_workflow_id,
    disclosure_ref_for,
    holder_exchange_workflow_id,
)
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT = 20.0


@dataclass
class Stack:
    temporal: WorkflowEnvironment
    keys: KeyRing
    system: Client
    """The hub's and gateway's own client (payload keys)."""
    signer: GatewaySigner
    fakes: FakeAgencies
    gateway_port: int
    pki: DevPki
    hub_queue: str

    async def attacker(self, *, with_keys: bool) -> Client:
        """A client straight to Temporal: no certificate, no gateway, maybe the payload keys."""
        config = self.temporal.client.config()
        if with_keys:
            config["data_converter"] = data_converter(self.keys)
        return Client(**config)

    def stub(self, agency_id: str) -> service_grpc.CaseServiceAsyncStub:
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{self.gateway_port}", tls.channel_credentials(self.pki.agency(agency_id))
        )
        return service_grpc.CaseServiceStub(channel)

    async def refused_case(self) -> str:
        """A case through the gateway whose consent lookup says REFUSED, awaiting the holder."""
        call = new_request(SCHOOL)
        ref = case_ref_for(CSC, call.request.request_id)
        self.fakes.refused.add(ref)
        await self.stub(CSC).SubmitRequest(call)
        await self.until(ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
        return ref

    async def exchange(self, ref: str) -> pb.HolderRecord:
        handle = self.system.get_workflow_handle_for(
            HolderExchange.run, holder_exchange_workflow_id(ref, SCHOOL)
        )
        return await handle.query(HolderExchange.holder_record)

    async def until(self, ref: str, state: pb.CaseState.ValueType) -> pb.HolderRecord:
        return await eventually(
            lambda: self.exchange(ref),
            lambda record: record.state == state,
            what=f"exchange reached {pb.CaseState.Name(state)}",
            within=WAIT,
            retry_on=(Exception,),  # not started yet
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    dev_server: WorkflowEnvironment,
    pki: DevPki,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    keys = KeyRing.generate()
    config = dev_server.client.config()
    config["data_converter"] = data_converter(keys)
    system = Client(**config)
    folder = await asyncio.to_thread(tmp_path_factory.mktemp, "gateway-key")
    signer = await asyncio.to_thread(
        ensure_signing_key, folder / "signing.key", folder / "signing.pub"
    )
    fakes = FakeAgencies()
    hub_queue = f"hub-security-{uuid.uuid4()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            build_hub_worker(
                system, DEFAULT_REGISTRY_PATH, task_queue=hub_queue,
                gateway_key_path=folder / "signing.pub",
            )
        )  # fmt: skip
        for agency_id in AGENCIES:
            await stack.enter_async_context(
                Worker(
                    system,
                    task_queue=agency_task_queue(agency_id),
                    activities=fakes.activities_for(agency_id),
                )
            )
        server, port = await create_gateway_server(
            system, registry, tls.server_credentials(pki.gateway()),
            hub_task_queue=hub_queue, signer=signer,
        )  # fmt: skip
        try:
            yield Stack(dev_server, keys, system, signer, fakes, port, pki, hub_queue)
        finally:
            await server.stop(None)


def declined_by(agency_id: str) -> pb.DeclineDecision:
    return pb.DeclineDecision(
        actor=pb.Actor(
            agency_id=agency_id, practitioner=pb.Practitioner(user_id="x", role="teacher")
        ),
        reasons=["not_necessary"],
        explanation="forged",
    )


def consent_given_by(agency_id: str) -> pb.ConsentDecision:
    """The forged decision of the review: consent GIVEN, acting as the holder."""
    consent = pb.ConsentRecord(
        status=pb.CONSENT_STATUS_GIVEN,
        given_by_relationship="mother",
        parental_responsibility=True,
        purposes=[pb.PURPOSE_SAFEGUARDING],
        categories=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
        verification="forged",
    )
    consent.valid_from.FromDatetime(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    consent.valid_until.FromDatetime(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    return pb.ConsentDecision(
        actor=pb.Actor(
            agency_id=agency_id, practitioner=pb.Practitioner(user_id="x", role="teacher")
        ),
        consent=consent,
    )


# -- the codec fails closed --------------------------------------------------------------------


async def test_a_client_without_the_payload_keys_cannot_record_consent(stack: Stack) -> None:
    ref = await stack.refused_case()
    attacker = await stack.attacker(with_keys=False)
    handle = attacker.get_workflow_handle(holder_exchange_workflow_id(ref, SCHOOL))
    # The plaintext update never reaches the handler: the worker refuses to decode it.
    with pytest.raises(Exception):  # noqa: B017 (refused or timed out: either way not accepted)
        await handle.execute_update(
            "record_consent", consent_given_by(SCHOOL), rpc_timeout=dt.timedelta(seconds=5)
        )
    record = await stack.exchange(ref)
    assert record.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert not record.HasField("consent_decision")


async def test_a_payload_bound_to_one_case_does_not_decode_in_another() -> None:
    codec = EncryptionCodec(KeyRing.generate())
    a = codec.with_context(WorkflowSerializationContext("default", case_workflow_id("a" * 20)))
    b = codec.with_context(WorkflowSerializationContext("default", case_workflow_id("b" * 20)))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"GIVEN"')
    [sealed] = await a.encode([plain])
    assert await a.decode([sealed]) == [plain]
    with pytest.raises(DecryptionError, match="another workflow"):
        await b.decode([sealed])
    # Relabelling the binding in the metadata breaks the tag instead.
    moved = Payload()
    moved.CopyFrom(sealed)
    moved.metadata["encryption"] = moved.metadata["encryption"].replace(
        case_workflow_id("a" * 20).encode(), case_workflow_id("b" * 20).encode()
    )
    assert moved.metadata["encryption"] != sealed.metadata["encryption"]
    with pytest.raises(DecryptionError, match="does not decrypt"):
        await b.decode([moved])
    # A tool without a context (the codec server) reads it against the binding it names.
    assert await codec.decode([sealed]) == [plain]


# -- decisions need the gateway's seal ---------------------------------------------------------


async def test_an_insider_with_the_payload_keys_cannot_record_consent(stack: Stack) -> None:
    ref = await stack.refused_case()
    attacker = await stack.attacker(with_keys=True)
    exchange_id = holder_exchange_workflow_id(ref, SCHOOL)
    handle = attacker.get_workflow_handle_for(HolderExchange.run, exchange_id)
    with pytest.raises(WorkflowUpdateFailedError) as unsealed:
        await handle.execute_update(HolderExchange.record_consent, consent_given_by(SCHOOL))
    assert isinstance(unsealed.value.cause, ApplicationError)
    assert unsealed.value.cause.type == Rule.NOT_PERMITTED.value
    assert "not sealed" in unsealed.value.cause.message
    # Sealed with a key of his own choosing.
    own = GatewaySigner(Ed25519PrivateKey.generate())
    forged = own.sealed(consent_given_by(SCHOOL), exchange_id, "u-1")
    with pytest.raises(WorkflowUpdateFailedError) as wrong_key:
        await handle.execute_update(HolderExchange.record_consent, forged, id="u-1")
    assert isinstance(wrong_key.value.cause, ApplicationError)
    assert "does not verify" in wrong_key.value.cause.message
    # A genuine seal taken from one command cannot be replayed as another update.
    genuine = stack.signer.sealed(consent_given_by(SCHOOL), exchange_id, "u-2")
    with pytest.raises(WorkflowUpdateFailedError) as replayed:
        await handle.execute_update(HolderExchange.record_consent, genuine, id="u-3")
    assert isinstance(replayed.value.cause, ApplicationError)
    assert "another command" in replayed.value.cause.message
    # The negative control's command, refused the same way without the gateway's key.
    with pytest.raises(WorkflowUpdateFailedError) as decline:
        await handle.execute_update(HolderExchange.decline_to_share, declined_by(SCHOOL))
    assert isinstance(decline.value.cause, ApplicationError)
    assert "not sealed" in decline.value.cause.message
    record = await stack.exchange(ref)
    assert record.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert not record.HasField("consent_decision")
    assert not record.HasField("decline")


async def test_a_forged_start_is_rejected_by_the_gate_before_any_exchange(stack: Stack) -> None:
    attacker = await stack.attacker(with_keys=True)
    request = sharing_request(requesting_agency_id=CSC, holding_agency_id=SCHOOL)
    ref = case_ref_for(CSC, request.request_id)
    own = GatewaySigner(Ed25519PrivateKey.generate())
    for forged in (request, own.sealed(request, case_workflow_id(ref), seal.START)):
        ref = case_ref_for(CSC, forged.request_id)
        handle = await attacker.start_workflow(
            SharingCase.run, forged, id=case_workflow_id(ref), task_queue=stack.hub_queue
        )
        record = await asyncio.wait_for(handle.result(), WAIT)
        assert record.outcome == pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE
        assert "request_not_sealed_by_gateway" in record.gate.reasons
        assert not record.holders
        request = sharing_request(requesting_agency_id=CSC, holding_agency_id=SCHOOL)


async def test_an_exchange_started_directly_fails_before_asking_any_agency(stack: Stack) -> None:
    attacker = await stack.attacker(with_keys=True)
    request = sharing_request(requesting_agency_id=CSC, holding_agency_id=SCHOOL)
    ref = case_ref_for(CSC, request.request_id)
    # Even naming a key of his own in the input: only a case starts an exchange.
    own = GatewaySigner(Ed25519PrivateKey.generate())
    exchange = pb.HolderExchangeInput(
        case_ref=ref, request=request, holding_agency_id=SCHOOL, urgency=request.urgency,
        gateway_public_key=own.public_key,
    )  # fmt: skip
    handle = await attacker.start_workflow(
        HolderExchange.run, exchange, id=holder_exchange_workflow_id(ref, SCHOOL),
        task_queue=stack.hub_queue,
    )  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), WAIT)
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "NotStartedByCase"
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]


async def test_an_unsealed_signal_to_an_exchange_is_ignored(stack: Stack) -> None:
    ref = await stack.refused_case()
    attacker = await stack.attacker(with_keys=True)
    handle = attacker.get_workflow_handle(holder_exchange_workflow_id(ref, SCHOOL))
    withdrawal = pb.RequestWithdrawal(
        actor=pb.Actor(agency_id=CSC, practitioner=pb.Practitioner(user_id="x", role="sw")),
        reason="forged",
    )
    await handle.signal("withdraw_exchange", withdrawal)
    await handle.signal(HolderExchange.withdraw, withdrawal)
    # A query is answered after the signals are applied (same workflow task or a later one).
    await asyncio.sleep(0.5)
    record = await stack.exchange(ref)
    assert record.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert "RequestWithdrawn" not in [entry.event for entry in record.entries]


async def test_the_gateway_still_decides(stack: Stack) -> None:
    """The positive control: the same decision through the gateway is sealed and accepted."""
    ref = await stack.refused_case()
    # A case command (checked by the case) and its forwarding to the exchange (a signal).
    changed = await stack.stub(CSC).ChangeUrgency(change_urgency(ref))
    assert changed.case.record.urgency == pb.URGENCY_GREEN
    for _ in range(int(WAIT / 0.05)):
        if "UrgencyChanged" in [e.event for e in (await stack.exchange(ref)).entries]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the sealed urgency change never reached the exchange")
    await stack.stub(SCHOOL).DeclineToShare(decline(ref))
    record = await stack.until(ref, pb.CASE_STATE_CLOSED)
    assert record.HasField("decline")


async def test_negative_control_with_the_gateways_key_the_forgery_is_accepted(
    stack: Stack,
) -> None:
    """Hand the attacker the gateway's signing key: the forged decision goes through. The
    refusals above come from the seal check, not from anything else about the call."""
    ref = await stack.refused_case()
    attacker = await stack.attacker(with_keys=True)
    exchange_id = holder_exchange_workflow_id(ref, SCHOOL)
    handle = attacker.get_workflow_handle_for(HolderExchange.run, exchange_id)
    forged = stack.signer.sealed(declined_by(SCHOOL), exchange_id, "stolen-key-1")
    await handle.execute_update(HolderExchange.decline_to_share, forged, id="stolen-key-1")
    record = await handle.query(HolderExchange.holder_record)
    assert record.decline.explanation == "forged"
    # And a start sealed with it passes the gate.
    request = sharing_request(requesting_agency_id=CSC, holding_agency_id=SCHOOL)
    start_ref = case_ref_for(CSC, request.request_id)
    sealed = stack.signer.sealed(request, case_workflow_id(start_ref), seal.START)
    case = await attacker.start_workflow(
        SharingCase.run, sealed, id=case_workflow_id(start_ref), task_queue=stack.hub_queue
    )
    await stack.until(start_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    view = await case.query(SharingCase.case_view)
    assert view.record.gate.passed


def test_the_seal_verifier_agrees_with_rfc_8032() -> None:
    """RFC 8032 section 7.1, test 1 (empty message), and one flipped bit."""
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert ed25519.verify(public, b"", signature)
    assert not ed25519.verify(public, b"\x00", signature)
    assert not ed25519.verify(public, b"", signature[:-1] + bytes([signature[-1] ^ 1]))


# -- disclosures and consent-withdrawal notices need the gateway's seal too ---------------------


async def _disclosure(
    stack: Stack, client: Client, case: pb.DisclosureCaseInput, holder: str, disclosure_id: str
) -> WorkflowHandle[DisclosureCase, pb.DecisionRecord]:
    return await client.start_workflow(
        DisclosureCase.run, case, id=case_workflow_id(disclosure_ref_for(holder, disclosure_id)),
        task_queue=stack.hub_queue,
    )  # fmt: skip


async def _awaiting_approval(handle: WorkflowHandle[DisclosureCase, pb.DecisionRecord]) -> None:
    for _ in range(int(WAIT / 0.05)):
        view = await handle.query(DisclosureCase.case_view)
        if view.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the disclosure never waited for its approver")


async def _forget(stack: Stack, *handles: WorkflowHandle[Any, Any]) -> None:
    """Delete the disclosures a test made: their payloads are encrypted with this stack's own
    keys, and other tests on the shared server read every disclosure without them."""
    for handle in handles:
        with contextlib.suppress(RPCError):
            await handle.terminate("test done")
        await stack.system.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=stack.system.namespace,
                workflow_execution=WorkflowExecution(workflow_id=handle.id),
            )
        )
    for handle in handles:  # gone from visibility too (deletion is asynchronous)
        for _ in range(200):
            if not (await stack.system.count_workflows(f"WorkflowId='{handle.id}'")).count:
                break
            await asyncio.sleep(0.05)


def _approval(approve: bool = True) -> pb.DisclosureApproval:
    return pb.DisclosureApproval(
        actor=pb.Actor(agency_id=GP, practitioner=pb.Practitioner(user_id="cg-1", role="caldicott_guardian")),
        approve=approve, reason="forged",
    )  # fmt: skip


async def test_a_forged_disclosure_start_is_rejected_by_the_gate_before_any_delivery(
    stack: Stack,
) -> None:
    attacker = await stack.attacker(with_keys=True)
    own = GatewaySigner(Ed25519PrivateKey.generate())
    disclosure = concern(pb.URGENCY_RED)
    not_made = pb.DisclosureNotMade(
        disclosure_id=f"nm-{uuid.uuid4()}", kind=pb.DISCLOSURE_KIND_CONCERN,
        holding_agency_id=GP, decided_by=pb.Practitioner(user_id="gp-0007", role="gp"),
        reasons=["forged"],
    )  # fmt: skip
    unsealed = [
        (pb.DisclosureCaseInput(disclosure=disclosure), disclosure.disclosure_id),
        (pb.DisclosureCaseInput(not_made=not_made), not_made.disclosure_id),
    ]
    own_key = concern(pb.URGENCY_RED)
    own_case = pb.DisclosureCaseInput(disclosure=own_key)
    own_id = case_workflow_id(disclosure_ref_for(GP, own_key.disclosure_id))
    forged = [*unsealed, (own.sealed(own_case, own_id, seal.START), own_key.disclosure_id)]
    made = []
    for case, disclosure_id in forged:
        handle = await _disclosure(stack, attacker, case, GP, disclosure_id)
        made.append(handle)
        record = await asyncio.wait_for(handle.result(), WAIT)
        assert record.outcome == pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE
        assert "request_not_sealed_by_gateway" in record.gate.reasons
        assert not [r for r in record.disclosure.recipients if r.shared_items]
        history = await handle.fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert scheduled == ["hub.DisclosureGate"]  # nothing extracted, delivered or sent
    await _forget(stack, *made)


async def test_a_forged_approval_or_acknowledgement_of_a_disclosure_is_refused(
    stack: Stack,
) -> None:
    """A genuine disclosure waiting for its approver: an insider's approval (unsealed, or
    sealed with his own key) is refused, and so is a forged acknowledgement."""
    disclosure = concern(pb.URGENCY_AMBER)
    workflow_id = case_workflow_id(disclosure_ref_for(GP, disclosure.disclosure_id))
    case = stack.signer.sealed(
        pb.DisclosureCaseInput(disclosure=disclosure), workflow_id, seal.START
    )
    handle = await _disclosure(stack, stack.system, case, GP, disclosure.disclosure_id)
    await _awaiting_approval(handle)
    attacker = await stack.attacker(with_keys=True)
    forged = attacker.get_workflow_handle_for(DisclosureCase.run, workflow_id)
    own = GatewaySigner(Ed25519PrivateKey.generate())
    for approval, update_id in [
        (_approval(), "a-1"),
        (own.sealed(_approval(), workflow_id, "a-2"), "a-2"),
        (stack.signer.sealed(_approval(), workflow_id, "a-3"), "a-4"),  # another update's
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await forged.execute_update(DisclosureCase.decide_disclosure, approval, id=update_id)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == Rule.NOT_PERMITTED.value
    ack = pb.Acknowledgement(
        agency_id=CSC, practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
    )  # fmt: skip
    with pytest.raises(WorkflowUpdateFailedError) as ack_refused:
        await forged.execute_update(DisclosureCase.acknowledge, ack, id="k-1")
    assert isinstance(ack_refused.value.cause, ApplicationError)
    assert ack_refused.value.cause.type == Rule.NOT_PERMITTED.value
    view = await handle.query(DisclosureCase.case_view)
    assert view.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    assert not view.record.disclosure.HasField("approval")
    # Negative control: with the gateway's key the same approval is accepted.
    stolen = stack.signer.sealed(_approval(approve=False), workflow_id, "stolen-a")
    decided = await forged.execute_update(DisclosureCase.decide_disclosure, stolen, id="stolen-a")
    assert decided.record.disclosure.approval.reason == "forged"
    await _forget(stack, handle)


async def test_a_forged_consent_withdrawal_notice_tells_nobody(stack: Stack) -> None:
    attacker = await stack.attacker(with_keys=True)
    ref = case_ref_for(CSC, str(uuid.uuid4()))
    notice = pb.ConsentWithdrawalNoticeInput(
        case_ref=ref, holding_agency_id=SCHOOL, recipient_agency_id=CSC,
        delivery_ids=[f"{ref}.{SCHOOL}.1"],
        withdrawal=pb.ConsentWithdrawal(
            actor=pb.Actor(agency_id=SCHOOL, practitioner=pb.Practitioner(user_id="x", role="teacher")),
            withdrawn_by_relationship="mother",
        ),
    )  # fmt: skip
    handle = await attacker.start_workflow(
        ConsentWithdrawalNotice.run, notice, id=consent_withdrawal_workflow_id(ref, SCHOOL),
        task_queue=stack.hub_queue,
    )  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), WAIT)
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == NOTICE_NOT_SEALED
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["hub.NoticeSeal"]  # the recipient was never told
