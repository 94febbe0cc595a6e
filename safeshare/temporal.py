"""Connecting to Temporal: one place for every client SafeShare makes.

Where Temporal is and how to reach it comes from one configuration for every command
(``load_temporal_settings``): Temporal's own client configuration (``temporalio.envconfig``: a
TOML file of profiles and the ``TEMPORAL_*`` environment variables, as the Temporal CLI and SDKs
read them), with a command's own flags and ``SAFESHARE_TEMPORAL_*`` variables on top. TLS with a
client certificate (a self-hosted cluster with mTLS) and API keys (Temporal Cloud) both come
through it.

Every client made here, and so every worker built on one, encrypts its payloads with the key
ring in its settings (``safeshare.codec.data_converter``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS
from temporalio.service import RPCError

from safeshare.codec import KeyRing, data_converter
from safeshare.metrics import runtime_for
from safeshare.tls import TlsError, TlsFiles
from safeshare.tracing import tracing_interceptors

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
CONFIG_FILE_ENV = "TEMPORAL_CONFIG_FILE"
PROFILE_ENV = "TEMPORAL_PROFILE"
DEV_STACK_PROFILE = Path(".safeshare") / "dev" / "temporal.toml"
"""The Temporal profile the dev stack writes under its data dir (``safeshare.devstack``)."""


class TemporalUnavailable(Exception):
    """Temporal could not be reached at the configured address."""


class TemporalConfigError(Exception):
    """The Temporal connection configuration cannot be used (one readable line)."""


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is, how to reach it, and the keys that encrypt payloads."""

    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    tls: TlsFiles | ClientConfigTLS | None = None
    """TLS to Temporal: files from flags, or the profile's TLS section; None: plaintext."""
    api_key: str | None = None
    """An API key (Temporal Cloud); sent as a bearer token, over TLS."""
    rpc_metadata: Mapping[str, str] = field(default_factory=dict)
    keys: KeyRing | None = None
    """The payload key ring; None sends payloads in the clear (tests and the leak test's
    negative control only: the CLI refuses to run without keys unless told explicitly)."""
    metrics_address: str | None = None
    """host:port to serve Prometheus metrics on (``safeshare.metrics``); None: no metrics."""
    source: str = "the caller"
    """Where the address came from, for messages (flags, a profile, the defaults)."""

    @property
    def data_converter(self) -> DataConverter:
        """The converter for these settings: encrypting when there are keys."""
        return DataConverter.default if self.keys is None else data_converter(self.keys)

    def tls_config(self) -> TLSConfig | bool:
        """What ``Client.connect`` takes as ``tls``.

        Raises:
            TlsError: a certificate or key file cannot be read.
        """
        if isinstance(self.tls, TlsFiles):
            ca, cert, key = self.tls.read()
            return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key)
        if isinstance(self.tls, ClientConfigTLS):
            try:
                return self.tls.to_connect_tls_config()
            except OSError as err:
                raise TlsError(f"cannot read TLS material for Temporal: {err}") from err
        return self.api_key is not None  # an API key is never sent in the clear


