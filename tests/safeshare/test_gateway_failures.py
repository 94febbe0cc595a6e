"""How the gateway answers Temporal's own failures: transient ones as UNAVAILABLE (the caller
may retry), anything else as INTERNAL, never with Temporal's message."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.service import RPCError, RPCStatusCode

from safeshare.gateway.servicer import _failure


def _rpc_error(status: RPCStatusCode, *details: object) -> RPCError:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)  # type: ignore[arg-type]
        packed.append(any_detail)
    raw = GrpcStatus(code=status.value, message="quoted text", details=packed)
    return RPCError("quoted text", status, raw.SerializeToString())


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # A workflow whose first workflow task is still running (a busy hub).
        (
            _rpc_error(RPCStatusCode.FAILED_PRECONDITION, WorkflowNotReadyFailure()),
            grpc.StatusCode.UNAVAILABLE,
        ),
        (_rpc_error(RPCStatusCode.UNAVAILABLE), grpc.StatusCode.UNAVAILABLE),
        (_rpc_error(RPCStatusCode.DEADLINE_EXCEEDED), grpc.StatusCode.UNAVAILABLE),
        (_rpc_error(RPCStatusCode.CANCELLED), grpc.StatusCode.UNAVAILABLE),
        # Also without the detail (seen around a server restart): the request itself was valid.
        (_rpc_error(RPCStatusCode.FAILED_PRECONDITION), grpc.StatusCode.UNAVAILABLE),
        (_rpc_error(RPCStatusCode.INVALID_ARGUMENT), grpc.StatusCode.INTERNAL),
        (ValueError("quoted text"), grpc.StatusCode.INTERNAL),
    ],
)
def test_temporal_failures_map_to_designed_codes(
    error: Exception, expected: grpc.StatusCode
) -> None:
    answer = _failure("GetCase", error)

    assert answer.code == expected
    assert "quoted text" not in answer.message
