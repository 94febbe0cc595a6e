"""Ed25519 signature verification (RFC 8032) for the workflows' check of the gateway's seal.

``cryptography``'s native bindings abort the worker when Temporal's sandbox imports them again or
calls them under its restrictions, so they are imported once outside the sandbox (passed
through, under any runner) and called with the restrictions lifted and imports passed through.
Verification is a pure function of public inputs, so it is deterministic and safe to replay.
Signing stays in the gateway.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        with workflow.unsafe.sandbox_unrestricted(), workflow.unsafe.imports_passed_through():
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
