"""``safeshare gateway``: the Case API (sharing.v1.CaseService) agencies call over mTLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.access.options import (
    DEFAULT_ACCESS_LOG,
    DEFAULT_ACCESS_LOG_KEY,
    AccessLogKey,
    AccessLogPath,
)
from safeshare.commands.options import LogFormat, LogLevel, MetricsPort, TlsCa, TlsCert, TlsKey
from safeshare.commands.plumbing import open_access_log, run, start_logging, temporal_settings
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options
from safeshare.tls import TlsFiles


@temporal_options
def gateway(
    tls_ca: TlsCa,
    tls_cert: TlsCert,
    tls_key: TlsKey,
    signing_key: Annotated[
        Path,
        typer.Option(
            envvar="SAFESHARE_GATEWAY_SIGNING_KEY_FILE",
            help="The gateway's Ed25519 signing key (PEM, mode 0600): seals every command.",
        ),
    ],
    crl: Annotated[
        Path | None,
        typer.Option(
            envvar="SAFESHARE_CRL_FILE",
            help="The partnership CA's certificate revocation list (PEM or DER), re-read when "
            "it changes: revoked agency certificates are refused.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 50051,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
    metrics_port: MetricsPort = None,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
    archive: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_ARCHIVE_URL",
            help="The case archive closed cases are read from (sqlite:///PATH, postgresql://...).",
        ),
    ] = None,
) -> None:
    """Serve the Case API (sharing.v1.CaseService) over mTLS; every read of a case and every
    refused read goes to the access log."""
    from safeshare.services import run_gateway

    start_logging("gateway", log_format, log_level)
    settings = temporal_settings(temporal, keys_file, metrics_port)
    files = TlsFiles(tls_ca, tls_cert, tls_key)
    log = open_access_log(access_log, access_log_key)
    run(
        run_gateway(
            settings, files, host, port, registry, signing_key,
            archive_url=archive, access_log=log, crl_path=crl,
        )
    )  # fmt: skip
