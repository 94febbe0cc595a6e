"""The adapter worker for one agency: its gRPC channel and its Temporal worker.

Pure construction: the caller (the CLI, or a test) owns the client, the credentials and the
lifetimes, and closes the channel after the worker has stopped.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
from temporalio.client import Client
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from agency_adapters.activities import DEFAULT_CALL_TIMEOUT, AgencyActivities
from protos.agency.v1.agency_service_pb2_grpc import AgencyServiceStub

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

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


def open_agency_channel(target: str, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
    """A mutual-TLS channel to an agency's ``agency.v1`` system.

    Args:
        target: host:port of the agency system.
        credentials: the adapter's client certificate and the CA it trusts.

    Returns:
        A ``grpc.aio`` channel with retries off, 4 MiB message limits and keepalive.
    """
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


def build_adapter_worker(
    client: Client,
    agency_id: str,
    channel: grpc.aio.Channel,
    *,
    call_timeout: float | None = None,
) -> Worker:
    """A worker that polls ``agency.<agency_id>`` and runs the agency activities over ``channel``.

    Args:
        client: the Temporal client to poll with.
        agency_id: the agency this worker serves; it names the task queue.
        channel: a channel to that agency's system, e.g. from :func:`open_agency_channel`.
        call_timeout: the deadline of each gRPC call in seconds; defaults to
            ``DEFAULT_CALL_TIMEOUT``, a little below ``AGENCY_CALL_TIMEOUT``.

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
    )
    return Worker(
        client,
        task_queue=task_queue,
        activities=[agency.lookup_consent, agency.extract_records, agency.receive_delivery],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
