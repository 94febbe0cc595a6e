"""The ``sharing.v1.CaseService`` servicer: proto in, Temporal call, proto out.

No business logic lives here. The workflows decide what may happen to a case (their update
validators reject out-of-turn, unpermitted or incomplete decisions); the servicer establishes
who is calling, rejects malformed calls before they reach Temporal, routes each command to the
workflow that owns it, and maps every outcome to a gRPC status code. Each RPC is one line
here; the parts live beside it:

- ``frame``: every call's deadline, access history, error mapping, log line and metric (a
  server interceptor, ``CaseServiceServicer.frame``);
- ``opening``: SubmitRequest, SubmitDisclosure, RecordDisclosureNotMade start cases;
- ``decisions``: the decision RPCs, from one table;
- ``parties``: who the caller is in a case (one policy for "not yours": NOT_FOUND) and what it
  may see (``party_view``, ``disclosure_view``);
- ``safeshare.cases.reader``: the one reader of a case's views (memos, closed record, archive);
- ``case_list``, ``case_watch``: ListCases and WatchCase.

Reads need no hub worker: GetCase (and every command's reply) reads the view each workflow of
the case keeps in its memo, one describe per workflow; ListCases runs a visibility list query;
WatchCase is woken by the case's histories and reads the same views.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import grpc
from temporalio.client import Client

from partnership.registry import Registry
from partnership.registry_file import RegistrySource
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare.access.events import Action
from safeshare.access.log import AccessLog
from safeshare.archive.store import ArchiveStore
from safeshare.cases.reader import CaseViews
from safeshare.gateway import access, case_list, case_watch, listing, parties, validation, watch
from safeshare.gateway.decisions import Decisions
from safeshare.gateway.errors import GatewayError, invalid_argument
from safeshare.gateway.fields import (
    FieldViolation,
)
from safeshare.gateway.frame import RpcFrame, current, rpc_timeout
from safeshare.gateway.frame import failure as _failure  # noqa: F401  (the tests' name for it)
from safeshare.gateway.identity import caller_agency
from safeshare.gateway.opening import REQUEST_DIGEST_MEMO, Opening
from safeshare.gateway.parts import Parts
from safeshare.gateway.signing import GatewaySigner
from workflows.ids import HUB_TASK_QUEUE

__all__ = ["REQUEST_DIGEST_MEMO", "CaseServiceServicer"]

CASE_SERVICE_NAME: str = service_pb.DESCRIPTOR.services_by_name["CaseService"].full_name
Context = grpc.aio.ServicerContext


class CaseServiceServicer(service_grpc.CaseServiceServicer):
    """Serves the Case API by starting, querying and updating the case workflows.

    Args:
        client: the Temporal client (with the payload codec, when one is configured).
        registry: the partnership registry that says which agencies are partners.
        hub_task_queue: the task queue the hub worker running SharingCase polls.
        archive: the case archive closed cases are read from (None: Temporal only).
        access_log: where every read and refused read is recorded; None keeps no history
            (and ListAccessEvents answers FAILED_PRECONDITION).
        signer: seals every command forwarded to a workflow (``workflows.seal``); there is no
            gateway without one (the hub refuses what it did not seal).
    """

    def __init__(
        self,
        client: Client,
        registry: Registry | RegistrySource,
        hub_task_queue: str = HUB_TASK_QUEUE,
        archive: ArchiveStore | None = None,
        access_log: AccessLog | None = None,
        *,
        signer: GatewaySigner,
    ) -> None:
        self._client = client
        self._access_log = access_log
        self._registry_source = registry
        self._views = CaseViews(client, archive)
        parts = Parts(client, self._views, self._registry, signer, hub_task_queue)
        self._opening = Opening(parts)
        self._decisions = Decisions(parts)
        self.frame = RpcFrame(CASE_SERVICE_NAME, self._registry, access_log)
        """The frame of every call: the server's innermost interceptor."""
        self._watches = 0
        self.max_watches = watch.MAX_WATCHES
        self.poll_interval = watch.POLL_INTERVAL

    @property
    def active_watches(self) -> int:
        """How many WatchCase streams are being served now."""
        return self._watches

    def _registry(self) -> Registry:
        """The partnership registry now (a file source is re-read when it changes)."""
        source = self._registry_source
        return source.current() if isinstance(source, RegistrySource) else source

    # -- opening cases ----------------------------------------------------------------------

    async def SubmitRequest(
        self, request: service_pb.SubmitRequestRequest, context: Context
    ) -> service_pb.SubmitRequestResponse:
        """Open a case for a request, or return the case its request id already opened."""
        return await self._opening.submit(request, context)

    async def SubmitDisclosure(
        self, request: service_pb.SubmitDisclosureRequest, context: Context
    ) -> service_pb.SubmitDisclosureResponse:
        """Open a disclosure case, or return the case its disclosure id already opened."""
        return await self._opening.submit_disclosure(request, context)

    async def RecordDisclosureNotMade(
        self, request: service_pb.RecordDisclosureNotMadeRequest, context: Context
    ) -> service_pb.RecordDisclosureNotMadeResponse:
        """Record a disclosure considered and not made, with reasons."""
        return await self._opening.not_made(request, context)

    # -- decisions (``decisions.DECISIONS``) ------------------------------------------------

    async def RecordConsent(
        self, request: service_pb.RecordConsentRequest, context: Context
    ) -> service_pb.RecordConsentResponse:
        """The holder records a consent decision, or why consent is not sought."""
        return await self._decisions.decide(request, context, service_pb.RecordConsentResponse)

    async def ProposeOverride(
        self, request: service_pb.ProposeOverrideRequest, context: Context
    ) -> service_pb.ProposeOverrideResponse:
        """The holder proposes an override with its full justification."""
        return await self._decisions.decide(request, context, service_pb.ProposeOverrideResponse)

    async def DecideOverride(
        self, request: service_pb.DecideOverrideRequest, context: Context
    ) -> service_pb.DecideOverrideResponse:
        """An approver at the holder approves or rejects the proposed override."""
        return await self._decisions.decide(request, context, service_pb.DecideOverrideResponse)

    async def ShareFirst(
        self, request: service_pb.ShareFirstRequest, context: Context
    ) -> service_pb.ShareFirstResponse:
        """RED only: the holder shares now and justifies within the override deadline."""
        return await self._decisions.decide(request, context, service_pb.ShareFirstResponse)

    async def DeclineToShare(
        self, request: service_pb.DeclineToShareRequest, context: Context
    ) -> service_pb.DeclineToShareResponse:
        """The holder decides not to share, with reasons."""
        return await self._decisions.decide(request, context, service_pb.DeclineToShareResponse)

    async def WithdrawConsent(
        self, request: service_pb.WithdrawConsentRequest, context: Context
    ) -> service_pb.WithdrawConsentResponse:
        """The holder records consent withdrawn after delivery; the recipient is told."""
        return await self._decisions.decide(request, context, service_pb.WithdrawConsentResponse)

    async def WithdrawRequest(
        self, request: service_pb.WithdrawRequestRequest, context: Context
    ) -> service_pb.WithdrawRequestResponse:
        """The requester withdraws the request at any open step."""
        return await self._decisions.decide(request, context, service_pb.WithdrawRequestResponse)

    async def ChangeUrgency(
        self, request: service_pb.ChangeUrgencyRequest, context: Context
    ) -> service_pb.ChangeUrgencyResponse:
        """The requester re-rates the urgency; running deadlines move."""
        return await self._decisions.decide(request, context, service_pb.ChangeUrgencyResponse)

    async def Acknowledge(
        self, request: service_pb.AcknowledgeRequest, context: Context
    ) -> service_pb.AcknowledgeResponse:
        """The requester acknowledges one holder's delivery (or a recipient a disclosure)."""
        return await self._decisions.decide(request, context, service_pb.AcknowledgeResponse)

    async def DecideDisclosure(
        self, request: service_pb.DecideDisclosureRequest, context: Context
    ) -> service_pb.DecideDisclosureResponse:
        """An approver at the holder approves or rejects a disclosure without consent."""
        return await self._decisions.decide(request, context, service_pb.DecideDisclosureResponse)

    # -- reads ------------------------------------------------------------------------------

    async def GetCase(
        self, request: service_pb.GetCaseRequest, context: Context
    ) -> service_pb.GetCaseResponse:
        """The case as it stands, for an agency that is party to it."""
        call = current()
        call.read = access.Read(Action.VIEW, request.read)
        registry = self._registry()
        agency = call.agency_id = caller_agency(context, registry)
        _raise_if(
            validation.validate_case_ref(request.case_ref)
            + access.validate_read(request.read, registry.get(agency))
        )
        call.case_ref = request.case_ref
        # 👉 One round trip, not two: the exchanges this caller may see are read while the
        # case is (when this gateway already knows who the case's parties are).
        known = self._known_exchanges(request.case_ref, agency)
        reads = asyncio.ensure_future(self._views.exchanges(request.case_ref, known, rpc_timeout()))
        try:
            case = await parties.case_for_party(self._views, request.case_ref, agency)
            read = await reads
        finally:
            reads.cancel()
        # A closed exchange's copy in the case wins over its memo: the copy carries what
        # happened after it closed (a consent withdrawal's notice).
        copied = {h.holding_agency_id for h in case.record.holders}
        fresh = {holder: record for holder, record in read.items() if holder not in copied}
        response = service_pb.GetCaseResponse(
            case=await parties.visible(self._views, case, fresh, agency)
        )
        call.read.case_refs.append(request.case_ref)
        return response

    def _known_exchanges(self, case_ref: str, agency: str) -> list[str]:
        """The exchanges of ``case_ref`` that ``agency`` may see, if this gateway has seen
        the case's parties; [] otherwise (they are read once the case has been)."""
        known = self._views.parties(case_ref)
        if known is None:
            return []
        requester, holders = known
        if agency == requester:
            return list(holders)
        return [agency] if agency in holders else []

    async def ListCases(
        self, request: service_pb.ListCasesRequest, context: Context
    ) -> service_pb.ListCasesResponse:
        """The caller's own cases, filtered and paged."""
        call = current()
        read = call.read = access.Read(Action.LIST, request.read)
        registry = self._registry()
        agency = call.agency_id = caller_agency(context, registry)
        _raise_if(
            listing.validate_list_cases(request)
            + access.validate_read(request.read, registry.get(agency))
        )
        return await case_list.list_cases(self._client, self._views.archive, request, agency, read)

    async def ListAccessEvents(
        self, request: service_pb.ListAccessEventsRequest, context: Context
    ) -> service_pb.ListAccessEventsResponse:
        """The case's access history, for a party to it."""
        call = current()
        agency = call.agency_id = caller_agency(context, self._registry())
        violations = validation.validate_case_ref(request.case_ref)
        after = -1
        if request.page_token:
            try:
                after = int(request.page_token)
            except ValueError:
                violations.append(FieldViolation("page_token", "not a page token of this list"))
        _raise_if(violations)
        call.case_ref = request.case_ref
        await parties.case_for_party(self._views, request.case_ref, agency)
        if self._access_log is None:
            raise GatewayError(
                grpc.StatusCode.FAILED_PRECONDITION, "this gateway keeps no access history"
            )
        size = min(request.page_size or 50, 200) if request.page_size >= 0 else 50
        found = await asyncio.to_thread(self._access_log.events, request.case_ref, after, size)
        now = datetime.now(UTC)
        shown = [access.to_proto(e) for e in found if e.disclosed_to(agency, now)]
        next_token = str(found[-1].seq) if len(found) == size else ""
        return service_pb.ListAccessEventsResponse(events=shown, next_page_token=next_token)

    async def WatchCase(
        self, request: service_pb.WatchCaseRequest, context: Context
    ) -> AsyncGenerator[service_pb.WatchCaseResponse, None]:
        """The case's events as they happen, from ``from_event``, until the case closes."""
        if self._watches >= self.max_watches:
            raise GatewayError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many watches; retry later")
        self._watches += 1
        try:
            events = case_watch.watch_case(
                self._client, self._views, self.frame, self._registry(), request, context,
                lambda: self.poll_interval,
            )  # fmt: skip
            async with contextlib.aclosing(events):
                async for event in events:
                    yield service_pb.WatchCaseResponse(event=event)
        finally:
            self._watches -= 1


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        raise invalid_argument(violations)
