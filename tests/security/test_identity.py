"""Identity is one agency, from the certificate the partnership CA issued and has not revoked.

A certificate `CN=northshire-police, CN=riverside-gp` was the police (reversed, the GP); SANs
were ignored; there was no revocation. Over real mTLS against the real gateway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import create_gateway_server
from safeshare.gateway.admission import AGENCY_URI_PREFIX, RevocationList
from safeshare.pki import DevPki
from tests.gateway_seal import TEST_SIGNER

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Issuer:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    ca_pem: bytes

    def issue(
        self, *common_names: str, uris: tuple[str, ...] = ()
    ) -> tuple[x509.Certificate, grpc.ChannelCredentials]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(hours=1))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        )
        if uris:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=key_pem,
            certificate_chain=cert.public_bytes(serialization.Encoding.PEM),
        )
        return cert, credentials

    def write_crl(self, path: Path, *revoked: x509.Certificate) -> None:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(NOW - dt.timedelta(minutes=1))
            .next_update(NOW + dt.timedelta(days=1))
        )
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(NOW - dt.timedelta(minutes=1))
                .build()
            )
        path.write_bytes(
            builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )


@dataclass
class Gateway:
    port: int
    issuer: Issuer
    crl: Path

    async def code(self, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
        async with grpc.aio.secure_channel(f"127.0.0.1:{self.port}", credentials) as channel:
            stub = service_grpc.CaseServiceStub(channel)
            try:
                await stub.ListCases(service_pb.ListCasesRequest(), timeout=10)
            except grpc.aio.AioRpcError as err:
                return err.code()
        return grpc.StatusCode.OK


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(
    dev_server: WorkflowEnvironment,
    pki: DevPki,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Gateway]:
    ca = pki._load_or_create_ca()
    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    issuer = Issuer(key, x509.load_pem_x509_certificate(ca.cert_pem.bytes()), ca.cert_pem.bytes())
    folder = await asyncio.to_thread(tmp_path_factory.mktemp, "crl")
    crl = folder / "partnership.crl"
    await asyncio.to_thread(issuer.write_crl, crl)
    server, port = await create_gateway_server(
        dev_server.client, registry, tls.server_credentials(pki.gateway()),
        revocation=RevocationList(crl, pki.ca_path), signer=TEST_SIGNER,
    )  # fmt: skip
    try:
        yield Gateway(port, issuer, crl)
    finally:
        await server.stop(None)


async def test_a_certificate_with_two_common_names_is_nobody(gateway: Gateway) -> None:
    for names in (("northshire-police", "riverside-gp"), ("riverside-gp", "northshire-police")):
        _, credentials = gateway.issuer.issue(*names)
        assert await gateway.code(credentials) == grpc.StatusCode.PERMISSION_DENIED, names
    _, one = gateway.issuer.issue("riverside-gp")
    assert await gateway.code(one) == grpc.StatusCode.OK, "positive control: one CN is the GP"


async def test_the_agency_is_read_from_the_san_uri(gateway: Gateway) -> None:
    _, named = gateway.issuer.issue(
        "Riverside GP Practice", uris=(f"{AGENCY_URI_PREFIX}riverside-gp",)
    )
    assert await gateway.code(named) == grpc.StatusCode.OK
    _, two = gateway.issuer.issue(
        "riverside-gp",
        uris=(f"{AGENCY_URI_PREFIX}riverside-gp", f"{AGENCY_URI_PREFIX}northshire-police"),
    )
    assert await gateway.code(two) == grpc.StatusCode.PERMISSION_DENIED
    _, unknown = gateway.issuer.issue("riverside-gp", uris=(f"{AGENCY_URI_PREFIX}not-a-partner",))
    assert await gateway.code(unknown) == grpc.StatusCode.PERMISSION_DENIED


async def test_a_revoked_certificate_is_refused_and_the_crl_is_reloaded(gateway: Gateway) -> None:
    first, first_credentials = gateway.issuer.issue("northshire-csc")
    second, second_credentials = gateway.issuer.issue("northshire-csc")
    assert await gateway.code(first_credentials) == grpc.StatusCode.OK
    await asyncio.to_thread(gateway.issuer.write_crl, gateway.crl, first)
    assert await gateway.code(first_credentials) == grpc.StatusCode.PERMISSION_DENIED
    assert await gateway.code(second_credentials) == grpc.StatusCode.OK
    await asyncio.to_thread(gateway.issuer.write_crl, gateway.crl, first, second)
    assert await gateway.code(second_credentials) == grpc.StatusCode.PERMISSION_DENIED
    # A list that is gone (or not the CA's) refuses everyone rather than no one.
    saved = await asyncio.to_thread(gateway.crl.read_bytes)
    await asyncio.to_thread(gateway.crl.unlink)
    try:
        _, fresh = gateway.issuer.issue("northshire-csc")
        assert await gateway.code(fresh) == grpc.StatusCode.UNAVAILABLE
    finally:
        await asyncio.to_thread(gateway.crl.write_bytes, saved)
