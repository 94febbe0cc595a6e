"""The sandbox agency's fault toggles: a system that is down, slow, failing, or losing replies.

Set at start (``safeshare sandbox-agency --fault-...``) and at run time through
``agency.v1.SandboxControlService``. The servicer asks :class:`FaultInjector` before handling
each call and, for ReceiveDelivery, after committing it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc

from protos.agency.v1 import sandbox_control_pb2 as control_pb

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_FAIL_CODE = grpc.StatusCode.UNAVAILABLE


class FaultError(ValueError):
    """Fault toggles that make no sense (an unknown status code, or OK)."""


def parse_status_code(name: str) -> grpc.StatusCode:
    """The gRPC status code named ``name`` (empty: UNAVAILABLE).

    Raises:
        FaultError: no such code, or OK, which is not a failure.
    """
    if not name:
        return DEFAULT_FAIL_CODE
    try:
        code = grpc.StatusCode[name.upper()]
    except KeyError:
        raise FaultError(f"unknown status code: {name!r}") from None
    if code is grpc.StatusCode.OK:
        raise FaultError("OK is not a failure")
    return code


class FaultInjector:
    """Holds the toggles, counts calls, and fails or delays them as the toggles say."""

    def __init__(self, faults: control_pb.Faults | None = None) -> None:
        """Args:
        faults: the toggles at start; none by default.

        Raises:
            FaultError: ``faults.fail_code`` is not a failure code.
        """
        self._faults = control_pb.Faults()
        self.calls: Counter[str] = Counter()
        """AgencyService calls received, by method name (faulted ones included)."""
        self.set(faults or control_pb.Faults())

    def set(self, faults: control_pb.Faults) -> control_pb.Faults:
        """Replace every toggle.

        Raises:
            FaultError: ``faults.fail_code`` is not a failure code; nothing changes.
        """
        parse_status_code(faults.fail_code)
        self._faults.CopyFrom(faults)
        return self.get()

    def get(self) -> control_pb.Faults:
        """A copy of the toggles in force."""
        faults = control_pb.Faults()
        faults.CopyFrom(self._faults)
        return faults

    def _applies(self, rpc: str) -> bool:
        return not self._faults.rpcs or rpc in self._faults.rpcs

    async def before_call(self, rpc: str, context: Context) -> None:
        """Count the call, then delay or fail it as the toggles say (it may abort)."""
        self.calls[rpc] += 1
        if not self._applies(rpc):
            return
        faults = self._faults
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        if faults.unavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "sandbox fault: unavailable")
        if faults.fail_next:
            faults.fail_next -= 1
            await context.abort(
                parse_status_code(faults.fail_code), "sandbox fault: failing the next calls"
            )

    def drop_reply(self, rpc: str) -> bool:
        """Whether to lose the reply of a call that has committed (and count it used)."""
        if not self._applies(rpc) or not self._faults.drop_replies_after_commit:
            return False
        self._faults.drop_replies_after_commit -= 1
        return True
