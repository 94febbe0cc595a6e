"""The ``safeshare`` command line: every part of the system, and the dev stack that runs them all.

Each command parses its options into settings and hands them to ``safeshare.services`` or
``safeshare.devstack``. Known failures print one readable line and exit 2; they never print a
traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from activities.registry import DEFAULT_REGISTRY_PATH, RegistryError
from safeshare.log import configure_logging
from safeshare.temporal import TemporalSettings, TemporalUnavailable
from safeshare.tls import TlsError, TlsFiles

app = typer.Typer(
    name="safeshare",
    help="SafeShare: multi-agency information sharing for safeguarding children.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

TemporalAddress = Annotated[
    str, typer.Option(envvar="SAFESHARE_TEMPORAL_ADDRESS", help="Temporal frontend host:port.")
]
Namespace = Annotated[
    str, typer.Option(envvar="SAFESHARE_TEMPORAL_NAMESPACE", help="Temporal namespace.")
]
TemporalCa = Annotated[
    Path | None,
    typer.Option(envvar="SAFESHARE_TEMPORAL_TLS_CA", help="CA for TLS to Temporal (PEM)."),
]
TemporalCert = Annotated[
    Path | None,
    typer.Option(envvar="SAFESHARE_TEMPORAL_TLS_CERT", help="Client certificate for Temporal."),
]
TemporalKey = Annotated[
    Path | None,
    typer.Option(envvar="SAFESHARE_TEMPORAL_TLS_KEY", help="Client key for Temporal."),
]
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


class UsageError(Exception):
    """Options that do not fit together."""


def _temporal(address: str, namespace: str, ca: Path | None, cert: Path | None, key: Path | None):
    if any((ca, cert, key)) and not all((ca, cert, key)):
        raise UsageError("--temporal-ca, --temporal-cert and --temporal-key go together")
    tls = TlsFiles(ca, cert, key) if ca and cert and key else None
    return TemporalSettings(address=address, namespace=namespace, tls=tls)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a command's coroutine; known failures become one line on stderr and exit code 2."""
    try:
        asyncio.run(coroutine)
    except (TlsError, RegistryError, TemporalUnavailable, UsageError, OSError) as err:
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _logging(component: str, log_format: str | None, log_level: str) -> None:
    json = None if log_format is None else log_format == "json"
    configure_logging(level=log_level, json=json, component=component)


@app.command()
def hub(
    temporal_address: TemporalAddress = "127.0.0.1:7233",
    namespace: Namespace = "default",
    temporal_ca: TemporalCa = None,
    temporal_cert: TemporalCert = None,
    temporal_key: TemporalKey = None,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run the hub worker (SharingCase workflows and hub activities)."""
    from safeshare.services import run_hub

    _logging("hub", log_format, log_level)
    _run(run_hub(_temporal(temporal_address, namespace, temporal_ca, temporal_cert, temporal_key)))


@app.command()
def gateway(
    tls_ca: TlsCa,
    tls_cert: TlsCert,
    tls_key: TlsKey,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 50051,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    temporal_address: TemporalAddress = "127.0.0.1:7233",
    namespace: Namespace = "default",
    temporal_ca: TemporalCa = None,
    temporal_cert: TemporalCert = None,
    temporal_key: TemporalKey = None,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve the Case API (sharing.v1.CaseService) over mTLS."""
    from safeshare.services import run_gateway

    _logging("gateway", log_format, log_level)
    temporal = _temporal(temporal_address, namespace, temporal_ca, temporal_cert, temporal_key)
    _run(run_gateway(temporal, TlsFiles(tls_ca, tls_cert, tls_key), host, port, registry))


@app.command()
def adapter(
    agency: Annotated[str, typer.Option(help="The agency id this adapter serves.")],
    target: Annotated[str, typer.Option(help="The agency system's agency.v1 host:port.")],
    tls_ca: TlsCa,
    tls_cert: TlsCert,
    tls_key: TlsKey,
    temporal_address: TemporalAddress = "127.0.0.1:7233",
    namespace: Namespace = "default",
    temporal_ca: TemporalCa = None,
    temporal_cert: TemporalCert = None,
    temporal_key: TemporalKey = None,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run an agency's adapter worker: polls agency.<ID>, calls the agency system over mTLS."""
    from safeshare.services import run_adapter

    _logging("adapter", log_format, log_level)
    temporal = _temporal(temporal_address, namespace, temporal_ca, temporal_cert, temporal_key)
    _run(run_adapter(temporal, agency, target, TlsFiles(tls_ca, tls_cert, tls_key)))


@app.command("sandbox-agency")
def sandbox_agency(
    agency: Annotated[str, typer.Option(help="The agency id this sandbox plays.")],
    tls_ca: TlsCa,
    tls_cert: TlsCert,
    tls_key: TlsKey,
    db: Annotated[Path, typer.Option(help="SQLite file (seeded when new).")] = Path(
        ".safeshare/agencies/sandbox.db"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 50061,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve a sandbox agency system (agency.v1 over mTLS, SQLite, fictional data)."""
    from safeshare.services import run_sandbox_agency

    _logging("sandbox-agency", log_format, log_level)
    _run(run_sandbox_agency(agency, db, TlsFiles(tls_ca, tls_cert, tls_key), host, port))


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="Where the dev stack keeps its data.")] = Path(
        ".safeshare"
    ),
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
    gateway_port: Annotated[int, typer.Option(help="Case API port.")] = 50051,
    agency_port: Annotated[
        int, typer.Option(help="First sandbox agency port; the others follow.")
    ] = 50061,
    demo: Annotated[bool, typer.Option(help="Submit the demo cases.")] = True,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
) -> None:
    """Start the whole system on this machine, with demo cases, until Ctrl-C."""
    from safeshare.devstack import DevPorts, run_dev_stack

    configure_logging(json=False, component="dev")
    ports = DevPorts(
        temporal=temporal_port, ui=ui_port, gateway=gateway_port, first_agency=agency_port
    )
    _run(run_dev_stack(data_dir.resolve(), ports, registry.resolve(), demo=demo))


def main() -> None:
    """Entry point of the ``safeshare`` command."""
    app(prog_name="safeshare")


if __name__ == "__main__":
    main()
