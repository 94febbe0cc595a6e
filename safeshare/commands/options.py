"""The command-line options several ``safeshare`` commands take: TLS files, logging, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TlsCa = Annotated[Path, typer.Option(envvar="SAFESHARE_TLS_CA", help="Partnership CA (PEM).")]
TlsCert = Annotated[Path, typer.Option(envvar="SAFESHARE_TLS_CERT", help="Certificate (PEM).")]
TlsKey = Annotated[Path, typer.Option(envvar="SAFESHARE_TLS_KEY", help="Private key (PEM).")]
LogFormat = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_LOG_FORMAT",
        help="json or console (default: console on a TTY).",
    ),
]
LogLevel = Annotated[str, typer.Option(envvar="SAFESHARE_LOG_LEVEL", help="Minimum log level.")]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        envvar="SAFESHARE_METRICS_PORT",
        help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics; off when unset.",
    ),
]
