"""The ``safeshare`` command line: every part of the system, and the dev stack that runs them all.

Each command parses its options into settings and hands them to ``safeshare.services`` or
``safeshare.devstack``. Known failures print one readable line and exit 2; they never print a
traceback.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from activities.agency import AGENCY_ID_PATTERN
from activities.gateway_key import GatewayKeyError
from partnership.registry import DEFAULT_REGISTRY_PATH, RegistryError
from safeshare.access.options import (
    DEFAULT_ACCESS_LOG,
    DEFAULT_ACCESS_LOG_KEY,
    AccessLogKey,
    AccessLogPath,
)
from safeshare.archive.cli import archive_app
from safeshare.audit.cli import audit_app
from safeshare.codec import KeyRing, KeyRingError, keys_from_env, load_key_file
from safeshare.files import private_umask
from safeshare.log import configure_logging
from safeshare.operators.commands import register as register_operator_commands
from safeshare.temporal import TemporalConfigError, TemporalSettings, TemporalUnavailable
from safeshare.temporal_options import NO_FLAGS, KeysFile, TemporalFlags, temporal_options
from safeshare.tls import TlsError, TlsFiles

if TYPE_CHECKING:
    from safeshare.access.log import AccessLog

app = typer.Typer(
    name="safeshare",
    help="SafeShare: multi-agency information sharing for safeguarding children.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

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
PLAINTEXT_ENV = "SAFESHARE_PLAINTEXT_PAYLOADS"
"""Set to 1 to run without payload encryption: only to show what would leak (the leak test)."""


class UsageError(Exception):
    """Options that do not fit together."""


def _temporal(
    flags: TemporalFlags, keys_file: Path | None = None, metrics_port: int | None = None
) -> TemporalSettings:
    """The Temporal connection: the Temporal profile, these flags on top (safeshare.temporal)."""
    keys = _payload_keys(keys_file, required=os.environ.get(PLAINTEXT_ENV) != "1")
    metrics = None if metrics_port is None else f"127.0.0.1:{metrics_port}"
    try:
        return flags.settings(keys=keys, metrics_address=metrics)
    except TemporalConfigError as err:
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None


def _payload_keys(keys_file: Path | None, required: bool = True) -> KeyRing | None:
    """The payload key ring from --keys-file, SAFESHARE_KEYS_FILE or SAFESHARE_KEYS.

    Safe by default: with no keys the command refuses to start, unless encryption was turned
    off explicitly (SAFESHARE_PLAINTEXT_PAYLOADS=1).
    """
    try:
        keys = load_key_file(keys_file) if keys_file else keys_from_env()
    except KeyRingError as err:
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None
    if keys is None and required:
        typer.echo(
            "safeshare: error: no payload encryption keys: pass --keys-file, or set "
            f"SAFESHARE_KEYS_FILE or SAFESHARE_KEYS ({PLAINTEXT_ENV}=1: payloads in the clear)",
            err=True,
        )
        raise typer.Exit(2)
    return keys


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a command's coroutine; known failures become one line on stderr and exit code 2."""
    try:
        asyncio.run(coroutine)
    except (
        TlsError, RegistryError, TemporalUnavailable, UsageError, OSError, GatewayKeyError,
        KeyRingError,
    ) as err:  # fmt: skip
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _require_agency_id(agency_id: str) -> None:
    """Refuse an agency id that cannot name a task queue or a certificate, in one line."""
    if not AGENCY_ID_PATTERN.fullmatch(agency_id):
        typer.echo(
            f"safeshare: error: --agency {agency_id!r} is not an agency id "
            "(lower-case letters, digits and hyphens, 2-40 characters)",
            err=True,
        )
        raise typer.Exit(2)


def _logging(component: str, log_format: str | None, log_level: str) -> None:
    json = None if log_format is None else log_format == "json"
    configure_logging(level=log_level, json=json, component=component)


@app.command()
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

    _logging("hub", log_format, log_level)
    settings = _temporal(temporal, keys_file, metrics_port)
    deployment = HubDeployment(build_id, deployment_name) if build_id else None
    _run(run_hub(settings, registry, gateway_key, deployment, access_log, archive_url=archive))


