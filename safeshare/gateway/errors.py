"""Refusals as gRPC statuses with rich details (``google.rpc.Status`` + ``BadRequest``).

Messages and field violations carry field paths and codes only, never values from the request:
a request holds personal data, and status messages end up in callers' logs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from safeshare.gateway.fields import (
    FieldViolation,
)


class GatewayError(Exception):
    """A call the gateway refuses, with the status code and details the caller receives.

    Args:
        code: the gRPC status code.
        message: what went wrong, in codes and field paths only.
        violations: the fields at fault, sent as a ``google.rpc.BadRequest`` detail.
        retry_after: seconds the caller should wait before retrying, sent as a
            ``google.rpc.RetryInfo`` detail (None: no advice).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = tuple(violations)
        self.retry_after = retry_after


def invalid_argument(violations: Sequence[FieldViolation]) -> GatewayError:
    """INVALID_ARGUMENT listing every field violation."""
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "invalid request", violations)


def rich_status(error: GatewayError) -> grpc.Status:
    """The ``grpc.Status`` for ``error``, with a ``BadRequest`` detail if it names fields."""
    status = status_pb2.Status(code=_proto_code(error.code), message=error.message)
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    if error.retry_after is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(dt.timedelta(seconds=error.retry_after))
        detail = any_pb2.Any()
        detail.Pack(retry)
        status.details.append(detail)
    result: grpc.Status = rpc_status.to_status(status)
    return result


async def abort(context: grpc.aio.ServicerContext, error: GatewayError) -> NoReturn:
    """End the call with ``error`` as a rich status.

    Raises:
        Exception: always; grpc.aio's abort raises to unwind the handler.
    """
    await context.abort_with_status(rich_status(error))


def _proto_code(code: grpc.StatusCode) -> int:
    # grpc.StatusCode values are (int, name) pairs; google.rpc.Code uses the same numbers.
    return int(code.value[0])
