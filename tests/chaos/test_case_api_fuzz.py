"""Bad input at scale: a hypothesis state machine drives the Case API with random interleavings
of valid and invalid commands from several agencies.

Every answer must be a designed status code (never UNKNOWN or INTERNAL), and every case must
stay where the pure model (workflows/domain/exchange.py ``Exchange``), fed the commands the gateway
accepted, says it is.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1.case_service_pb2_grpc import CaseServiceStub
from tests.chaos import scenarios as sc
from tests.chaos.stack import ChaosStack
from workflows.domain import exchange as ex
from workflows.domain import exchange_commands as cmd
from workflows.domain.refusal import Rule
from workflows.domain.vocabulary import Actor, State, Urgency

pytestmark = pytest.mark.chaos

DESIGNED = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION"}
RULE_CODE = {
    Rule.OUT_OF_TURN: "FAILED_PRECONDITION",
    Rule.NOT_PERMITTED: "PERMISSION_DENIED",
    Rule.INVALID: "INVALID_ARGUMENT",
}
SETTLING = {pb.CASE_STATE_CHECKING_CONSENT, pb.CASE_STATE_DELIVERING, pb.CASE_STATE_REQUESTED}
KINDS = ["propose", "propose_incomplete", "approve", "reject", "approve_by_proposer",
         "approve_wrong_role", "decline", "decline_no_reasons", "withdraw", "acknowledge",
         "withdraw_consent"]  # fmt: skip
ROLES = ["requester", "holder", "outsider"]
UNARY_RPCS = sorted(
    m.name
    for m in service_pb.DESCRIPTOR.services_by_name["CaseService"].methods
    if not m.server_streaming
)

STACK: ChaosStack | None = None
CODES: Counter[str] = Counter()


class Agency:
    """One agency's synchronous Case API stub."""

    def __init__(self, stack: ChaosStack, agency_id: str) -> None:
        ca, cert, key = stack.agency_tls(agency_id).read()
        self.channel = grpc.secure_channel(
            stack.gateway_target, grpc.ssl_channel_credentials(ca, key, cert)
        )
        self.stub = CaseServiceStub(self.channel)
        self.agency_id = agency_id


