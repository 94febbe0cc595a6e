"""The long-running parts of SafeShare, each composed from its dependencies and run until a
stop signal: the hub worker, the gateway, an agency adapter worker, a sandbox agency.

This is the composition root the CLI calls: it builds clients, channels, servers and workers
and hands them to the code that uses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog
from grpc_health.v1 import health, health_pb2
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.gateway_key import load_gateway_public_key
from agency_adapters.claims import DEFAULT_CLAIM_DIR, ClaimStore
from agency_adapters.sandbox_agency.server import create_sandbox_server
from agency_adapters.worker import (
    DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    GRACEFUL_SHUTDOWN,
    build_adapter_worker,
    open_agency_channel,
    start_health_server,
)
from partnership.registry_file import RegistrySource, load_registry
from protos.agency.v1.sandbox_control_pb2 import Faults
from safeshare.access.log import AccessLog
from safeshare.alerts import OperatorAlerts
from safeshare.codec import EncryptionCodec, KeyRing
from safeshare.codec.coverage import require_keys_for_stored_cases
from safeshare.codec.server import CodecAccess, start_codec_server
from safeshare.gateway.admission import RevocationList
from safeshare.gateway.server import create_gateway_server, stop_gateway
from safeshare.gateway.signing import load_signing_key
from safeshare.hub import HubDeployment, build_hub_worker
from safeshare.metrics import export_certificate_expiry, runtime_for
from safeshare.shutdown import wait_for_stop_signal
from safeshare.temporal import TemporalSettings, TemporalUnavailable, connect_temporal_waiting
from safeshare.tls import TlsFiles, channel_credentials, server_credentials
from safeshare.tracing import OTLP_ENDPOINT_ENV, configure_tracing

log = structlog.get_logger("safeshare")

GRACE_SECONDS = 5.0


def start_tracing(component: str, instance: str = "") -> None:
    """Trace this process (``safeshare.tracing``), before it makes any client, server or
    channel; spans are exported when SAFESHARE_OTLP_ENDPOINT is set."""
    configure_tracing(component, os.environ.get(OTLP_ENDPOINT_ENV) or None, instance)


async def run_hub(
    temporal: TemporalSettings,
    registry_path: Path,
    gateway_key_path: Path,
    deployment: HubDeployment | None = None,
    access_log: Path | None = None,
    archive_url: str | None = None,
) -> None:
    """Run the hub worker until SIGINT or SIGTERM; the protocol gate reads ``registry_path``
    and the gateway's public key in ``gateway_key_path``; the protocol review reads the case
    archive at ``archive_url`` when given.

    With ``deployment``: as that build of the hub's worker deployment (Worker Versioning).
    """
    load_registry(registry_path)  # fail at start, in one line, on a broken registry
    load_gateway_public_key(gateway_key_path)  # and on a missing or broken key
    start_tracing("hub")
    client = await connect_temporal_waiting(temporal)
    await _require_keys(client, temporal)
    alerts = OperatorAlerts(client)
    from safeshare.archive.url import open_archive

    archive = await asyncio.to_thread(open_archive, archive_url) if archive_url else None
    worker = build_hub_worker(
        client, registry_path, deployment=deployment, alerts=alerts, access_log=access_log,
        gateway_key_path=gateway_key_path,
        archive=archive,
    )  # fmt: skip
    async with worker:
        log.info(
            "hub_started",
            task_queue=worker.task_queue,
            deployment=deployment.name if deployment else None,
            build_id=deployment.build_id if deployment else None,
        )
        watching = asyncio.create_task(alerts.watch())
        signal_name = await wait_for_stop_signal()
        log.info("hub_stopping", signal=signal_name)
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    log.info("hub_stopped")


async def run_gateway(
    temporal: TemporalSettings,
    tls: TlsFiles,
    host: str,
    port: int,
    registry_path: Path,
    signing_key_path: Path,
    archive_url: str | None = None,
    access_log: AccessLog | None = None,
    crl_path: Path | None = None,
) -> None:
    """Serve the Case API until SIGINT or SIGTERM, then stop gracefully; closed cases are read
    from the archive at ``archive_url`` when given; certificates the CRL at ``crl_path``
    revokes are refused."""
    from safeshare.archive.url import open_archive

    signer = load_signing_key(signing_key_path)  # fail at start, in one line
    # Re-read when the file changes: operators' registry changes count without a restart.
    registry = RegistrySource(registry_path)
    ca, cert, _ = tls.read()
    start_tracing("gateway")
    client = await connect_temporal_waiting(temporal)
    await _require_keys(client, temporal)
    export_certificate_expiry("gateway", "", {"server": cert, "ca": ca})
    archive = await asyncio.to_thread(open_archive, archive_url) if archive_url else None
    health_servicer = health.aio.HealthServicer()
    server, bound = await create_gateway_server(
        client, registry, server_credentials(tls), host=host, port=port,
        health_servicer=health_servicer, archive=archive, access_log=access_log,
        signer=signer, revocation=RevocationList(crl_path, tls.ca) if crl_path else None,
    )  # fmt: skip
    log.info("gateway_started", address=f"{host}:{bound}")
    signal_name = await wait_for_stop_signal()
    log.info("gateway_stopping", signal=signal_name)
    # NOT_SERVING first, so load balancers drain, then finish in-flight calls.
    await stop_gateway(server, health_servicer, GRACE_SECONDS)
    log.info("gateway_stopped")


KEY_CHECK_WAIT_SECONDS = 60.0
# What a server restarting under the check answers; anything else (a refusal) fails at once.
_TEMPORAL_COMING_BACK = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.DEADLINE_EXCEEDED,
)


async def _require_keys(client: Client, temporal: TemporalSettings) -> None:
    """Refuse to serve cases the key ring cannot decrypt (naming the key ids it lacks).

    The check reads stored histories; while Temporal is restarting under it (unavailable, or
    resetting connections) it is tried again for up to a minute, then fails in one line.
    """
    if temporal.keys is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KEY_CHECK_WAIT_SECONDS
    while True:
        try:
            await require_keys_for_stored_cases(client, temporal.keys)
            return
        except RPCError as err:
            if err.status not in _TEMPORAL_COMING_BACK or loop.time() >= deadline:
                raise TemporalUnavailable(
                    f"cannot read the stored cases' key ids from Temporal at {temporal.address}: "
                    f"{err.message}"
                ) from err
            log.warning("key_check_retrying", status=err.status.name)
            await asyncio.sleep(2.0)


@dataclass(frozen=True)
class AdapterOptions:
    """How an adapter worker runs, beyond where it connects."""

    call_timeout: float | None = None
    """Deadline of each agency call in seconds (default: a little below the activity's)."""
    claim_check_dir: Path | None = DEFAULT_CLAIM_DIR
    """Where records too large for a payload go; None refuses them instead."""
    health_host: str = "127.0.0.1"
    """Where the health server listens."""
    health_port: int | None = None
    """The health server's port; None: no health server."""
    max_concurrent_activities: int = DEFAULT_MAX_CONCURRENT_ACTIVITIES
    """Calls in flight to the agency system at most."""
    graceful_shutdown_seconds: float = GRACEFUL_SHUTDOWN.total_seconds()
    """How long in-flight activities may finish after SIGTERM."""


async def run_adapter(
    temporal: TemporalSettings,
    agency_id: str,
    target: str,
    tls: TlsFiles,
    options: AdapterOptions | None = None,
) -> None:
    """Run agency ``agency_id``'s adapter worker against its system at ``target``.

    On SIGINT or SIGTERM: health goes NOT_SERVING, the worker stops polling, in-flight
    activities get ``graceful_shutdown_seconds`` to finish; any still running are cancelled
    and Temporal retries them on another adapter worker.
    """
    options = options or AdapterOptions()
    ca, cert, _ = tls.read()
    start_tracing("adapter", agency_id)
    client = await connect_temporal_waiting(temporal)
    export_certificate_expiry("adapter", agency_id, {"client": cert, "ca": ca})
    channel = open_agency_channel(target, channel_credentials(tls))
    health_server = health_servicer = None
    if options.health_port is not None:
        health_server, health_port, health_servicer = await start_health_server(
            options.health_host, options.health_port
        )
        log.info("adapter_health_serving", address=f"{options.health_host}:{health_port}")
    try:
        worker = build_adapter_worker(
            client,
            agency_id,
            channel,
            call_timeout=options.call_timeout,
            claims=ClaimStore(options.claim_check_dir) if options.claim_check_dir else None,
            max_concurrent_activities=options.max_concurrent_activities,
            graceful_shutdown=timedelta(seconds=options.graceful_shutdown_seconds),
        )
        async with worker:
            if health_servicer is not None:
                await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
            log.info("adapter_started", agency_id=agency_id, task_queue=worker.task_queue)
            signal_name = await wait_for_stop_signal()
            log.info("adapter_stopping", agency_id=agency_id, signal=signal_name)
            if health_servicer is not None:
                await health_servicer.enter_graceful_shutdown()
    finally:
        await channel.close()
        if health_server is not None:
            await health_server.stop(None)
    log.info("adapter_stopped", agency_id=agency_id)


async def run_sandbox_agency(
    agency_id: str,
    db_path: Path,
    tls: TlsFiles,
    host: str,
    port: int,
    faults: Faults | None = None,
    metrics_address: str | None = None,
) -> None:
    """Serve a sandbox agency's ``agency.v1`` system until SIGINT or SIGTERM; with
    ``metrics_address``, export its certificates' expiry there."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    ca, cert, _ = tls.read()
    start_tracing("sandbox-agency", agency_id)
    if metrics_address:
        runtime_for(metrics_address)
    export_certificate_expiry("sandbox-agency", agency_id, {"server": cert, "ca": ca})
    agency = await create_sandbox_server(
        agency_id, db_path, server_credentials(tls), host=host, port=port, faults=faults
    )
    log.info("sandbox_agency_started", agency_id=agency_id, address=f"{host}:{agency.port}")
    signal_name = await wait_for_stop_signal()
    log.info("sandbox_agency_stopping", agency_id=agency_id, signal=signal_name)
    await agency.stop(GRACE_SECONDS)
    log.info("sandbox_agency_stopped", agency_id=agency_id)


async def run_codec_server(
    keys: KeyRing, access: CodecAccess, host: str, port: int, access_log: AccessLog
) -> None:
    """Serve the codec server (the UI's and CLI's /encode and /decode) until SIGINT or SIGTERM;
    its access events go to ``access_log``."""
    # Operators read histories here; nothing acts on what it decodes, so payloads stored before
    # encryption are shown as they are rather than refused.
    runner, bound = await start_codec_server(
        EncryptionCodec(keys, allow_plaintext=True), access, host, port, record=access_log.append
    )
    log.info("codec_server_started", address=f"{host}:{bound}", key_id=keys.active_id)
    signal_name = await wait_for_stop_signal()
    log.info("codec_server_stopping", signal=signal_name)
    await runner.cleanup()
    log.info("codec_server_stopped")
