"""``safeshare hub``: the hub worker, which runs every SharingCase workflow and the hub's
activities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.access.options import DEFAULT_ACCESS_LOG, AccessLogPath
from safeshare.commands.options import LogFormat, LogLevel, MetricsPort
from safeshare.commands.plumbing import run, start_logging, temporal_settings
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options


@temporal_options
def hub(
    gateway_key: Annotated[
        Path,
        typer.Option(
            envvar="SAFESHARE_GATEWAY_PUBLIC_KEY_FILE",
            help="The gateway's Ed25519 public key (PEM), as the partnership publishes it: "
            "every case's start and decisions must carry its signature.",
        ),
    ],
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    temporal: TemporalFlags = NO_FLAGS,
    keys_file: KeysFile = None,
    metrics_port: MetricsPort = None,
    build_id: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_HUB_BUILD_ID",
            help="Run under Worker Versioning as this build (cases pinned to it); "
            "unset: an unversioned worker.",
        ),
    ] = None,
    deployment_name: Annotated[
        str,
        typer.Option(envvar="SAFESHARE_HUB_DEPLOYMENT", help="The hub's worker deployment."),
    ] = "safeshare-hub",
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
    archive: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_ARCHIVE_URL",
            help="The case archive: the protocol review counts the cases Temporal deleted.",
        ),
    ] = None,
) -> None:
    """Run the hub worker (SharingCase workflows and hub activities); the protocol review
    reads the access log (``--access-log``) for its access figures."""
    from safeshare.hub import HubDeployment
    from safeshare.services import run_hub

    start_logging("hub", log_format, log_level)
    settings = temporal_settings(temporal, keys_file, metrics_port)
    deployment = HubDeployment(build_id, deployment_name) if build_id else None
    run(run_hub(settings, registry, gateway_key, deployment, access_log, archive_url=archive))
