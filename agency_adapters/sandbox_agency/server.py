"""The sandbox agency's ``agency.v1.AgencyService`` over mutual TLS, and its control service.

The servicer only translates: proto in, store call, proto out, refusals as status codes. It
accepts only SafeShare's adapter for its own agency (certificate CN ``adapter.<agency-id>``),
as a real agency system should; fault toggles (:mod:`agency_adapters.sandbox_agency.faults`)
make it misbehave on purpose. Status messages and logs carry codes and ids only, never the subjects'
personal data.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
import structlog
from google.protobuf import text_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from activities.agency import content_digest
from agency_adapters.sandbox_agency.errors import DuplicateItemError, SubjectMismatch
from agency_adapters.sandbox_agency.faults import FaultError, FaultInjector
from agency_adapters.sandbox_agency.rows import Child
from agency_adapters.sandbox_agency.seed import seed_store
from agency_adapters.sandbox_agency.store import SandboxStore
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.agency.v1 import sandbox_control_pb2 as control_pb
from protos.agency.v1 import sandbox_control_pb2_grpc as control_grpc
from protos.sharing.v1 import case_pb2 as pb

SERVICE_NAME = agency_pb.DESCRIPTOR.services_by_name["AgencyService"].full_name
CONTROL_SERVICE_NAME = control_pb.DESCRIPTOR.services_by_name["SandboxControlService"].full_name
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

log = structlog.get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]


def adapter_common_name(agency_id: str) -> str:
    """The certificate common name of SafeShare's adapter for ``agency_id``."""
    return f"adapter.{agency_id}"


class SandboxAgencyService(agency_grpc.AgencyServiceServicer):
    """``agency.v1.AgencyService`` answered from a :class:`SandboxStore`."""

    def __init__(
        self,
        agency_id: str,
        store: SandboxStore,
        faults: FaultInjector | None = None,
        allowed_client_names: Collection[str] | None = None,
    ) -> None:
        """Args:
        agency_id: the agency this sandbox plays (for logs).
        store: its records.
        faults: its fault toggles; none by default.
        allowed_client_names: the client certificate common names it answers; by default
            only ``adapter.<agency_id>``.
        """
        self._agency_id = agency_id
        self._store = store
        self._faults = faults or FaultInjector()
        self._allowed = frozenset(
            allowed_client_names
            if allowed_client_names is not None
            else {adapter_common_name(agency_id)}
        )

    async def LookupConsent(
        self, request: agency_pb.LookupConsentRequest, context: Context
    ) -> agency_pb.LookupConsentResponse:
        """The child's consent record, or status NOT_RECORDED when the agency has none."""
        with self._bound(request.case_ref, "LookupConsent"):
            await self._admit("LookupConsent", context)
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
            await self._admit("ExtractRecords", context)
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
            await self._admit("ReceiveDelivery", context)
            if not request.delivery_id:
                await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "delivery_id is required")
            if request.claim_ref:
                # Claims are resolved by SafeShare's adapter; one reaching an agency is a bug.
                await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "unresolved claim_ref")
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
            if self._faults.drop_reply("ReceiveDelivery"):
                log.info("agency_call_served", status="UNAVAILABLE", fault="reply_dropped")
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, "sandbox fault: reply dropped after commit"
                )
            log.info(
                "agency_call_served",
                status="OK",
                delivery_id=receipt.delivery_id,
                item_count=receipt.item_count,
                duplicate=duplicate,
            )
            return agency_pb.ReceiveDeliveryResponse(receipt=receipt)

    async def NotifyPractitioner(
        self, request: agency_pb.NotifyPractitionerRequest, context: Context
    ) -> agency_pb.NotifyPractitionerResponse:
        """Record the notification (the sandbox has no one to tell); once per id."""
        with self._bound(request.case_ref, "NotifyPractitioner"):
            await self._admit("NotifyPractitioner", context)
            if not request.notification_id:
                await _refuse(
                    context, grpc.StatusCode.INVALID_ARGUMENT, "notification_id is required"
                )
            if request.kind == agency_pb.NOTIFICATION_KIND_UNSPECIFIED:
                await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "kind is required")
            if not (request.practitioner_role or request.practitioner_user_id):
                await _refuse(context, grpc.StatusCode.NOT_FOUND, "no practitioner or role named")
            response = self._store.receive_notification(request)
            log.info("agency_call_served", status="OK", duplicate=response.duplicate)
            return response

    async def ReceiveConsentWithdrawn(
        self, request: agency_pb.ReceiveConsentWithdrawnRequest, context: Context
    ) -> agency_pb.ReceiveConsentWithdrawnResponse:
        """Record the notice against the deliveries it names; once per id."""
        with self._bound(request.case_ref, "ReceiveConsentWithdrawn"):
            await self._admit("ReceiveConsentWithdrawn", context)
            if not request.notice_id or not request.delivery_ids:
                await _refuse(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "notice_id and delivery_ids are required",
                )
            response = self._store.receive_withdrawal(request)
            log.info("agency_call_served", status="OK", duplicate=response.duplicate)
            return response

    def _bound(self, case_ref: str, rpc: str) -> AbstractContextManager[None]:
        return structlog.contextvars.bound_contextvars(
            case_ref=case_ref, agency_id=self._agency_id, rpc=rpc
        )

    async def _admit(self, rpc: str, context: Context) -> None:
        # 👉 TLS already proved the certificate comes from the partnership CA; this proves it
        # is *our* adapter's, not another agency's (each adapter holds only its own key).
        names = list(context.auth_context().get("x509_common_name") or [])
        if len(names) != 1 or names[0].decode("utf-8", errors="replace") not in self._allowed:
            await _refuse(
                context, grpc.StatusCode.PERMISSION_DENIED, "caller is not this agency's adapter"
            )
        await self._faults.before_call(rpc, context)

    async def _child(self, subjects: Sequence[pb.Subject], context: Context) -> Child:
        if not any(subject.role == pb.SUBJECT_ROLE_CHILD for subject in subjects):
            await _refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "no child subject given")
        try:
            child = self._store.find_child(subjects)
        except SubjectMismatch as err:
            await _refuse(context, grpc.StatusCode.FAILED_PRECONDITION, str(err))
        if child is None:
            await _refuse(context, grpc.StatusCode.NOT_FOUND, "subject not known to this agency")
        return child