class CaseApiMachine(RuleBasedStateMachine):
    """Cases between random agencies, and the model of each."""

    def __init__(self) -> None:
        super().__init__()
        assert STACK is not None
        self.stack = STACK
        self.agencies = {a: Agency(STACK, a) for a in STACK.agencies}
        self.cases: list[tuple[sc.CaseSpec, str, ex.Exchange]] = []

    def teardown(self) -> None:
        for agency in self.agencies.values():
            agency.channel.close()

    def _call(self, method: Callable[..., Any], request: Any) -> tuple[str, Any]:
        try:
            reply = method(request, timeout=20)
        except grpc.RpcError as err:
            code = err.code().name
            CODES[code] += 1
            assert code in DESIGNED, f"undesigned status {code}"
            return code, None
        CODES["OK"] += 1
        return "OK", reply

    @initialize(pair=st.permutations(range(4)))
    def open_case(self, pair: list[int]) -> None:
        requester, holder, outsider = (self.stack.agencies[i] for i in pair[:3])
        spec = sc.CaseSpec(
            f"fuzz-{uuid.uuid4().hex[:10]}", requester, holder, "consent-refused",
            sc.Scenario.OVERRIDE, (sc.held_categories_for(holder)[0],), pb.URGENCY_AMBER,
        )  # fmt: skip
        self.outsider = outsider
        code, reply = self._call(
            self.agencies[requester].stub.SubmitRequest,
            service_pb.SubmitRequestRequest(request=sc.sharing_request(spec)),
        )
        assert code == "OK"
        exchange = ex.Exchange(holder=holder, recipient=requester, urgency=Urgency.AMBER)
        exchange.apply(cmd.ConsentChecked(covers=False))
        self.cases.append((spec, reply.case_ref, exchange))
        self._settle(0)

    @rule(
        kind=st.sampled_from(KINDS),
        who=st.sampled_from(ROLES),
    )
    def command(self, kind: str, who: str) -> None:
        spec, ref, exchange = self.cases[0]
        caller = {"requester": spec.requester, "holder": spec.holder, "outsider": self.outsider}[
            who
        ]
        stub = self.agencies[caller].stub
        actor = Actor(caller, f"{caller}-{kind}", "social_worker")
        call: tuple[Callable[..., Any], Any]
        malformed = False
        if kind in ("propose", "propose_incomplete"):
            proposal = sc.override_proposal(spec)
            proposal.actor.practitioner.user_id = f"{caller}-proposer"
            actor = Actor(caller, f"{caller}-proposer", "social_worker")
            if kind == "propose_incomplete":
                proposal.ClearField("harm_statement")
            asked = frozenset(c.category for c in sc.sharing_request(spec).categories)
            command: cmd.Command = cmd.ProposeOverride(actor, proposal, asked)
            call = (
                stub.ProposeOverride,
                service_pb.ProposeOverrideRequest(case_ref=ref, proposal=proposal),
            )
        elif kind.startswith(("approve", "reject")):
            decision = sc.override_decision(spec, approve=kind != "reject")
            user, role = f"{caller}-approver", "designated_safeguarding_lead"
            if kind == "approve_by_proposer":
                user = f"{caller}-proposer"
            if kind == "approve_wrong_role":
                role = "teacher"
            decision.actor.practitioner.user_id, decision.actor.practitioner.role = user, role
            command = cmd.DecideOverride(
                Actor(caller, user, role), kind != "reject", decision.reason
            )
            call = (
                stub.DecideOverride,
                service_pb.DecideOverrideRequest(case_ref=ref, decision=decision),
            )
        elif kind in ("decline", "decline_no_reasons"):
            decline = sc.decline(spec)
            if kind == "decline_no_reasons":
                decline.ClearField("reasons")
                malformed = True
            command = cmd.DeclineToShare(actor, has_reasons=not malformed)
            call = (
                stub.DeclineToShare,
                service_pb.DeclineToShareRequest(case_ref=ref, decision=decline),
            )
        elif kind == "withdraw":
            command = cmd.WithdrawRequest(actor)
            call = (
                stub.WithdrawRequest,
                service_pb.WithdrawRequestRequest(case_ref=ref, withdrawal=sc.withdrawal(spec)),
            )
        elif kind == "acknowledge":
            ack = sc.acknowledgement(spec)
            command = cmd.Acknowledge(actor, ack.status)
            call = (
                stub.Acknowledge,
                service_pb.AcknowledgeRequest(case_ref=ref, acknowledgement=ack),
            )
        else:
            withdrawal = pb.ConsentWithdrawal(
                actor=sc.actor(caller, "recorder", "social_worker"),
                withdrawn_by_relationship="mother", reason="changed her mind",
            )  # fmt: skip
            command = cmd.WithdrawConsent(actor)
            call = (
                stub.WithdrawConsent,
                service_pb.WithdrawConsentRequest(case_ref=ref, withdrawal=withdrawal),
            )
        code, _ = self._call(*call)
        if malformed:
            expected = {"INVALID_ARGUMENT"}  # the gateway refuses the shape before anything
        elif who == "outsider":
            expected = {"NOT_FOUND"}  # a non-party never learns the case exists
        else:
            refusal = exchange.check(command)
            expected = {"OK"} if refusal is None else {RULE_CODE[refusal.rule]}
        assert code in expected, (
            f"{kind} by {who} at {exchange.state.value}: {code}, model {expected}"
        )
        if code == "OK":
            exchange.apply(command)
        self._settle(0)

    @rule()
    def unknown_and_malformed_refs(self) -> None:
        stub = self.agencies[self.stack.agencies[0]].stub
        code, _ = self._call(stub.GetCase, service_pb.GetCaseRequest(case_ref="a" * 20))
        assert code == "NOT_FOUND"
        code, _ = self._call(stub.GetCase, service_pb.GetCaseRequest(case_ref="../etc"))
        assert code == "INVALID_ARGUMENT"

    @rule(
        rpc=st.sampled_from(UNARY_RPCS),
        body=st.one_of(st.binary(max_size=120), st.just(b"\n\x03\xff\xfe\xfd")),
    )
    def raw_bytes(self, rpc: str, body: bytes) -> None:
        """Bytes off a wire, not a message: garbage, or a string field that is not UTF-8."""
        agency = self.agencies[self.stack.agencies[0]]
        send: Any = agency.channel.unary_unary(f"/sharing.v1.CaseService/{rpc}")
        code, _ = self._call(send, body)
        assert code in DESIGNED | {"ALREADY_EXISTS"}, f"{rpc} answered {code} to raw bytes"

    def _settle(self, index: int) -> pb.HolderRecord:
        """Wait (bounded) until the exchange rests, fold in what the system did by itself."""
        spec, ref, exchange = self.cases[index]
        stub = self.agencies[spec.requester].stub
        deadline = time.monotonic() + 60
        while True:
            code, view = self._call(stub.GetCase, service_pb.GetCaseRequest(case_ref=ref))
            holder = (
                view.case.record.holders[0] if code == "OK" and view.case.record.holders else None
            )
            if holder is not None and holder.state not in SETTLING:
                break
            assert time.monotonic() < deadline, "the case did not come to rest"
            time.sleep(0.2)
        if exchange.state is State.DELIVERING and holder.receipt.delivery_id:
            exchange.apply(cmd.Delivered())
        return holder

    @invariant()
    def cases_match_the_model(self) -> None:
        for index, (_, _, exchange) in enumerate(self.cases):
            holder = self._settle(index)
            assert pb.CaseState.Name(holder.state) == f"CASE_STATE_{exchange.state.value}"
            if exchange.state is State.CLOSED:
                assert pb.Outcome.Name(holder.outcome) == f"OUTCOME_{exchange.outcome.value}"


@pytest.mark.timeout(300)
def test_case_api_answers_every_interleaving_as_the_model_does(chaos_stack: ChaosStack) -> None:
    global STACK
    STACK = chaos_stack
    CODES.clear()
    machine = CaseApiMachine.TestCase
    machine.settings = settings(
        max_examples=8, stateful_step_count=12, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    machine().runTest()
    print("fuzz status codes:", dict(CODES))
    assert {"OK", "FAILED_PRECONDITION", "PERMISSION_DENIED", "NOT_FOUND"} <= set(CODES)
