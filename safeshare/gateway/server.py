"""The gateway server: CaseService, health and reflection on one mTLS port.

``create_gateway_server`` returns ``(server, port)`` so tests bind port 0; the CLI owns the
lifetime and calls ``stop_gateway`` to drain it.

Limits, set deliberately:

- ``MAX_RECEIVE_BYTES`` (1 MiB): the largest well-formed request (a SharingRequest with its
  bounded texts and holders) is a few tens of KiB; anything near Temporal's 2 MiB payload
  limit could never be stored anyway. grpc refuses a larger message with RESOURCE_EXHAUSTED
  before the servicer sees it.
- Every request is decoded and its shape checked before any handler (``decoding``, with the
  bounds of each field in ``bounds``): bytes that do not decode, control characters, fields
  over their length, lists over their count and unknown enum numbers are INVALID_ARGUMENT.
- ``MAX_SEND_BYTES`` (4 MiB): a CaseView of a case with ten holders' full records fits with a
  wide margin.
- ``MAX_CONCURRENT_RPCS``: calls beyond it are refused with RESOURCE_EXHAUSTED instead of
  queueing without bound; WatchCase streams have their own cap (``watch.MAX_WATCHES``).
- Deadlines: the servicer bounds every Temporal call by the caller's remaining deadline (at
  most ``frame.TEMPORAL_RPC_TIMEOUT``), and grpc cancels a handler whose caller's deadline
  passed, which cancels its Temporal calls and WatchCase's poll loop.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from temporalio.client import Client

from partnership.registry import Registry
from partnership.registry_file import RegistrySource
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare.access.log import AccessLog
from safeshare.archive.store import ArchiveStore
from safeshare.gateway.admission import Admission, Quotas, RevocationList
from safeshare.gateway.decoding import RequestShape
from safeshare.gateway.servicer import CASE_SERVICE_NAME, CaseServiceServicer
from safeshare.gateway.signing import GatewaySigner
from workflows.ids import HUB_TASK_QUEUE

MAX_RECEIVE_BYTES = 1024 * 1024
MAX_SEND_BYTES = 4 * 1024 * 1024
MAX_CONCURRENT_RPCS = 1000


class GatewayStartError(Exception):
    """The gateway could not bind its port."""


async def create_gateway_server(
    client: Client,
    registry: Registry | RegistrySource,
    credentials: grpc.ServerCredentials,
    host: str = "127.0.0.1",
    port: int = 0,
    hub_task_queue: str = HUB_TASK_QUEUE,
    health_servicer: health.aio.HealthServicer | None = None,
    servicer: CaseServiceServicer | None = None,
    archive: ArchiveStore | None = None,
    access_log: AccessLog | None = None,
    *,
    signer: GatewaySigner | None = None,
    revocation: RevocationList | None = None,
    quotas: Quotas | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Build, bind and start the gateway.

    Args:
        client: the Temporal client the servicer starts, queries and updates cases with.
        registry: the partnership registry (who may call, who may be asked).
        credentials: mTLS server credentials that require a client certificate.
        host: the address to listen on; loopback by default.
        port: the port, or 0 for any free port.
        hub_task_queue: the task queue of the hub worker that runs SharingCase.
        health_servicer: pass one to flip it to NOT_SERVING on shutdown (``stop_gateway``).
        servicer: the CaseService servicer to serve, if not one built from the arguments
            above (tests pass one to tune WatchCase's polling and watch its counters).
        archive: the case archive closed cases are read from (None: Temporal only).
        access_log: where reads of cases and refused reads are recorded.
        signer: the gateway's signing key, sealing every command it forwards (the hub's gate
            and the workflows check the seal); required unless ``servicer`` is given (it has
            its own): there is no gateway that seals nothing.
        revocation: the partnership CA's revocation list; revoked certificates are refused
            before any handler runs (``safeshare.gateway.admission``).
        quotas: each agency's share of calls and watches, and a watch's longest life.

    Returns:
        The started server and the port it is bound to.

    Raises:
        GatewayStartError: the address could not be bound.
    """
    if servicer is None:
        if signer is None:
            raise ValueError("the gateway needs its signing key (signer) to seal commands")
        servicer = CaseServiceServicer(
            client, registry, hub_task_queue, archive, access_log, signer=signer
        )
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        # Outermost first: who is calling, then whether the request decodes and has its
        # shape, then the frame every handler runs in (access history, errors, log line).
        interceptors=[
            Admission(CASE_SERVICE_NAME, revocation, quotas),
            RequestShape(CASE_SERVICE_NAME),
            servicer.frame,
        ],
    )
    service_grpc.add_CaseServiceServicer_to_server(servicer, server)
    health_servicer = health_servicer or health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            CASE_SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_secure_port(address, credentials)
    if bound == 0:
        raise GatewayStartError(f"cannot bind the gateway to {address}")
    await server.start()
    for service in ("", CASE_SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, bound


async def stop_gateway(
    server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, grace: float = 10.0
) -> None:
    """Drain the gateway: report NOT_SERVING so balancers stop sending, then stop gracefully.

    Args:
        server: the server ``create_gateway_server`` started.
        health_servicer: the health servicer given to ``create_gateway_server``.
        grace: seconds in-flight calls get to finish before they are cancelled.
    """
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace)
