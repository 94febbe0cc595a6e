"""The development PKI: a private CA and a certificate for every part of the dev stack.

Layout under ``<root>`` (``.safeshare/dev/pki`` for the dev stack)::

    ca.pem, ca.key                   the partnership's private CA
    gateway/{cert,key}.pem           the Case API server (localhost, 127.0.0.1)
    codec/{cert,key}.pem             reserved for the codec server
    agencies/<id>/{cert,key}.pem     agency <id>'s system as a Case API client (CN=<id>);
                                     the sandbox agency also serves agency.v1 with it
    adapters/<id>/{cert,key}.pem     SafeShare's adapter for <id>, calling that agency's
                                     system (CN=adapter.<id>)
    gateway/signing.key, signing.pub the gateway's Ed25519 key that seals every command, and
                                     the public half the hub's protocol gate reads

Made once and reused: a second start keeps every existing file and adds what is missing.
Private keys are written with mode 0600.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import trustme

from safeshare.tls import TlsFiles

LOOPBACK_IDENTITIES = ("localhost", "127.0.0.1")


class DevPki:
    """A private CA on disk that issues the dev stack's certificates."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ca: trustme.CA | None = None

    @property
    def ca_path(self) -> Path:
        """The CA certificate every party trusts."""
        return self.root / "ca.pem"

    def _load_or_create_ca(self) -> trustme.CA:
        if self._ca is None:
            key_path = self.root / "ca.key"
            if self.ca_path.exists() and key_path.exists():
                self._ca = trustme.CA.from_pem(self.ca_path.read_bytes(), key_path.read_bytes())
            else:
                self.root.mkdir(parents=True, exist_ok=True)
                self._ca = trustme.CA(organization_name="SafeShare development partnership")
                self._ca.cert_pem.write_to_path(str(self.ca_path))
                _write_private(key_path, self._ca.private_key_pem.bytes())
        return self._ca

    def _files(self, name: str) -> TlsFiles:
        folder = self.root / name
        return TlsFiles(ca=self.ca_path, cert=folder / "cert.pem", key=folder / "key.pem")

    def _issue(self, name: str, common_name: str, identities: Iterable[str]) -> TlsFiles:
        files = self._files(name)
        if files.cert.exists() and files.key.exists():
            return files
        ca = self._load_or_create_ca()
        leaf = ca.issue_cert(*identities, common_name=common_name)
        files.cert.parent.mkdir(parents=True, exist_ok=True)
        files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        _write_private(files.key, leaf.private_key_pem.bytes())
        return files

    def gateway(self) -> TlsFiles:
        """The Case API server's certificate."""
        return self._issue("gateway", "safeshare-gateway", LOOPBACK_IDENTITIES)

    def gateway_signing_key(self) -> tuple[Path, Path]:
        """The gateway's command-signing key and its public half (made on first use)."""
        from safeshare.gateway.signing import ensure_signing_key

        private, public = (
            self.root / "gateway" / "signing.key",
            self.root / "gateway" / "signing.pub",
        )
        ensure_signing_key(private, public)
        return private, public

    def agency(self, agency_id: str) -> TlsFiles:
        """Agency ``agency_id``'s certificate: its identity on the Case API (CN=agency id),
        and the server certificate of its (sandbox) agency system."""
        return self._issue(
            f"agencies/{agency_id}",
            agency_id,
            (*LOOPBACK_IDENTITIES, f"{agency_id}.agency.invalid"),
        )

    def adapter(self, agency_id: str) -> TlsFiles:
        """The certificate SafeShare's adapter for ``agency_id`` presents to that agency."""
        return self._issue(
            f"adapters/{agency_id}", f"adapter.{agency_id}", (f"adapter.{agency_id}.invalid",)
        )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
