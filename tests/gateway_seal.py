"""The tests' gateway key: a fixed Ed25519 key standing in for the gateway's, and a Temporal
client interceptor that seals commands with it as the gateway would.

There is no hub mode without a gateway key (the gate refuses what the key did not seal), so a
test that drives the workflows without the gateway plays the gateway itself: its hub's gate
reads ``gateway_key_file()`` and its client seals every start, update and signal whose message
has a ``gateway_seal`` and carries none yet. A message already sealed (or a client without the
interceptor) goes as it is, so forged commands stay forged.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message
from temporalio import client
from temporalio.testing import WorkflowEnvironment

from protos.sharing.v1 import case_pb2 as pb
from safeshare.gateway.signing import GatewaySigner
from workflows import seal

TEST_SIGNER = GatewaySigner(
    Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"safeshare tests' gateway").digest())
)
"""The key the tests' gateway seals with (never a deployment's: it is derived from a constant)."""


@cache
def gateway_key_file() -> Path:
    """The tests' gateway public key as the partnership would publish it (a PEM file)."""
    folder = Path(tempfile.mkdtemp(prefix="safeshare-test-gateway-"))
    path = folder / "gateway.pub"
    path.write_bytes(TEST_SIGNER.public_pem())
    return path


def sealed(message: Any, workflow_id: str, command_id: str) -> Any:
    """``message`` sealed by the tests' gateway, unless it is not a command or already sealed."""
    if not isinstance(message, Message) or seal.SEAL_FIELD not in message.DESCRIPTOR.fields_by_name:
        return message
    if getattr(message, seal.SEAL_FIELD).signature:
        return message
    if isinstance(message, pb.ConsentWithdrawalNoticeInput) and (
        not message.withdrawal.gateway_seal.signature
    ):
        inner = pb.ConsentWithdrawalNoticeInput()
        inner.CopyFrom(message)
        inner.withdrawal.CopyFrom(TEST_SIGNER.sealed(message.withdrawal, workflow_id, seal.START))
        message = inner
    return TEST_SIGNER.sealed(message, workflow_id, command_id)


class SealAsTheGateway(client.Interceptor):
    """Seals every unsealed command a client sends with the tests' gateway key."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _Sealing(next)


class _Sealing(client.OutboundInterceptor):
    async def start_workflow(
        self, input: client.StartWorkflowInput
    ) -> client.WorkflowHandle[Any, Any]:
        input.args = [sealed(arg, input.id, seal.START) for arg in input.args]
        return await super().start_workflow(input)

    async def start_workflow_update(
        self, input: client.StartWorkflowUpdateInput
    ) -> client.WorkflowUpdateHandle[Any]:
        if input.update_id is None:
            input.update_id = str(uuid.uuid4())
        input.args = [sealed(arg, input.id, input.update_id) for arg in input.args]
        return await super().start_workflow_update(input)


def sealing_client(unsealed: client.Client) -> client.Client:
    """``unsealed``'s connection and settings, sealing as the tests' gateway."""
    config = unsealed.config()
    config["interceptors"] = [*config["interceptors"], SealAsTheGateway()]
    return client.Client(**config)


def without_sealing(sealing: client.Client) -> client.Client:
    """A client like ``sealing`` that sends commands as they are (an attacker's)."""
    config = sealing.config()
    config["interceptors"] = [
        i for i in config["interceptors"] if not isinstance(i, SealAsTheGateway)
    ]
    return client.Client(**config)


def sealing_env(env: WorkflowEnvironment) -> WorkflowEnvironment:
    """``env`` if its client seals as the tests' gateway (the time-skipping fixture's does);
    else an environment on the same server whose client does (the dev server's)."""
    if any(isinstance(i, SealAsTheGateway) for i in env.client.config()["interceptors"]):
        return env
    return WorkflowEnvironment.from_client(sealing_client(env.client))
