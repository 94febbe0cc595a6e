"""gRPC status codes become retryable or non-retryable Temporal errors, with no agency words."""

from __future__ import annotations

import grpc
import pytest

from activities.agency import ApplicationErrorType
from agency_adapters.errors import from_rpc_error

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}
FAILURES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]
AGENCY_WORDS = "no record for Amara Okafor-Test born 2016-03-14"


def _rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=AGENCY_WORDS
    )


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_every_code_maps_to_the_agreed_type_with_its_name_first(code: grpc.StatusCode) -> None:
    error = from_rpc_error("LookupConsent", _rpc_error(code))

    assert error.details[0] == code.name
    if code in RETRYABLE:
        assert error.type == ApplicationErrorType.AGENCY_UNAVAILABLE
        assert not error.non_retryable
        assert error.message == f"LookupConsent failed: {code.name}"
    else:
        assert error.type == ApplicationErrorType.AGENCY_REJECTED
        assert error.non_retryable
        assert error.message == f"LookupConsent refused: {code.name}"


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_the_agency_details_string_never_reaches_the_error(code: grpc.StatusCode) -> None:
    error = from_rpc_error("ExtractRecords", _rpc_error(code))

    assert "Okafor" not in str(error)
    assert all("Okafor" not in str(detail) for detail in error.details)