def load_temporal_settings(
    *,
    address: str | None = None,
    namespace: str | None = None,
    profile: str | None = None,
    api_key: str | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    keys: KeyRing | None = None,
    metrics_address: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> TemporalSettings:
    """The connection every command uses: the Temporal profile, then explicit overrides.

    The profile is Temporal's client configuration: the TOML file at ``TEMPORAL_CONFIG_FILE``
    (else Temporal's own default file, ``~/.config/temporalio/temporal.toml``, else the profile
    the dev stack in this folder wrote, ``.safeshare/dev/temporal.toml``), profile ``profile``
    (else ``TEMPORAL_PROFILE``, else ``default``), with ``TEMPORAL_ADDRESS``,
    ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*`` on top. The other arguments
    (a command's flags) override it. With nothing at all, the local dev server at
    127.0.0.1:7233, and ``source`` says so (commands print it: no command quietly uses a
    server it was not told of).

    Raises:
        TemporalConfigError: the file or profile is missing or broken, or TLS flags do not fit.
    """
    environ = os.environ if env is None else env
    config_file = environ.get(CONFIG_FILE_ENV)
    if config_file and not Path(config_file).is_file():
        raise TemporalConfigError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
    source_file = config_file or _fallback_config_file(environ, cwd or Path.cwd())
    name = profile or environ.get(PROFILE_ENV) or "default"
    try:
        loaded = ClientConfigProfile.load(
            profile,
            config_source=Path(source_file) if source_file else None,
            disable_file=source_file is None,
            override_env_vars=dict(environ),
        )
    except Exception as err:  # the bridge's ConfigError is not importable by name
        raise TemporalConfigError(f"Temporal client configuration: {err}") from err
    if (cert is None) != (key is None):
        raise TemporalConfigError("--temporal-cert and --temporal-key go together")
    tls: TlsFiles | ClientConfigTLS | None = loaded.tls
    if ca is not None or cert is not None:
        # Flags replace the profile's files; its server name (SNI) still applies.
        tls = ClientConfigTLS(
            server_name=loaded.tls.server_name if loaded.tls else None,
            server_root_ca_cert=ca,
            client_cert=cert,
            client_private_key=key,
        )
    elif isinstance(tls, ClientConfigTLS) and tls.disabled:
        tls = None
    if address:
        source = "flags"
    elif loaded.address:
        where = f" in {source_file}" if source_file and not config_file else ""
        source = f"Temporal profile {name!r}{where}"
    else:
        source = f"defaults ({NOT_CONFIGURED})"
    return TemporalSettings(
        address=address or loaded.address or DEFAULT_ADDRESS,
        namespace=namespace or loaded.namespace or DEFAULT_NAMESPACE,
        tls=tls,
        api_key=api_key or loaded.api_key,
        rpc_metadata=dict(loaded.grpc_meta),
        keys=keys,
        metrics_address=metrics_address,
        source=source,
    )


NOT_CONFIGURED = (
    "no --temporal-address, TEMPORAL_ADDRESS, Temporal profile or dev stack profile "
    f"{DEV_STACK_PROFILE}"
)


def _fallback_config_file(environ: Mapping[str, str], cwd: Path) -> str | None:
    """With no ``TEMPORAL_CONFIG_FILE``: Temporal's own default file if there is one, else the
    dev stack's profile in this folder, else none."""
    home = environ.get("HOME")
    config_home = environ.get("XDG_CONFIG_HOME") or (f"{home}/.config" if home else None)
    own = Path(config_home) / "temporalio" / "temporal.toml" if config_home else None
    if own is not None and own.is_file():
        return str(own)
    dev_profile = cwd / DEV_STACK_PROFILE
    return str(dev_profile) if dev_profile.is_file() else None


async def connect_temporal(settings: TemporalSettings) -> Client:
    """Connect a Temporal client with SafeShare's data converter.

    Raises:
        TemporalUnavailable: the server did not answer, or refused this client.
        TlsError: TLS material cannot be read.
        MetricsError: the metrics address cannot be served.
    """
    tls = settings.tls_config()
    runtime = runtime_for(settings.metrics_address) if settings.metrics_address else None
    try:
        client = await Client.connect(
            settings.address,
            namespace=settings.namespace,
            tls=tls,
            api_key=settings.api_key,
            rpc_metadata=dict(settings.rpc_metadata),
            data_converter=settings.data_converter,
            runtime=runtime,
            # Inherited by every worker built on this client: traces run through the cases.
            interceptors=tracing_interceptors(),
        )
    except (RPCError, RuntimeError) as err:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}, "
            f"from {settings.source}): {err}"
        ) from err
    if settings.source.startswith("defaults"):
        # Nothing said where Temporal is: say which server answered, never quietly.
        print(
            f"safeshare: using Temporal at {settings.address}, namespace {settings.namespace} "
            f"({NOT_CONFIGURED})",
            file=sys.stderr,
        )
    return client


async def connect_temporal_waiting(settings: TemporalSettings, wait: float = 60.0) -> Client:
    """Connect as a long-running service does: while nothing listens at the address (a server
    restarting as the service starts), try again for up to ``wait`` seconds. Anything else (a
    TLS front refusing this client, a wrong namespace) is raised at once.

    Raises:
        TemporalUnavailable: the server still did not answer, or refused this client.
    """
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            return await connect_temporal(settings)
        except TemporalUnavailable as err:
            nobody_listens = "ConnectionRefused" in str(err) or "Connection refused" in str(err)
            if not nobody_listens or asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(2.0)
