"""Talking to a running sandbox agency's ``agency.v1.SandboxControlService``.

Used by ``safeshare sandbox-faults`` to switch fault toggles at run time and show what the
sandbox received; tests and the dev stack can use it the same way.
"""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from protos.agency.v1 import sandbox_control_pb2 as control_pb
from protos.agency.v1 import sandbox_control_pb2_grpc as control_grpc
from safeshare.tls import TlsFiles, channel_credentials

CALL_TIMEOUT_SECONDS = 10.0


class SandboxAdminError(Exception):
    """The sandbox refused or could not be reached; the message says which code."""


async def control_sandbox(
    target: str, tls: TlsFiles, faults: control_pb.Faults | None = None
) -> dict[str, object]:
    """Optionally replace a sandbox's fault toggles, then read back its state.

    Args:
        target: the sandbox's host:port.
        tls: a partnership certificate to call it with (any party's will do).
        faults: the new toggles, or None to only read them.

    Returns:
        JSON-ready: ``faults`` in force, ``calls`` by method, and ``received`` (ids only).

    Raises:
        SandboxAdminError: the call failed.
    """
    async with grpc.aio.secure_channel(target, channel_credentials(tls)) as channel:
        stub = control_grpc.SandboxControlServiceStub(channel)
        try:
            if faults is not None:
                await stub.SetFaults(
                    control_pb.SetFaultsRequest(faults=faults), timeout=CALL_TIMEOUT_SECONDS
                )
            state = await stub.GetFaults(
                control_pb.GetFaultsRequest(), timeout=CALL_TIMEOUT_SECONDS
            )
            received = await stub.ListReceived(
                control_pb.ListReceivedRequest(), timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as err:
            raise SandboxAdminError(
                f"sandbox at {target}: {err.code().name}: {err.details()}"
            ) from None
    return {
        "faults": json_format.MessageToDict(state.faults),
        "calls": dict(state.calls),
        "received": json_format.MessageToDict(received),
    }