class SandboxControlService(control_grpc.SandboxControlServiceServicer):
    """``agency.v1.SandboxControlService``: fault toggles and what was received."""

    def __init__(self, store: SandboxStore, faults: FaultInjector) -> None:
        """Args:
        store: the sandbox's store, to list what it received.
        faults: the toggles the agency servicer obeys.
        """
        self._store = store
        self._faults = faults

    async def SetFaults(
        self, request: control_pb.SetFaultsRequest, context: Context
    ) -> control_pb.SetFaultsResponse:
        """Replace the toggles."""
        try:
            faults = self._faults.set(request.faults)
        except FaultError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        log.info("sandbox_faults_set", faults=_describe(faults))
        return control_pb.SetFaultsResponse(faults=faults)

    async def GetFaults(
        self, request: control_pb.GetFaultsRequest, context: Context
    ) -> control_pb.GetFaultsResponse:
        """The toggles and the call counts."""
        return control_pb.GetFaultsResponse(
            faults=self._faults.get(), calls=dict(self._faults.calls)
        )

    async def ListReceived(
        self, request: control_pb.ListReceivedRequest, context: Context
    ) -> control_pb.ListReceivedResponse:
        """Deliveries, notifications and withdrawal notices, by id (no contents)."""
        response = control_pb.ListReceivedResponse()
        for row in self._store.deliveries():
            delivery = response.deliveries.add(
                delivery_id=row.delivery_id,
                case_ref=row.case_ref,
                holding_agency_id=row.holding_agency_id,
                content_digest=row.content_digest,
                item_ids=[item.item_id for item in self._store.delivered_items(row.delivery_id)],
            )
            delivery.received_at.FromDatetime(row.received_at)
        for note in self._store.notifications():
            response.notifications.add(
                notification_id=note.notification_id,
                case_ref=note.case_ref,
                kind=agency_pb.NotificationKind.Name(note.kind),
                step=note.step,
            )
        for notice in self._store.withdrawals():
            response.withdrawals.add(
                notice_id=notice.notice_id,
                case_ref=notice.case_ref,
                delivery_ids=notice.delivery_ids,
            )
        return response


def _describe(faults: control_pb.Faults) -> str:
    return text_format.MessageToString(faults, as_one_line=True) or "none"


async def _refuse(context: Context, code: grpc.StatusCode, message: str) -> NoReturn:
    # The message is fixed text chosen here: a caller's input never reaches it.
    log.info("agency_call_served", status=code.name)
    await context.abort(code, message)


@dataclass
class SandboxAgency:
    """A running sandbox agency."""

    agency_id: str
    server: grpc.aio.Server
    port: int
    store: SandboxStore
    faults: FaultInjector
    health: health.aio.HealthServicer

    async def stop(self, grace: float | None) -> None:
        """Report NOT_SERVING, let calls finish for ``grace`` seconds, close the store."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.store.close()


async def create_sandbox_server(
    agency_id: str,
    db_path: Path,
    credentials: grpc.ServerCredentials,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    faults: control_pb.Faults | None = None,
    allowed_client_names: Collection[str] | None = None,
) -> SandboxAgency:
    """Start a sandbox agency: seeded store, servicers, health and reflection, on mTLS.

    Args:
        agency_id: the agency it plays; its kind (school, gp, csc, police...) decides the
            categories of records it holds.
        db_path: its SQLite file; seeded with the demo children only when empty.
        credentials: server credentials that require a client certificate (mutual TLS).
        host: the address to listen on.
        port: the port, 0 for any free one.
        faults: fault toggles at start; none by default.
        allowed_client_names: client certificate common names AgencyService answers;
            by default only ``adapter.<agency_id>``.

    Returns:
        The running agency (stop it with ``await agency.stop(grace)``).

    Raises:
        FaultError: ``faults`` names a status code that is not a failure.
    """
    injector = FaultInjector(faults)
    store = SandboxStore(db_path)
    if seed_store(store, agency_id):
        log.info("sandbox_seeded", agency_id=agency_id)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    agency_grpc.add_AgencyServiceServicer_to_server(
        SandboxAgencyService(agency_id, store, injector, allowed_client_names), server
    )
    control_grpc.add_SandboxControlServiceServicer_to_server(
        SandboxControlService(store, injector), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, CONTROL_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_secure_port(f"{host}:{port}", credentials)
    await server.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("sandbox_started", agency_id=agency_id, port=bound, faults=_describe(injector.get()))
    return SandboxAgency(agency_id, server, bound, store, injector, health_servicer)
