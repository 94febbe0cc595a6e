"""Admission to the Case API, before any handler runs: whose certificate, is it revoked, and
is that agency within its share of the gateway.

A ``grpc.aio`` server interceptor wraps every CaseService method:

- **Identity** (``certificate_agency``): the caller's certificate must name exactly one agency.
  The agency is read from a SAN URI ``urn:safeshare:agency:<agency id>`` when the certificate
  has one (the partnership CA issues them so), else from the subject's common name; a
  certificate with more than one CN, or more than one agency URI, names nobody and is refused.
- **Revocation** (``RevocationList``): with a CRL configured (``safeshare gateway --crl``, the
  partnership CA's list, PEM or DER), a certificate whose serial the list revokes is refused.
  The list must verify against the CA; the file is re-read when it changes. A configured list
  that is missing, unreadable or not signed by the CA refuses every call (fail closed).
- **Fair shares** (``Quotas``): each agency may hold at most ``calls_per_agency`` calls and
  ``watches_per_agency`` WatchCase streams at once (beyond: RESOURCE_EXHAUSTED with a
  ``google.rpc.RetryInfo``), so one agency cannot take every slot of the gateway; and a watch
  lives at most ``max_watch_seconds``, then ends UNAVAILABLE with a RetryInfo of zero: the
  caller resumes with ``from_event`` (streams are not held for ever by idle callers).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509.oid import NameOID

from safeshare.gateway.errors import GatewayError, abort
from safeshare.gateway.interceptor import MethodInterceptor

AGENCY_URI_PREFIX = "urn:safeshare:agency:"
REVOKED = "the caller's certificate is revoked"
BUSY_RETRY_SECONDS = 1.0
NOT_ONE_IDENTITY = "the caller's certificate must name exactly one agency"
NO_REVOCATION_LIST = "the certificate revocation list is unavailable; retry later"

log = structlog.get_logger("safeshare.gateway.admission")


def peer_certificate(context: grpc.aio.ServicerContext) -> x509.Certificate | None:
    """The caller's verified client certificate, if it presented one."""
    pems = list(context.auth_context().get("x509_pem_cert") or [])
    if len(pems) != 1:
        return None
    try:
        return x509.load_pem_x509_certificate(pems[0])
    except ValueError:
        return None


def certificate_agency(cert: x509.Certificate) -> str | None:
    """The one agency ``cert`` names, or None if it names none or several."""
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(common_names) != 1:
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    agencies = [
        uri.removeprefix(AGENCY_URI_PREFIX) for uri in uris if uri.startswith(AGENCY_URI_PREFIX)
    ]
    if len(agencies) > 1:
        return None
    if agencies:
        return agencies[0] or None
    value = common_names[0].value
    return value if isinstance(value, str) and value else None


class RevocationError(Exception):
    """The revocation list cannot be used: missing, unreadable, or not signed by the CA."""


