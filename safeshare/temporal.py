"""Connecting to Temporal: one place for every client SafeShare makes."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError

from safeshare.tls import TlsFiles


class TemporalUnavailable(Exception):
    """Temporal could not be reached at the configured address."""


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is and how to reach it."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    tls: TlsFiles | None = None


async def connect_temporal(settings: TemporalSettings) -> Client:
    """Connect a Temporal client.

    Raises:
        TemporalUnavailable: the server did not answer.
    """
    tls: TLSConfig | bool = False
    if settings.tls is not None:
        ca, cert, key = settings.tls.read()
        tls = TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key)
    try:
        return await Client.connect(settings.address, namespace=settings.namespace, tls=tls)
    except (RPCError, RuntimeError) as err:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): {err}"
        ) from err
