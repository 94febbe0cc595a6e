"""The sandbox agency's ``agency.v1.AgencyService`` over mutual TLS.

The servicer only translates: proto in, store call, proto out, refusals as status codes.
Status messages and logs carry codes and ids only, never the subjects' personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from activities.agency import content_digest
from agency_adapters.sandbox.seed import seed_store
from agency_adapters.sandbox.store import Child, DuplicateItemError, SandboxStore
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.sharing.v1 import case_pb2 as pb

SERVICE_NAME = agency_pb.DESCRIPTOR.services_by_name["AgencyService"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

log = structlog.get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]


class SandboxAgencyService(agency_grpc.AgencyServiceServicer):
    """``agency.v1.AgencyService`` answered from a :class:`SandboxStore`."""

    def __init__(self, agency_id: str, store: SandboxStore) -> None:
        """Args:
        agency_id: the agency this sandbox plays (for logs).
        store: its records.
        """
        self._agency_id = agency_id
        self._store = store

    async def LookupConsent(
        self, request: agency_pb.LookupConsentRequest, context: Context
    ) -> agency_pb.LookupConsentResponse:
        """The child's consent record, or status NOT_RECORDED when the agency has none."""
        with self._bound(request.case_ref, "LookupConsent"):
            child = await self._child(request.subjects, context)
            consent = self._store.consent_for(child) or pb.ConsentRecord(
                status=pb.CONSENT_STATUS_NOT_RECORDED
            )
            log.info("agency_call_served", status="OK")
            return agency_pb.LookupConsentResponse(consent=consent)

    async def ExtractRecords(
        self, request: agency_pb.ExtractRecordsRequest, context: Context
    ) -> agency_pb.ExtractRecordsResponse:
        """The child's record items in the requested categories, and only those."""
        with self._bound(request.case_ref, "ExtractRecords"):
            if not set(request.categories) & self._store.held_categories():
                await _refuse(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "none of the requested categories is held by this agency",
                )
            child = await self._child(request.subjects, context)
            items = self._store.records_for(child, request.categories)
            log.info("agency_call_served", status="OK", item_count=len(items))
            return agency_pb.ExtractRecordsResponse(items=items)

    async def ReceiveDelivery(
        self, request: agency_pb.ReceiveDeliveryRequest, context: Context
    ) -> agency_pb.ReceiveDeliveryResponse:
        """Store a delivery whose digest checks out; a repeat returns the first receipt."""
        with self._bound(request.case_ref, "ReceiveDelivery"):
            if not request.delivery_id:
                await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "delivery_id is required")
            if request.content_digest != content_digest(request.items):
                await _refuse(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "content_digest does not match the items",
                )
            try:
                receipt, duplicate = self._store.receive_delivery(request)
            except DuplicateItemError:
                await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "an item id appears twice")
            log.info(
                "agency_call_served",
                status="OK",
                delivery_id=receipt.delivery_id,
                item_count=receipt.item_count,
                duplicate=duplicate,
            )
            return agency_pb.ReceiveDeliveryResponse(receipt=receipt)

    def _bound(self, case_ref: str, rpc: str) -> AbstractContextManager[None]:
        return structlog.contextvars.bound_contextvars(
            case_ref=case_ref, agency_id=self._agency_id, rpc=rpc
        )

    async def _child(self, subjects: Sequence[pb.Subject], context: Context) -> Child:
        if not any(subject.role == pb.SUBJECT_ROLE_CHILD for subject in subjects):
            await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "no child subject given")
        child = self._store.find_child(subjects)
        if child is None:
            await _refuse(context, grpc.StatusCode.NOT_FOUND, "subject not known to this agency")
        return child


async def _refuse(context: Context, code: grpc.StatusCode, message: str) -> NoReturn:
    # The message is fixed text chosen here: a caller's input never reaches it.
    log.info("agency_call_served", status=code.name)
    await context.abort(code, message)


async def create_sandbox_server(
    agency_id: str,
    db_path: Path,
    credentials: grpc.ServerCredentials,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[grpc.aio.Server, int, SandboxStore]:
    """Start a sandbox agency: seeded store, servicer, health and reflection, on mTLS.

    Args:
        agency_id: the agency it plays; its kind (school, gp, csc, police...) decides the
            categories of records it holds.
        db_path: its SQLite file; seeded with the demo children only when empty.
        credentials: server credentials that require a client certificate (mutual TLS).
        host: the address to listen on.
        port: the port, 0 for any free one.

    Returns:
        The server, already started (stop it with ``await server.stop(grace)`` and then
        ``store.close()``), the port it listens on, and its store.
    """
    store = SandboxStore(db_path)
    if seed_store(store, agency_id):
        log.info("sandbox_seeded", agency_id=agency_id)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    agency_grpc.add_AgencyServiceServicer_to_server(SandboxAgencyService(agency_id, store), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_secure_port(f"{host}:{port}", credentials)
    await server.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("sandbox_started", agency_id=agency_id, port=bound)
    return server, bound, store
