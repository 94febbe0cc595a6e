"""Bad bytes at the gateway, over real mTLS against the real hub: a request that does not
decode, a string that is not UTF-8, control characters, fields over their bounds and enum
numbers the contract does not define are INVALID_ARGUMENT (never UNKNOWN or INTERNAL), name
the field where there is one, and start no workflow."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare import tls
from tests.safeshare.gateway_support import (
    CSC,
    SCHOOL,
    Gateway,
    new_request,
    propose_override,
    refused,
    violations,
    wait_for_state,
)
from workflows.ids import case_ref_for, case_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVICE = "/sharing.v1.CaseService/"


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2), for lengths below 128."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


NOT_UTF8 = _field(1, _field(1, b"req-\xff\xfe"))  # request.request_id: not UTF-8
NOT_A_MESSAGE = b"\x0f\x0f\x0f"  # sent as the RPC's message field: not a message
MESSAGE_FIELD = {"SubmitRequest": 1, "GetCase": 2, "ProposeOverride": 2, "WatchCase": 3}
GARBAGE = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"


async def raw(gw: Gateway, rpc: str, body: bytes, stream: bool = False) -> grpc.aio.AioRpcError:
    """Send ``body`` as the request bytes of ``rpc`` and return the refusal."""
    chan = grpc.aio.secure_channel(
        f"127.0.0.1:{gw.port}", tls.channel_credentials(gw.pki.agency(CSC))
    )
    gw.channels.append(chan)
    try:
        if stream:
            call: Any = chan.unary_stream(SERVICE + rpc)(body, timeout=15)  # type: ignore[arg-type]
            async for _ in call:
                pass
        else:
            await chan.unary_unary(SERVICE + rpc)(body, timeout=15)  # type: ignore[arg-type]
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError(f"{rpc} accepted bad bytes")


@pytest.mark.parametrize("body", [NOT_UTF8, NOT_A_MESSAGE, GARBAGE], ids=["utf8", "str", "junk"])
@pytest.mark.parametrize("rpc", sorted(MESSAGE_FIELD))
async def test_bytes_that_do_not_decode_are_invalid_argument(
    gateway: Gateway, rpc: str, body: bytes
) -> None:
    if body is NOT_A_MESSAGE:
        body = _field(MESSAGE_FIELD[rpc], body)
    err = await raw(gateway, rpc, body, stream=rpc == "WatchCase")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "not a valid sharing.v1." in (err.details() or "")


@pytest.mark.parametrize("bad", ["\x00", "\x1b[31m", "\x07", "line\nbreak", "tab\there", "\x7f"])
async def test_control_characters_in_a_childs_name_are_refused_and_start_nothing(
    gateway: Gateway, bad: str
) -> None:
    call = new_request(SCHOOL)
    call.request.subjects[0].given_name = f"Test{bad}child"
    err = await refused(gateway.cached(CSC).SubmitRequest(call))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(err)] == ["request.subjects[0].given_name"]
    assert not any("Test" in d for _, d in violations(err))
    ref = case_ref_for(CSC, call.request.request_id)
    with pytest.raises(RPCError) as missing:
        await gateway.client.get_workflow_handle(case_workflow_id(ref)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_control_characters_in_references_and_free_text_name_their_fields(
    gateway: Gateway,
) -> None:
    call = new_request(SCHOOL)
    call.request.agency_reference = "ref\nsecond line"
    call.request.categories[0].necessity = "two lines\nare fine in free text"
    call.request.lawful_basis = "bell\x07"
    call.request.requester.user_id = "sw\u202e-0042"  # a right-to-left override
    err = await refused(gateway.cached(CSC).SubmitRequest(call))
    assert sorted(f for f, _ in violations(err)) == [
        "request.agency_reference",
        "request.lawful_basis",
        "request.requester.user_id",
    ]


async def test_a_decision_with_a_control_character_changes_nothing(gateway: Gateway) -> None:
    ref = await gateway.open_case(refused=True)
    await wait_for_state(gateway.cached(CSC), ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    before = await gateway.history_lengths(ref)
    call = propose_override(ref)
    call.proposal.harm_statement = "risk\x00of harm"
    err = await refused(gateway.cached(SCHOOL).ProposeOverride(call))
    assert violations(err)[0][0] == "proposal.harm_statement"
    assert await gateway.history_lengths(ref) == before


async def test_an_enum_number_the_contract_does_not_define_says_so(gateway: Gateway) -> None:
    call = new_request(SCHOOL)
    call.request.purpose = 99  # type: ignore[assignment]
    err = await refused(gateway.cached(CSC).SubmitRequest(call))
    assert violations(err) == [("request.purpose", "unknown value 99")]


def _over_bounds() -> list[tuple[str, Message, str]]:
    many = new_request(SCHOOL)
    for _ in range(20):
        many.request.subjects.add().CopyFrom(many.request.subjects[0])
    long_name = new_request(SCHOOL)
    long_name.request.subjects[0].family_name = "x" * 201
    long_text = new_request(SCHOOL)
    long_text.request.family_not_aware_reason = "x" * 4001
    long_id = new_request(SCHOOL)
    long_id.request.agency_reference = "x" * 129
    return [
        ("subjects", many, "request.subjects"),
        ("name", long_name, "request.subjects[0].family_name"),
        ("text", long_text, "request.family_not_aware_reason"),
        ("reference", long_id, "request.agency_reference"),
    ]


@pytest.mark.parametrize(("what", "call", "field"), _over_bounds(), ids=lambda v: str(v)[:9])
async def test_fields_and_subjects_over_their_bounds_are_refused(
    gateway: Gateway, what: str, call: service_pb.SubmitRequestRequest, field: str
) -> None:
    err = await refused(gateway.cached(CSC).SubmitRequest(call))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, what
    assert field in [f for f, _ in violations(err)], what


async def test_a_request_breaking_its_shape_and_its_rules_hears_of_both_at_once(
    gateway: Gateway,
) -> None:
    call = new_request(SCHOOL)
    call.request.subjects[0].given_name = "Test\x00child"
    call.request.ClearField("lawful_basis")
    err = await refused(gateway.cached(CSC).SubmitRequest(call))
    assert [f for f, _ in violations(err)] == [
        "request.subjects[0].given_name",
        "request.lawful_basis",
    ]