@app.command()
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

    _logging("gateway", log_format, log_level)
    settings = _temporal(temporal, keys_file, metrics_port)
    files = TlsFiles(tls_ca, tls_cert, tls_key)
    log = _access_log(access_log, access_log_key)
    _run(
        run_gateway(
            settings, files, host, port, registry, signing_key,
            archive_url=archive, access_log=log, crl_path=crl,
        )
    )  # fmt: skip


@app.command()
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

    _logging("adapter", log_format, log_level)
    _require_agency_id(agency)
    settings = _temporal(temporal, keys_file, metrics_port)
    options = AdapterOptions(
        call_timeout=call_timeout,
        claim_check_dir=claim_check_dir if claim_check else None,
        health_host=health_host,
        health_port=health_port,
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_seconds=graceful_shutdown,
    )
    _run(run_adapter(settings, agency, target, TlsFiles(tls_ca, tls_cert, tls_key), options))


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
    _logging("sandbox-agency", log_format, log_level)
    _require_agency_id(agency)
    metrics = None if metrics_port is None else f"127.0.0.1:{metrics_port}"
    tls = TlsFiles(tls_ca, tls_cert, tls_key)
    _run(run_sandbox_agency(agency, db, tls, host, port, faults, metrics))


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
    codec_port: Annotated[int, typer.Option(help="Codec server port (for the UI).")] = 8081,
    metrics_port: Annotated[
        int,
        typer.Option(
            help="Hub metrics port; gateway +1, adapters +10..., agencies +30...; 0: off."
        ),
    ] = 9460,
    prometheus: Annotated[
        bool,
        typer.Option(help="Also start Prometheus (if installed) with the shipped alert rules."),
    ] = False,
    prometheus_port: Annotated[int, typer.Option(help="Prometheus's port.")] = 9090,
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_OTLP_ENDPOINT",
            help="Export every process's traces over OTLP/gRPC, e.g. http://127.0.0.1:4317.",
        ),
    ] = None,
    demo: Annotated[bool, typer.Option(help="Submit the demo cases.")] = True,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    encryption: Annotated[
        bool,
        typer.Option(
            help="Encrypt Temporal payloads. --no-encryption only shows what would leak "
            "(the leak test's negative control); never use it with real data."
        ),
    ] = True,
    replicas: Annotated[
        int, typer.Option(min=1, max=9, help="Processes of each part: hubs, gateways, adapters.")
    ] = 1,
    hub_replicas: Annotated[
        int | None, typer.Option(min=1, max=9, help="Hub workers (default --replicas).")
    ] = None,
    gateway_replicas: Annotated[
        int | None,
        typer.Option(
            min=1, max=9, help="Gateways, on ports from --gateway-port (default --replicas)."
        ),
    ] = None,
    adapter_replicas: Annotated[
        int | None, typer.Option(min=1, max=9, help="Adapters per agency (default --replicas).")
    ] = None,
    hub_build_id: Annotated[
        str | None,
        typer.Option(help="Run the hubs under Worker Versioning as this build, made current."),
    ] = None,
) -> None:
    """Start the whole system on this machine, with demo cases, until Ctrl-C."""
    from safeshare.devstack import DevPorts, Replicas, run_dev_stack

    configure_logging(json=False, component="dev")
    ports = DevPorts(
        temporal=temporal_port,
        ui=ui_port,
        gateway=gateway_port,
        first_agency=agency_port,
        codec=codec_port,
        metrics=metrics_port,
        prometheus=prometheus_port,
    )
    counts = Replicas(
        hub=hub_replicas or replicas,
        gateway=gateway_replicas or replicas,
        adapter=adapter_replicas or replicas,
        hub_build_id=hub_build_id,
    )
    _run(
        run_dev_stack(
            data_dir.resolve(),
            ports,
            registry.resolve(),
            demo=demo,
            encryption=encryption,
            replicas=counts,
            otlp_endpoint=otlp_endpoint,
            prometheus=prometheus,
        )
    )


@app.command("sandbox-faults")
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


