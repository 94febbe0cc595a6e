"""The gateway's seal on a command: what is signed, and the check the workflows make.

Only the gateway decides. Every command it forwards to a workflow (a case's start, every
decision Update) carries a ``GatewaySeal``: an Ed25519 signature by the gateway's key over

    "safeshare-command-v1" | workflow id | command id | message type | message

each part length-prefixed, the message in deterministic protobuf serialization with the seal and
the fields the workflows stamp themselves cleared. The command id is the Temporal update id (a
case's start: ``START``), so a sealed decision cannot be replayed as another update, and the
workflow id binds it to one case or exchange.

The public key reaches a case from the hub's protocol gate, which reads it from the partnership's
configuration (never from the workflow's input, which whoever starts the workflow chooses); the
gate's result is in the case's history, and the case hands the key to its exchanges.

Pure and deterministic (Ed25519 verification is a function of its inputs), so validators run it
inside the sandbox (``workflows.ed25519``).
"""

from __future__ import annotations

import struct

from google.protobuf.message import Message

from workflows import ed25519

START = "start"
"""The command id of a case's start request."""
SEAL_FIELD = "gateway_seal"
DOMAIN = b"safeshare-command-v1"
# Stamped by the workflows after the gateway signed (the gateway clears a caller's value).
STAMPED_FIELDS = (
    "decided_at",
    "proposed_at",
    "withdrawn_at",
    "changed_at",
    "acknowledged_at",
    "recipient_notified",
)


class SealError(Exception):
    """A command is not sealed by the gateway, or not for this workflow and command."""


def canonical(workflow_id: str, command_id: str, message: Message) -> bytes:
    """The bytes the gateway signs for ``message`` addressed to ``workflow_id``."""
    body = type(message)()
    body.CopyFrom(message)
    fields = body.DESCRIPTOR.fields_by_name
    for name in (SEAL_FIELD, *STAMPED_FIELDS):
        if name in fields:
            body.ClearField(name)
    parts = [
        DOMAIN,
        workflow_id.encode(),
        command_id.encode(),
        body.DESCRIPTOR.full_name.encode(),
        body.SerializeToString(deterministic=True),
    ]
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def check(
    public_key: bytes, workflow_id: str, message: Message, command_id: str | None = None
) -> None:
    """Raise unless ``message`` carries the gateway's seal for ``workflow_id``.

    ``command_id``: the id the seal must name (an update's id); None accepts the one it names
    (a signal forwarded by the case, sealed for the case's own update).

    Raises:
        SealError: no key yet, no seal, another command's seal, or a signature that fails.
    """
    if not public_key:
        raise SealError("the gateway's key is not known to this case yet")
    seal = getattr(message, SEAL_FIELD)
    if not seal.signature:
        raise SealError("the command is not sealed by the gateway")
    if command_id is not None and seal.command_id != command_id:
        raise SealError("the gateway's seal is for another command")
    if not ed25519.verify(
        public_key, canonical(workflow_id, seal.command_id, message), seal.signature
    ):
        raise SealError("the gateway's seal does not verify")