class RevocationList:
    """The partnership CA's CRL, re-read when the file changes."""

    def __init__(self, crl_path: Path, ca_path: Path) -> None:
        self._path = crl_path
        self._ca_path = ca_path
        self._stamp: tuple[int, int] | None = None
        self._crl: x509.CertificateRevocationList | None = None

    def current(self) -> x509.CertificateRevocationList:
        """The list as the file holds it now.

        Raises:
            RevocationError: it cannot be read, or does not verify against the CA.
        """
        try:
            stat = self._path.stat()
        except OSError as err:
            raise RevocationError(f"cannot read the CRL {self._path}: {err.strerror}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._crl is None or stamp != self._stamp:
            self._crl = self._load()
            self._stamp = stamp
            log.info("crl_loaded", revoked=len(self._crl))
        return self._crl

    def is_revoked(self, cert: x509.Certificate) -> bool:
        """Whether the list revokes ``cert``.

        Raises:
            RevocationError: the list cannot be used.
        """
        crl = self.current()
        next_update = crl.next_update_utc
        if next_update is not None and next_update < dt.datetime.now(dt.UTC):
            # Still used (a stale list beats none); operators must publish a fresh one.
            log.warning("crl_stale", next_update=next_update.isoformat())
        return crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None

    def _load(self) -> x509.CertificateRevocationList:
        try:
            data = self._path.read_bytes()
            ca = x509.load_pem_x509_certificate(self._ca_path.read_bytes())
        except OSError as err:
            raise RevocationError(f"cannot read the CRL or CA: {err.strerror}") from None
        try:
            crl = (
                x509.load_pem_x509_crl(data)
                if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_crl(data)
            )
        except ValueError:
            raise RevocationError(f"{self._path} is not a CRL") from None
        key = ca.public_key()
        signed = isinstance(key, RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey) and (
            crl.is_signature_valid(key)
        )
        if not signed:
            raise RevocationError(f"{self._path} is not signed by the partnership CA")
        return crl


@dataclass(frozen=True)
class Quotas:
    """One agency's share of the gateway."""

    calls_per_agency: int = 64
    """Unary calls in flight at once, per agency (the server's own cap is 1,000 in all)."""
    watches_per_agency: int = 16
    """WatchCase streams open at once, per agency (the servicer's own cap is for all)."""
    max_watch_seconds: float = 3600.0
    """How long one WatchCase stream may stay open."""


class Admission(MethodInterceptor):
    """Refuses, before the handler, a caller whose certificate names no single agency's
    identity or is revoked (PERMISSION_DENIED), and every call while a configured revocation
    list is unusable (UNAVAILABLE)."""

    def __init__(
        self,
        service: str,
        revocation: RevocationList | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        super().__init__(service)
        self._revocation = revocation
        self._quotas = quotas or Quotas()
        self._calls: Counter[str] = Counter()
        self._watches: Counter[str] = Counter()

    async def admit(self, context: grpc.aio.ServicerContext) -> str | None:
        """The caller's agency id as its certificate names it, or abort the call."""
        cert = peer_certificate(context)
        agency = certificate_agency(cert) if cert is not None else None
        if cert is None or agency is None:
            log.info("admission_refused", reason="certificate_identity")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, NOT_ONE_IDENTITY)
        if self._revocation is not None:
            try:
                revoked = self._revocation.is_revoked(cert)
            except RevocationError as err:
                log.error("crl_unusable", error=str(err))
                await context.abort(grpc.StatusCode.UNAVAILABLE, NO_REVOCATION_LIST)
            if revoked:
                log.info("admission_refused", reason="revoked", agency_id=agency)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, REVOKED)
        return agency

    @contextlib.asynccontextmanager
    async def around(
        self, rpc: str, request: Any, context: grpc.aio.ServicerContext, stream: bool
    ) -> AsyncIterator[None]:
        agency = await self.admit(context) or ""
        held, limit = (
            (self._watches, self._quotas.watches_per_agency)
            if stream
            else (self._calls, self._quotas.calls_per_agency)
        )
        if held[agency] >= limit:
            kind = "watches" if stream else "calls"
            log.warning("agency_quota_reached", kind=kind, agency_id=agency)
            busy = "too many watches open" if stream else "too many calls in flight"
            await abort(context, _busy(f"{busy} from your agency"))
        held[agency] += 1
        try:
            async with asyncio.timeout(self._quotas.max_watch_seconds if stream else None):
                yield
        except TimeoutError:
            if not stream:
                raise  # a unary call's own timeout, not ours
            await abort(
                context,
                GatewayError(
                    grpc.StatusCode.UNAVAILABLE,
                    "the watch reached its maximum life; resume with from_event",
                    retry_after=0.0,
                ),
            )
        finally:
            held[agency] -= 1


def _busy(message: str) -> GatewayError:
    return GatewayError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, retry_after=BUSY_RETRY_SECONDS)
