"""The adapter worker for one agency: its gRPC channel, its Temporal worker, its health server.

Pure construction: the caller (the CLI, or a test) owns the client, the credentials and the
lifetimes, and closes the channel after the worker has stopped.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from temporalio.client import Client
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from agency_adapters.activities import (
    DEFAULT_CALL_TIMEOUT,
    MAX_AGENCY_MESSAGE_BYTES,
    AgencyActivities,
)
from agency_adapters.claims import ClaimStore
from protos.agency.v1.agency_service_pb2_grpc import AgencyServiceStub

MAX_MESSAGE_BYTES = MAX_AGENCY_MESSAGE_BYTES

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    # 👉 Temporal is the one retry layer: a gRPC-level retry underneath it would multiply
    # attempts and hide failures from the case history.
    ("grpc.enable_retries", 0),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Notice a dead connection during a call within about a minute; ping only while calls
    # are in flight, so agency servers with default ping policies never answer GOAWAY.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
)

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""How long a stopping worker lets in-flight activities finish. Activities still running
after it are cancelled and fail; Temporal retries them on another worker ("handed back")."""

DEFAULT_MAX_CONCURRENT_ACTIVITIES = 20
"""A bound on calls in flight to one agency system, so a burst of cases cannot flood it."""


def open_agency_channel(target: str, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
    """A mutual-TLS channel to an agency's ``agency.v1`` system.

    Args:
        target: host:port of the agency system.
        credentials: the adapter's client certificate and the CA it trusts.

    Returns:
        A ``grpc.aio`` channel with retries off, bounded message sizes and keepalive.
    """
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


def build_adapter_worker(
    client: Client,
    agency_id: str,
    channel: grpc.aio.Channel,
    *,
    call_timeout: float | None = None,
    claims: ClaimStore | None = None,
    max_concurrent_activities: int = DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    graceful_shutdown: timedelta = GRACEFUL_SHUTDOWN,
) -> Worker:
    """A worker that polls ``agency.<agency_id>`` and runs the agency activities over ``channel``.

    Args:
        client: the Temporal client to poll with.
        agency_id: the agency this worker serves; it names the task queue.
        channel: a channel to that agency's system, e.g. from :func:`open_agency_channel`.
        call_timeout: the deadline of each gRPC call in seconds; defaults to
            ``DEFAULT_CALL_TIMEOUT``, a little below ``AGENCY_CALL_TIMEOUT``.
        claims: the claim-check store for large records; None refuses them.
        max_concurrent_activities: calls in flight to the agency at most.
        graceful_shutdown: how long in-flight activities may finish on shutdown.

    Returns:
        The worker, not yet running (``async with`` it, or ``await worker.run()``).

    Raises:
        ValueError: ``agency_id`` is not a valid agency code.
    """
    task_queue = agency_task_queue(agency_id)
    agency = AgencyActivities(
        AgencyServiceStub(channel),
        agency_id,
        DEFAULT_CALL_TIMEOUT if call_timeout is None else call_timeout,
        claims=claims,
    )
    return Worker(
        client,
        task_queue=task_queue,
        activities=agency.all(),
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=graceful_shutdown,
    )


async def start_health_server(
    host: str = "127.0.0.1", port: int = 0
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A plaintext ``grpc.health.v1`` server for the adapter's liveness and readiness probes.

    It starts NOT_SERVING; the caller sets SERVING once the worker polls and NOT_SERVING
    when it starts to stop. Plaintext, because it says nothing but a status: bind it to
    loopback or a probe-only interface.

    Returns:
        The started server, the port it listens on, and its servicer.
    """
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    # Reflection, so `buf curl` and grpcurl can probe it without a schema.
    reflection.enable_server_reflection((health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    return server, bound, servicer
