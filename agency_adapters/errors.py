"""How a failed call to an agency system becomes a Temporal error.

Temporal is the one retry layer, so the adapter only decides *whether* a failure is worth
retrying: transient gRPC status codes become a retryable ``AgencyUnavailable``; refusals
that will never succeed become a non-retryable ``AgencyRejected``. The workflow reads the
status code name from ``details[0]``.

Failure messages are stored in Temporal unencrypted, so they carry the RPC name and the code
only: never the agency's own error details, which may quote personal data.
"""

from __future__ import annotations

import grpc
from temporalio.exceptions import ApplicationError

from activities.agency import ApplicationErrorType

RETRYABLE_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        # A call cancelled on our side (e.g. the worker shutting down) may well succeed later.
        grpc.StatusCode.CANCELLED,
    }
)
"""Status codes that mean "try again later". Every other code is a refusal."""


def agency_error(rpc: str, code: grpc.StatusCode) -> ApplicationError:
    """The Temporal error for an agency RPC that ended with ``code``.

    Raise it ``from None``: a chained gRPC error would be serialised into the failure's cause,
    agency details and all.

    Args:
        rpc: the ``agency.v1.AgencyService`` method name, e.g. "LookupConsent".
        code: the status code the call ended with (not OK).

    Returns:
        A retryable ``AgencyUnavailable`` for transient codes, otherwise a non-retryable
        ``AgencyRejected``; either way with the code name as the first detail.
    """
    if code in RETRYABLE_CODES:
        return ApplicationError(
            f"{rpc} failed: {code.name}", code.name, type=ApplicationErrorType.AGENCY_UNAVAILABLE
        )
    return ApplicationError(
        f"{rpc} refused: {code.name}",
        code.name,
        type=ApplicationErrorType.AGENCY_REJECTED,
        non_retryable=True,
    )


def from_rpc_error(rpc: str, error: grpc.aio.AioRpcError) -> ApplicationError:
    """The Temporal error for a failed agency call; see :func:`agency_error`.

    Args:
        rpc: the ``agency.v1.AgencyService`` method name.
        error: what the gRPC call raised. Its details string is deliberately dropped.
    """
    return agency_error(rpc, error.code())
