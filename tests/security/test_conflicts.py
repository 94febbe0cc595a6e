"""Conflicts: a request id reused with a different body, and Temporal refusing for load.

The same request id with another child used to return the old case (`created=false`) without
a word; Temporal's RESOURCE_EXHAUSTED (the in-flight update limit) answered INTERNAL.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from temporalio.service import RPCError, RPCStatusCode

from safeshare.codec.aes import ENCODING
from safeshare.gateway.errors import rich_status
from safeshare.gateway.servicer import REQUEST_DIGEST_MEMO, _failure
from tests.safeshare.gateway_support import CSC, SCHOOL, new_request
from tests.security.test_forged_decisions import Stack, stack
from workflows.ids import case_ref_for, case_workflow_id

__all__ = ["stack"]  # the module's fixture, shared with the forged-decision tests

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_request_id_reused_for_another_child_is_already_exists(stack: Stack) -> None:
    call = new_request(SCHOOL)
    ref = case_ref_for(CSC, call.request.request_id)
    first = await stack.stub(CSC).SubmitRequest(call)
    assert first.created and first.case_ref == ref
    # The same body again (a retry after a lost reply) finds the case.
    again = await stack.stub(CSC).SubmitRequest(call)
    assert (again.case_ref, again.created) == (ref, False)
    other = type(call)()
    other.CopyFrom(call)
    other.request.subjects[0].given_name = "Another"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.stub(CSC).SubmitRequest(other)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert ref in (raised.value.details() or "")
    assert "Another" not in (raised.value.details() or "")
    # The memo holds a keyed digest of the request, and the case's view only encrypted: as
    # Temporal stores it, no field of the memo carries a name or a date of birth.
    described = await stack.system.get_workflow_handle(case_workflow_id(ref)).describe()
    digest = await described.memo_value(REQUEST_DIGEST_MEMO, "")
    assert len(digest) == 64
    stored = described.raw_description.workflow_execution_info.memo.fields
    assert stored, "the case keeps no memo"
    for name, payload in stored.items():
        assert payload.metadata.get("encoding") == ENCODING, name
        assert b"Testchild" not in payload.SerializeToString(), name
        assert b"2016-03-04" not in payload.SerializeToString(), name


def test_temporal_resource_exhausted_is_resource_exhausted_with_retry_info() -> None:
    busy = RPCError("too many updates in flight", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    error = _failure("ChangeUrgency", busy)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(rich_status(error).trailing_metadata)["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    [packed] = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    retry = error_details_pb2.RetryInfo()
    packed.Unpack(retry)
    assert retry.retry_delay.ToTimedelta().total_seconds() > 0
    # Temporal down: UNAVAILABLE, also with the advice to retry.
    down = _failure("GetCase", RPCError("down", RPCStatusCode.UNAVAILABLE, b""))
    assert down.code == grpc.StatusCode.UNAVAILABLE and down.retry_after