@app.command("codec-server")
def codec_server(
    oidc_issuer: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_OIDC_ISSUER",
            help="The OpenID Connect issuer operators sign in at (its URL, as tokens name it).",
        ),
    ],
    keys_file: KeysFile = None,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    oidc_audience: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_OIDC_AUDIENCE",
            help="This codec server's client id at the issuer: tokens must name it (aud).",
        ),
    ] = "safeshare-codec",
    oidc_roles_claim: Annotated[
        str, typer.Option(envvar="SAFESHARE_OIDC_ROLES_CLAIM", help="The claim holding roles.")
    ] = "roles",
    oidc_operator_role: Annotated[
        str, typer.Option(envvar="SAFESHARE_OIDC_OPERATOR_ROLE", help="The role that may decrypt.")
    ] = "operator",
    oidc_client_secret_file: Annotated[
        Path | None,
        typer.Option(
            envvar="SAFESHARE_OIDC_CLIENT_SECRET_FILE",
            help="This server's client secret at the issuer (0600), for /login.",
        ),
    ] = None,
    public_url: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_CODEC_PUBLIC_URL",
            help="Where browsers reach this server; turns on the /login sign-in route.",
        ),
    ] = "",
    ui_origin: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_CODEC_UI_ORIGIN", help="The Temporal UI's origin, for CORS."
        ),
    ] = "http://127.0.0.1:8233",
    trust_ui_origin: Annotated[
        bool,
        typer.Option(
            help="DEV ONLY, NEVER IN PRODUCTION: accept browser requests that claim --ui-origin "
            "without a sign-in (anyone who can reach the port can claim it)."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve /encode and /decode for the Temporal UI and CLI (--codec-endpoint) to operators
    signed in at the OIDC issuer; every decryption and refusal goes to the access log."""
    from safeshare.codec.oidc import OidcSettings, OidcVerifier
    from safeshare.codec.server import CodecAccess
    from safeshare.services import run_codec_server

    _logging("codec-server", log_format, log_level)
    keys = _payload_keys(keys_file)
    assert keys is not None  # required=True
    settings = OidcSettings(oidc_issuer, oidc_audience, oidc_roles_claim, oidc_operator_role)
    secret = oidc_client_secret_file.read_text().strip() if oidc_client_secret_file else ""
    try:
        access = CodecAccess(
            OidcVerifier(settings), ui_origin or None, trust_ui_origin, secret, public_url
        )
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--trust-ui-origin") from None
    if trust_ui_origin:
        typer.secho(
            "codec-server: --trust-ui-origin is for a loopback dev machine ONLY: anyone who can "
            "reach this port can decrypt by claiming the UI's origin.",
            err=True,
            fg="red",
            bold=True,
        )
    _run(run_codec_server(keys, access, host, port, _access_log(access_log, access_log_key)))


def _access_log(path: Path, key: Path) -> AccessLog:
    """The access log for a command, or one readable line and exit 2."""
    from safeshare.access.log import AccessLog
    from safeshare.audit.signing import SigningError

    try:
        return AccessLog.open(path, key)
    except (OSError, SigningError) as err:
        typer.echo(f"safeshare: error: cannot open the access log: {err}", err=True)
        raise typer.Exit(2) from None


register_operator_commands(app)


app.add_typer(audit_app, name="audit")
app.add_typer(archive_app, name="archive")


@app.callback()
def _every_command() -> None:
    """SafeShare: multi-agency safeguarding information sharing."""
    # Everything a command writes may hold case data: the owner's alone (safeshare.files).
    private_umask()


def main() -> None:
    """Entry point of the ``safeshare`` command."""
    private_umask()
    try:
        app(prog_name="safeshare")
        code = 0
    except SystemExit as done:
        code = _exit_code(done.code)
    _exit_after_cleanup(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _exit_after_cleanup(code: int) -> None:
    """Exit with ``code`` once every exit handler has run, skipping interpreter finalization.

    👉 gRPC's and Temporal's native threads can still be running when the interpreter
    finalizes, and one of them releasing the GIL then aborts the process ("PyGILState_Release:
    thread state must be current", exit 134, seen about once in six runs of a short command).
    Exit handlers (span exporters, log handlers) run first, while everything is alive.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
