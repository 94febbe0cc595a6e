"""``safeshare sandbox-agency`` serves a sandbox agency system (fictional data, faults on
demand); ``safeshare sandbox-faults`` changes a running one's faults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from safeshare.commands.options import LogFormat, LogLevel, MetricsPort, TlsCa, TlsCert, TlsKey
from safeshare.commands.plumbing import require_agency_id, run, start_logging
from safeshare.tls import TlsError, TlsFiles

FaultRpc = Annotated[
    list[str] | None,
    typer.Option(help="AgencyService method the faults apply to (repeat); default all."),
]


def _faults(
    unavailable: bool,
    delay_ms: int,
    fail_next: int,
    fail_code: str,
    drop_replies: int,
    rpcs: list[str] | None,
):  # -> control_pb.Faults, imported lazily like every command's dependencies
    from agency_adapters.sandbox_agency.faults import FaultError, parse_status_code
    from protos.agency.v1.sandbox_control_pb2 import Faults

    try:
        parse_status_code(fail_code)
    except FaultError as err:
        raise typer.BadParameter(str(err), param_hint="--fault-fail-code") from None
    return Faults(
        unavailable=unavailable,
        delay_ms=delay_ms,
        fail_next=fail_next,
        fail_code=fail_code.upper(),
        drop_replies_after_commit=drop_replies,
        rpcs=rpcs or [],
    )


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
    fault_unavailable: Annotated[
        bool, typer.Option(help="Fault: answer every call UNAVAILABLE.")
    ] = False,
    fault_delay_ms: Annotated[int, typer.Option(help="Fault: delay every call (ms).")] = 0,
    fault_fail_next: Annotated[int, typer.Option(help="Fault: fail the next N calls.")] = 0,
    fault_fail_code: Annotated[
        str, typer.Option(help="Status code for --fault-fail-next.")
    ] = "UNAVAILABLE",
    fault_drop_replies: Annotated[
        int, typer.Option(help="Fault: store the next N deliveries, then drop the reply.")
    ] = 0,
    fault_rpc: FaultRpc = None,
    metrics_port: MetricsPort = None,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve a sandbox agency system (agency.v1 over mTLS, SQLite, fictional data).

    Only SafeShare's adapter for this agency (certificate CN adapter.<ID>) may call
    AgencyService. Faults can be changed at run time with `safeshare sandbox-faults`.
    """
    from safeshare.services import run_sandbox_agency

    faults = _faults(
        fault_unavailable,
        fault_delay_ms,
        fault_fail_next,
        fault_fail_code,
        fault_drop_replies,
        fault_rpc,
    )
    start_logging("sandbox-agency", log_format, log_level)
    require_agency_id(agency)
    metrics = None if metrics_port is None else f"127.0.0.1:{metrics_port}"
    tls = TlsFiles(tls_ca, tls_cert, tls_key)
    run(run_sandbox_agency(agency, db, tls, host, port, faults, metrics))


def sandbox_faults(
    target: Annotated[str, typer.Option(help="The sandbox agency's host:port.")],
    tls_ca: TlsCa,
    tls_cert: TlsCert,
    tls_key: TlsKey,
    show: Annotated[bool, typer.Option(help="Only show the faults; change nothing.")] = False,
    unavailable: Annotated[bool, typer.Option(help="Answer every call UNAVAILABLE.")] = False,
    delay_ms: Annotated[int, typer.Option(help="Delay every call (ms).")] = 0,
    fail_next: Annotated[int, typer.Option(help="Fail the next N calls.")] = 0,
    fail_code: Annotated[str, typer.Option(help="Status code for --fail-next.")] = "UNAVAILABLE",
    drop_replies: Annotated[
        int, typer.Option(help="Store the next N deliveries, then drop the reply.")
    ] = 0,
    rpc: FaultRpc = None,
) -> None:
    """Set a running sandbox agency's faults (all of them; no flags clears them), print state.

    Prints JSON: the faults in force, calls received by method, and what was received.
    """
    import json

    from safeshare.sandbox_admin import SandboxAdminError, control_sandbox

    faults = (
        None if show else _faults(unavailable, delay_ms, fail_next, fail_code, drop_replies, rpc)
    )
    try:
        state = asyncio.run(control_sandbox(target, TlsFiles(tls_ca, tls_cert, tls_key), faults))
    except (SandboxAdminError, TlsError) as err:
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(state, indent=2))
