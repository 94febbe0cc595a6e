"""TLS material on disk and the gRPC credentials built from it.

Every SafeShare gRPC connection is mutual TLS: servers demand a client certificate signed by
the partnership CA, and the caller's identity is the certificate's common name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


class TlsError(Exception):
    """TLS material is missing or unreadable."""


@dataclass(frozen=True)
class TlsFiles:
    """Paths of a CA bundle, a certificate chain and its private key (PEM)."""

    ca: Path
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        """The CA, certificate and key bytes.

        Raises:
            TlsError: one of the files cannot be read.
        """
        try:
            return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()
        except OSError as err:
            raise TlsError(f"cannot read TLS material: {err}") from err


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate signed by ``files.ca``."""
    ca, cert, key = files.read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Channel credentials that present ``files.cert`` and trust only ``files.ca``."""
    ca, cert, key = files.read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def peer_common_name(context: grpc.aio.ServicerContext) -> str | None:
    """The common name of the caller's verified client certificate, if it presented one."""
    auth = context.auth_context()
    names = list(auth.get("x509_common_name") or [])
    if len(names) != 1:
        return None
    return names[0].decode("utf-8", errors="replace")
