"""The long-running parts of SafeShare, each composed from its dependencies and run until a
stop signal: the hub worker, the gateway, an agency adapter worker, a sandbox agency.

This is the composition root the CLI calls: it builds clients, channels, servers and workers
and hands them to the code that uses them.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from grpc_health.v1 import health

from activities.registry import load_registry
from agency_adapters.sandbox.server import create_sandbox_server
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from safeshare.gateway.server import create_gateway_server, stop_gateway
from safeshare.hub import build_hub_worker
from safeshare.shutdown import wait_for_stop_signal
from safeshare.temporal import TemporalSettings, connect_temporal
from safeshare.tls import TlsFiles, channel_credentials, server_credentials

log = structlog.get_logger("safeshare")

GRACE_SECONDS = 5.0


async def run_hub(temporal: TemporalSettings) -> None:
    """Run the hub worker until SIGINT or SIGTERM."""
    client = await connect_temporal(temporal)
    worker = build_hub_worker(client)
    async with worker:
        log.info("hub_started", task_queue=worker.task_queue)
        signal_name = await wait_for_stop_signal()
        log.info("hub_stopping", signal=signal_name)
    log.info("hub_stopped")


async def run_gateway(
    temporal: TemporalSettings, tls: TlsFiles, host: str, port: int, registry_path: Path
) -> None:
    """Serve the Case API until SIGINT or SIGTERM, then stop gracefully."""
    registry = load_registry(registry_path)
    client = await connect_temporal(temporal)
    health_servicer = health.aio.HealthServicer()
    server, bound = await create_gateway_server(
        client, registry, server_credentials(tls), host=host, port=port,
        health_servicer=health_servicer,
    )  # fmt: skip
    log.info("gateway_started", address=f"{host}:{bound}")
    signal_name = await wait_for_stop_signal()
    log.info("gateway_stopping", signal=signal_name)
    # NOT_SERVING first, so load balancers drain, then finish in-flight calls.
    await stop_gateway(server, health_servicer, GRACE_SECONDS)
    log.info("gateway_stopped")


async def run_adapter(
    temporal: TemporalSettings, agency_id: str, target: str, tls: TlsFiles
) -> None:
    """Run agency ``agency_id``'s adapter worker against its system at ``target``."""
    client = await connect_temporal(temporal)
    channel = open_agency_channel(target, channel_credentials(tls))
    try:
        worker = build_adapter_worker(client, agency_id, channel)
        async with worker:
            log.info("adapter_started", agency_id=agency_id, task_queue=worker.task_queue)
            signal_name = await wait_for_stop_signal()
            log.info("adapter_stopping", agency_id=agency_id, signal=signal_name)
    finally:
        await channel.close()
    log.info("adapter_stopped", agency_id=agency_id)


async def run_sandbox_agency(
    agency_id: str, db_path: Path, tls: TlsFiles, host: str, port: int
) -> None:
    """Serve a sandbox agency's ``agency.v1`` system until SIGINT or SIGTERM."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    server, bound, _store = await create_sandbox_server(
        agency_id, db_path, server_credentials(tls), host=host, port=port
    )
    log.info("sandbox_agency_started", agency_id=agency_id, address=f"{host}:{bound}")
    signal_name = await wait_for_stop_signal()
    log.info("sandbox_agency_stopping", agency_id=agency_id, signal=signal_name)
    await server.stop(GRACE_SECONDS)
    log.info("sandbox_agency_stopped", agency_id=agency_id)
