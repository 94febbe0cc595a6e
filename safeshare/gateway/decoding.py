"""Requests as bytes: every CaseService request is decoded, and its shape checked, before any
handler runs, so a bad request answers INVALID_ARGUMENT (never UNKNOWN or INTERNAL) and
reaches neither the servicer nor Temporal.

grpc calls a method's request deserializer before the handler; when it raises (bytes that are
not the message, a string field holding invalid UTF-8, a message field sent as a string), grpc
answers the caller with a status of its own. This server interceptor gives each method a
deserializer that does not raise: it hands on ``Undecodable``, and the method's behaviour
answers INVALID_ARGUMENT. A decoded request whose shape breaks ``bounds`` (control
characters, lengths, counts, unknown enum numbers) is refused the same way, with a
``google.rpc.BadRequest`` field violation for each field, and with the violations of the RPC's
own structural checks (``CONTENT_CHECKS``, the servicer's, pure) on the other fields, so a
caller still fixes its request in one round trip.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError

from safeshare.gateway import disclosure_validation, listing, validation
from safeshare.gateway.bounds import shape_violations
from safeshare.gateway.errors import GatewayError, abort, invalid_argument
from safeshare.gateway.fields import FieldViolation
from safeshare.gateway.interceptor import Deserializer, MethodInterceptor
from safeshare.metrics import count_gateway_request

log = structlog.get_logger("safeshare.gateway.decoding")


def _case_ref(request: Any) -> list[FieldViolation]:
    return validation.validate_case_ref(request.case_ref)


CONTENT_CHECKS: dict[str, Callable[[Any], list[FieldViolation]]] = {
    "SubmitRequest": validation.validate_submit,
    "RecordConsent": validation.validate_record_consent,
    "ProposeOverride": validation.validate_propose_override,
    "DecideOverride": validation.validate_decide_override,
    "ShareFirst": validation.validate_share_first,
    "DeclineToShare": validation.validate_decline_to_share,
    "WithdrawRequest": validation.validate_withdraw_request,
    "ChangeUrgency": validation.validate_change_urgency,
    "WithdrawConsent": validation.validate_withdraw_consent,
    "Acknowledge": validation.validate_acknowledge,
    "SubmitDisclosure": disclosure_validation.validate_submit_disclosure,
    "RecordDisclosureNotMade": disclosure_validation.validate_not_made,
    "DecideDisclosure": disclosure_validation.validate_decide_disclosure,
    "ListCases": listing.validate_list_cases,
    "GetCase": _case_ref,
    "WatchCase": _case_ref,
    "ListAccessEvents": _case_ref,
}
"""Each RPC's structural checks that need no registry and no case: reported beside the
shape's violations when a request breaks its shape."""


@dataclass(frozen=True)
class Undecodable:
    """What the deserializer hands on for bytes that are not the method's request message."""

    type_name: str


def not_decodable(type_name: str) -> GatewayError:
    """INVALID_ARGUMENT for a request that does not decode (no field can be named)."""
    return GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the request is not a valid {type_name} message (or a string in it is not UTF-8)",
    )


class RequestShape(MethodInterceptor):
    """Decodes without raising, and refuses a request that does not decode or breaks the
    bounds, for every method of ``service``."""

    @contextlib.asynccontextmanager
    async def around(
        self, rpc: str, request: Any, context: grpc.aio.ServicerContext, stream: bool
    ) -> AsyncIterator[None]:
        await _refuse_if_bad(rpc, request, context)
        yield

    def deserializer(self, inner: Deserializer | None) -> Deserializer | None:
        return _tolerant(inner)


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    type_name = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    name = type_name.full_name if type_name is not None else "request"

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, TypeError):
            # 👉 upb refuses a string field that is not UTF-8 here, as a DecodeError.
            return Undecodable(name)

    return decode


async def _refuse_if_bad(rpc: str, request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, Undecodable):
        log.info("request_refused", rpc=rpc, reason="not_decodable")
        count_gateway_request(rpc, grpc.StatusCode.INVALID_ARGUMENT.name)
        await abort(context, not_decodable(request.type_name))
    violations = shape_violations(request)
    if violations:
        check = CONTENT_CHECKS.get(rpc)
        shaped = {v.field for v in violations}
        if check is not None:
            violations += [v for v in check(request) if v.field not in shaped]
        log.info("request_refused", rpc=rpc, reason="shape", fields=len(violations))
        count_gateway_request(rpc, grpc.StatusCode.INVALID_ARGUMENT.name)
        await abort(context, invalid_argument(violations))
