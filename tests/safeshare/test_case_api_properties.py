"""Property tests: generated malformed requests at every Case API RPC, over real mTLS.

Each RPC gets a fixed, derandomized example budget. Every answer must be one of the codes the
API documents (never UNKNOWN or INTERNAL, never a hang), and a refused call must change
nothing: no case opened, no event added to a case's history.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare import tls
from tests.safeshare.gateway_support import (
    AGENCIES,
    CSC,
    SCHOOL,
    Gateway,
    wait_for_state,
)
from workflows.ids import case_ref_for, case_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

DESIGNED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
REQUESTS: dict[str, type[Message]] = {
    method.name: getattr(service_pb, method.input_type.name)
    for method in service_pb.DESCRIPTOR.services_by_name["CaseService"].methods
}
TIMESTAMP_SECONDS = st.one_of(
    st.integers(-62_135_596_800, 253_402_300_799),  # what Timestamp allows
    st.integers(-(2**63), 2**63 - 1),  # what the wire allows
)
STRINGS = st.one_of(
    st.sampled_from(["", " ", "\n", "\x00", "x" * 129, "x" * 4001, CSC, SCHOOL, "manager"]),
    st.text(max_size=24),
)


@st.composite
def message_of(draw: st.DrawFn, cls: type[Message], depth: int = 0) -> Message:
    """Any message of ``cls``: each field unset or given a value, many of them out of range."""
    message = cls()
    if cls.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        message.seconds = draw(TIMESTAMP_SECONDS)  # type: ignore[attr-defined]
        message.nanos = draw(st.integers(-(2**31), 2**31 - 1))  # type: ignore[attr-defined]
        return message
    for field in cls.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        repeated = field.is_repeated
        count = draw(st.integers(0, 3)) if repeated else 1
        for _ in range(count):
            _fill(draw, message, field, depth, repeated)
    return message


def _fill(draw: st.DrawFn, message: Message, field: Any, depth: int, repeated: bool) -> None:
    target: Any = getattr(message, field.name)
    value: Any
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if depth >= 4:
            return
        kind: Any = field.message_type
        value = draw(message_of(kind._concrete_class, depth + 1))
        if repeated:
            target.add().CopyFrom(value)
        else:
            target.CopyFrom(value)
        return
    if field.type == FieldDescriptor.TYPE_STRING:
        value = draw(STRINGS)
    elif field.type == FieldDescriptor.TYPE_BOOL:
        value = draw(st.booleans())
    elif field.type == FieldDescriptor.TYPE_ENUM:
        value = draw(st.integers(-3, 12))
    elif field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        value = draw(st.integers(-(2**63), 2**63 - 1))
    elif field.type == FieldDescriptor.TYPE_BYTES:
        value = draw(st.binary(max_size=80))
    else:
        value = draw(st.integers(-(2**31), 2**31 - 1))
    if repeated:
        target.append(value)
    else:
        setattr(message, field.name, value)


async def _call(gw: Gateway, rpc: str, agency: str, request: Message) -> grpc.StatusCode:
    stub = gw.cached(agency)
    try:
        if rpc == "WatchCase":
            # One message (or the end, or a refusal) is enough; then hang up. A watch with
            # nothing new to send (resumed past every event this party may see) stays open:
            # silence for a while is its designed answer, not a status.
            stream = stub.WatchCase(request, timeout=15)  # type: ignore[arg-type]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.read(), 5)
            stream.cancel()
        else:
            await getattr(stub, rpc)(request, timeout=15)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def _exists(gw: Gateway, case_ref: str) -> bool:
    try:
        await gw.client.get_workflow_handle(case_workflow_id(case_ref)).describe()
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND
        return False
    return True


@pytest.fixture(scope="module")
def case_refs() -> dict[str, str]:
    return {}


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_generated_request_gets_an_undesigned_status_or_changes_a_case(
    gateway: Gateway, case_refs: dict[str, str], rpc: str, data: st.DataObject
) -> None:
    if "waiting" not in case_refs:
        case_refs["waiting"] = await gateway.open_case(refused=True)
        await wait_for_state(
            gateway.cached(CSC), case_refs["waiting"], pb.CASE_STATE_AWAITING_CONSENT_DECISION
        )
    waiting = case_refs["waiting"]
    request = data.draw(message_of(REQUESTS[rpc]))
    if "case_ref" in request.DESCRIPTOR.fields_by_name:
        request.case_ref = data.draw(  # type: ignore[attr-defined]
            st.one_of(st.just(waiting), st.just("a" * 20), STRINGS), label="case_ref"
        )
    agency = data.draw(st.sampled_from(AGENCIES), label="agency")
    submitted = ""
    if rpc == "SubmitRequest":
        submitted = case_ref_for(agency, request.request.request_id)  # type: ignore[attr-defined]
    existed = bool(submitted) and await _exists(gateway, submitted)
    before = await gateway.history_lengths(waiting)

    code = await _call(gateway, rpc, agency, request)

    assert code in DESIGNED, f"{rpc} answered {code.name}"
    if code != grpc.StatusCode.OK:
        assert await gateway.history_lengths(waiting) == before, f"refused {rpc} changed the case"
        if submitted and not existed:
            assert not await _exists(gateway, submitted), "a refused request opened a case"


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_raw_bytes_never_get_an_undesigned_status(
    gateway: Gateway, rpc: str, data: st.DataObject
) -> None:
    """Bytes as they come off a wire: random, or a generated request with bytes flipped or
    cut, so some do not decode, some hold strings that are not UTF-8."""
    valid = data.draw(message_of(REQUESTS[rpc])).SerializeToString()
    body = data.draw(
        st.one_of(
            st.binary(max_size=200),
            st.just(valid[: len(valid) // 2]),
            st.integers(0, max(len(valid) - 1, 0)).map(
                lambda i: valid[:i] + b"\xff" + valid[i + 1 :]
            ),
        ),
        label="body",
    )
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{gateway.port}", tls.channel_credentials(gateway.pki.agency(CSC))
    )
    method = f"/sharing.v1.CaseService/{rpc}"
    try:
        if rpc == "WatchCase":
            stream: Any = channel.unary_stream(method)(body, timeout=15)  # type: ignore[arg-type]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.read(), 5)
            stream.cancel()
        else:
            await channel.unary_unary(method)(body, timeout=15)  # type: ignore[arg-type]
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        code = err.code()
    finally:
        await channel.close()
    assert code in DESIGNED, f"{rpc} answered {code.name} to raw bytes"
