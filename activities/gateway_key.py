"""The gateway's public signing key as the partnership publishes it (a PEM file beside the
registry), read by the protocol gate for every case it checks, so a rotated key counts for new
cases without a restart."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GATEWAY_PUBLIC_KEY_ENV = "SAFESHARE_GATEWAY_PUBLIC_KEY_FILE"


class GatewayKeyError(Exception):
    """The gateway's public key file is missing or not an Ed25519 public key."""


def load_gateway_public_key(path: Path) -> bytes:
    """The raw 32-byte Ed25519 public key in the PEM file at ``path``.

    Raises:
        GatewayKeyError: unreadable, or not an Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise GatewayKeyError(
            f"cannot read the gateway's public key {path}: {err.strerror}"
        ) from None
    except ValueError:
        raise GatewayKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise GatewayKeyError(f"{path} is not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
