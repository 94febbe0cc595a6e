"""Connecting to Temporal: one place for every client SafeShare makes.

Every client made here, and so every worker built on one, encrypts its payloads with the key
ring in its settings (``safeshare.codec.data_converter``).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter
from temporalio.service import RPCError

from safeshare.codec import KeyRing, data_converter
from safeshare.metrics import runtime_for
from safeshare.tls import TlsFiles


class TemporalUnavailable(Exception):
    """Temporal could not be reached at the configured address."""


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is, how to reach it, and the keys that encrypt payloads."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    tls: TlsFiles | None = None
    keys: KeyRing | None = None
    """The payload key ring; None sends payloads in the clear (tests and the leak test's
    negative control only: the CLI refuses to run without keys unless told explicitly)."""
    metrics_address: str | None = None
    """host:port to serve Prometheus metrics on (``safeshare.metrics``); None: no metrics."""

    @property
    def data_converter(self) -> DataConverter:
        """The converter for these settings: encrypting when there are keys."""
        return DataConverter.default if self.keys is None else data_converter(self.keys)


async def connect_temporal(settings: TemporalSettings) -> Client:
    """Connect a Temporal client with SafeShare's data converter.

    Raises:
        TemporalUnavailable: the server did not answer.
        MetricsError: the metrics address cannot be served.
    """
    tls: TLSConfig | bool = False
    if settings.tls is not None:
        ca, cert, key = settings.tls.read()
        tls = TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key)
    runtime = runtime_for(settings.metrics_address) if settings.metrics_address else None
    try:
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            tls=tls,
            data_converter=settings.data_converter,
            runtime=runtime,
        )
    except (RPCError, RuntimeError) as err:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): {err}"
        ) from err
