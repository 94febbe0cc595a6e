"""``safeshare adapter``: an agency's adapter worker, which calls the agency's system."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeshare.commands.options import LogFormat, LogLevel, MetricsPort, TlsCa, TlsCert, TlsKey
from safeshare.commands.plumbing import (
    require_agency_id,
    run,
    start_logging,
    temporal_settings,
)
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options
from safeshare.tls import TlsFiles


@temporal_options
def adapter(
    agency: Annotated[
        str, typer.Option(envvar="SAFESHARE_AGENCY_ID", help="The agency id this adapter serves.")
    ],
    target: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_AGENCY_TARGET", help="The agency system's agency.v1 host:port."
        ),
    ],
    tls_ca: TlsCa,
    tls_cert: TlsCert,
    tls_key: TlsKey,
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
    metrics_port: MetricsPort = None,
    call_timeout: Annotated[
        float | None,
        typer.Option(
            envvar="SAFESHARE_AGENCY_CALL_TIMEOUT",
            help="Deadline of each agency call, seconds (default 25; keep it below 30).",
        ),
    ] = None,
    claim_check_dir: Annotated[
        Path,
        typer.Option(
            envvar="SAFESHARE_CLAIM_CHECK_DIR",
            help="Claim-check store for records too large for a payload (shared by adapters).",
        ),
    ] = Path(".safeshare/claims"),
    claim_check: Annotated[
        bool, typer.Option(help="Use the claim-check store; off: refuse large records.")
    ] = True,
    health_port: Annotated[
        int | None,
        typer.Option(
            envvar="SAFESHARE_ADAPTER_HEALTH_PORT",
            help="Serve grpc.health.v1 (plaintext) on this port; off when unset.",
        ),
    ] = None,
    health_host: Annotated[
        str, typer.Option(envvar="SAFESHARE_ADAPTER_HEALTH_HOST", help="Health server address.")
    ] = "127.0.0.1",
    max_concurrent_activities: Annotated[
        int, typer.Option(help="Agency calls in flight at most.")
    ] = 20,
    graceful_shutdown: Annotated[
        float, typer.Option(help="Seconds in-flight activities may finish after SIGTERM.")
    ] = 10.0,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run an agency's adapter worker: polls agency.<ID>, calls the agency system over mTLS."""
    from safeshare.services import AdapterOptions, run_adapter

    start_logging("adapter", log_format, log_level)
    require_agency_id(agency)
    settings = temporal_settings(temporal, keys_file, metrics_port)
    options = AdapterOptions(
        call_timeout=call_timeout,
        claim_check_dir=claim_check_dir if claim_check else None,
        health_host=health_host,
        health_port=health_port,
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_seconds=graceful_shutdown,
    )
    run(run_adapter(settings, agency, target, TlsFiles(tls_ca, tls_cert, tls_key), options))
