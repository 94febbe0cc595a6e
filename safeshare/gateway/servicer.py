"""The ``sharing.v1.CaseService`` servicer: proto in, Temporal call, proto out.

No business logic lives here. The workflows decide what may happen to a case (their update
validators reject out-of-turn, unpermitted or incomplete decisions); the servicer establishes
who is calling, rejects malformed calls before they reach Temporal, routes each command to the
workflow that owns it, and maps every outcome to a gRPC status code.

One policy for "not yours": a caller that is not party to a case (neither its requester nor
one of its holders), or a holder of a case the protocol gate has not passed, gets NOT_FOUND,
the same answer as for a case that does not exist, so it cannot learn that the case exists.
A party acting outside its role gets PERMISSION_DENIED. What a party sees of a case (GetCase,
WatchCase, ListCases and every command's reply) is decided in one place,
``safeshare.gateway.party_view``.

Routing (``workflows.ids``):

- requester commands (WithdrawRequest, ChangeUrgency) update the case, ``case_workflow_id``;
- holder commands (RecordConsent, ProposeOverride, DecideOverride, ShareFirst, DeclineToShare,
  WithdrawConsent) update the caller's own exchange, ``holder_exchange_workflow_id(ref, caller)``;
- Acknowledge (requester) updates the exchange of the holder whose delivery is acknowledged.

Reads need no hub worker: GetCase (and every command's reply) reads the view each workflow of
the case keeps in its memo, one describe per workflow (``safeshare.open_cases``; a case started
before views were published is queried); ListCases runs a visibility list query
(``safeshare.gateway.listing``); WatchCase is woken by the case's histories and reads the same
views (``safeshare.gateway.watch``).

Deadlines: every Temporal call gets ``rpc_timeout`` = the caller's remaining deadline, capped
at ``TEMPORAL_RPC_TIMEOUT``, so no Temporal call outlives the call that asked for it; and when
the caller's deadline passes or it cancels, grpc cancels the handler task, which cancels the
Temporal call in flight (an update already accepted by a workflow stays applied: Temporal
decides atomically, and the caller's retry with the same ``command_id`` is answered as the first
call would have been, ``safeshare.gateway.commands``).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import grpc
import structlog
from google.protobuf.message import Message
from temporalio import workflow
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from partnership.registry import Registry, RegistrySource
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import open_cases
from safeshare.access.events import Action
from safeshare.access.log import AccessLog
from safeshare.archive.reader import CaseReader
from safeshare.archive.store import ArchiveStore, ArchiveUnavailable
from safeshare.gateway import (
    access,
    closed_listing,
    commands,
    disclosure_view,
    listing,
    party_view,
    validation,
    watch,
)
from safeshare.gateway import disclosure_validation as dv
from safeshare.gateway.errors import GatewayError, abort, invalid_argument
from safeshare.gateway.identity import caller_agency
from safeshare.gateway.refusals import _refusal, _reused
from safeshare.gateway.signing import GatewaySigner
from safeshare.gateway.validation import FieldViolation
from safeshare.metrics import count_gateway_request
from safeshare.tls import peer_common_name
from workflows import seal
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.disclosure_case import DisclosureCase
from workflows.domain.case_view import merge_case_view
from workflows.holder_exchange import HolderExchange
from workflows.ids import (
    HUB_TASK_QUEUE,
    case_ref_for,
    case_workflow_id,
    consent_withdrawal_workflow_id,
    disclosure_ref_for,
    holder_exchange_workflow_id,
)
from workflows.sharing_case import SharingCase

T = TypeVar("T")
M = TypeVar("M", bound=Message)
R = TypeVar("R")

# Below a caller's usual deadline, so a stuck Temporal call surfaces as UNAVAILABLE from us
# rather than as the caller's own DEADLINE_EXCEEDED with nothing logged here.
TEMPORAL_RPC_TIMEOUT = timedelta(seconds=10)
# The monotonic time the current call's deadline passes, or None; per handler task.
_CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "call_deadline", default=None
)

# CANCELLED is what the client reports when our own rpc_timeout ends a call (an update the
# workflow has not answered in time): the caller may retry later, so it is not INTERNAL.
# FAILED_PRECONDITION from Temporal (never a workflow's refusal: those arrive as update
# failures) means the workflow cannot answer yet: its first workflow task has not completed
# (WorkflowNotReadyFailure), or the server is settling after a restart; the chaos runs see both.
_TEMPORAL_DOWN = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.FAILED_PRECONDITION,
)
# Fields the workflows stamp themselves; a caller's value is never passed on.
_SET_BY_SAFESHARE = (
    "decided_at",
    "proposed_at",
    "withdrawn_at",
    "changed_at",
    "acknowledged_at",
    "recipient_notified",
    "gateway_seal",
)
WRONG_ROLE = "the calling agency has no such role in this case"
KNOWN_CASES = 10_000
"""How many cases' parties a gateway remembers (a few hundred bytes each)."""
COMMAND_MEMO = "command"
"""A consent-withdrawal notice's memo key for the update id of the command that started it."""
REQUEST_DIGEST_MEMO = "request_digest"
"""The case's memo key for the keyed digest of the request that opened it."""
# Temporal is overloaded (e.g. too many updates in flight on one case): retry after a pause.
TEMPORAL_BUSY_RETRY_SECONDS = 1.0

CaseHandle = WorkflowHandle[SharingCase, pb.DecisionRecord]
ExchangeHandle = WorkflowHandle[HolderExchange, pb.HolderRecord]
HolderUpdate = workflow.UpdateMethodMultiParam[
    [HolderExchange, M], pb.HolderRecord | pb.CommandResult
]
CaseUpdate = workflow.UpdateMethodMultiParam[[SharingCase, M], pb.CaseView | pb.CommandResult]


@dataclass
class _Call:
    """What the access log line of one RPC says: ids and codes only."""

    rpc: str
    agency_id: str = ""
    case_ref: str = ""
    read: access.Read | None = None
    """Set by a read RPC: what its access event records."""


@dataclass(frozen=True)
class _Command:
    """One decision RPC as the router sees it: the case, the command message (named by its
    field in the request, which prefixes its field paths) and the structural violations."""

    case_ref: str
    field: str
    message: Message
    violations: list[FieldViolation]
    fallback_field: str = ""
    """Where a workflow refusal that names no field is reported (default: ``field``)."""
    command_id: str = ""
    """The caller's idempotency key (``safeshare.gateway.commands``); empty for a fresh one."""


class CaseServiceServicer(service_grpc.CaseServiceServicer):
    """Serves the Case API by starting, querying and updating the case workflows.

    Args:
        client: the Temporal client (with the payload codec, when one is configured).
        registry: the partnership registry that says which agencies are partners.
        hub_task_queue: the task queue the hub worker running SharingCase polls.
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
        self._signer = signer
        self._digest_key = signer.derived_key(b"request-digest")
        self._command_key = signer.derived_key(b"command-digest")
        self._registry_source = registry
        self._hub_task_queue = hub_task_queue
        self._closed_cases = CaseReader(client, archive)
        self._watches = 0
        self._parties: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()
        """Requester and holders of cases this gateway has seen (they never change), so
        GetCase reads a case's exchanges alongside the case, not after it."""
        self.max_watches = watch.MAX_WATCHES
        self.poll_interval = watch.POLL_INTERVAL

    @property
    def active_watches(self) -> int:
        """How many WatchCase streams are being served now."""
        return self._watches

    # -- the RPCs ---------------------------------------------------------------------------

    @property
    def _registry(self) -> Registry:
        """The partnership registry now (a file source is re-read when it changes)."""
        source = self._registry_source
        return source.current() if isinstance(source, RegistrySource) else source

    async def SubmitRequest(
        self, request: service_pb.SubmitRequestRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.SubmitRequestResponse:
        """Open a case for a request, or return the case its request id already opened."""
        return await self._serve(
            "SubmitRequest", context, lambda call: self._submit(request, context, call)
        )

    async def GetCase(
        self, request: service_pb.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.GetCaseResponse:
        """The case as it stands, for an agency that is party to it."""
        return await self._serve(
            "GetCase", context, lambda call: self._get_case(request, context, call)
        )

    async def RecordConsent(
        self, request: service_pb.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.RecordConsentResponse:
        """The holder records a consent decision, or why consent is not sought."""
        command = _Command(
            request.case_ref,
            "decision",
            request.decision,
            validation.validate_record_consent(request),
            command_id=request.command_id,
        )
        view, receipt = await self._holder_rpc(
            "RecordConsent", context, command, HolderExchange.record_consent
        )
        return service_pb.RecordConsentResponse(case=view, applied=receipt)

    async def ProposeOverride(
        self, request: service_pb.ProposeOverrideRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.ProposeOverrideResponse:
        """The holder proposes an override with its full justification."""
        command = _Command(
            request.case_ref,
            "proposal",
            request.proposal,
            validation.validate_propose_override(request),
            command_id=request.command_id,
        )
        view, receipt = await self._holder_rpc(
            "ProposeOverride", context, command, HolderExchange.propose_override
        )
        return service_pb.ProposeOverrideResponse(case=view, applied=receipt)

    async def DecideOverride(
        self, request: service_pb.DecideOverrideRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.DecideOverrideResponse:
        """An approver at the holder approves or rejects the proposed override."""
        command = _Command(
            request.case_ref,
            "decision",
            request.decision,
            validation.validate_decide_override(request),
            command_id=request.command_id,
        )
        view, receipt = await self._holder_rpc(
            "DecideOverride", context, command, HolderExchange.decide_override
        )
        return service_pb.DecideOverrideResponse(case=view, applied=receipt)

    async def ShareFirst(
        self, request: service_pb.ShareFirstRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.ShareFirstResponse:
        """RED only: the holder shares now and justifies within the override deadline."""
        command = _Command(
            request.case_ref,
            "decision",
            request.decision,
            validation.validate_share_first(request),
            command_id=request.command_id,
        )
        view, receipt = await self._holder_rpc(
            "ShareFirst", context, command, HolderExchange.share_first
        )
        return service_pb.ShareFirstResponse(case=view, applied=receipt)

    async def DeclineToShare(
        self, request: service_pb.DeclineToShareRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.DeclineToShareResponse:
        """The holder decides not to share, with reasons."""
        command = _Command(
            request.case_ref,
            "decision",
            request.decision,
            validation.validate_decline_to_share(request),
            "decision.reasons",
            command_id=request.command_id,
        )
        view, receipt = await self._holder_rpc(
            "DeclineToShare", context, command, HolderExchange.decline_to_share
        )
        return service_pb.DeclineToShareResponse(case=view, applied=receipt)

    async def WithdrawConsent(
        self, request: service_pb.WithdrawConsentRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.WithdrawConsentResponse:
        """The holder records consent withdrawn after delivery; the recipient is told."""
        command = _Command(
            request.case_ref,
            "withdrawal",
            request.withdrawal,
            validation.validate_withdraw_consent(request),
            command_id=request.command_id,
        )
        view, receipt = await self._serve(
            "WithdrawConsent",
            context,
            lambda call: self._withdraw_consent(context, call, command),
        )
        return service_pb.WithdrawConsentResponse(case=view, applied=receipt)

    async def WithdrawRequest(
        self, request: service_pb.WithdrawRequestRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.WithdrawRequestResponse:
        """The requester withdraws the request at any open step."""
        command = _Command(
            request.case_ref,
            "withdrawal",
            request.withdrawal,
            validation.validate_withdraw_request(request),
            command_id=request.command_id,
        )
        view, receipt = await self._case_rpc(
            "WithdrawRequest", context, command, SharingCase.withdraw_request
        )
        return service_pb.WithdrawRequestResponse(case=view, applied=receipt)

    async def ChangeUrgency(
        self, request: service_pb.ChangeUrgencyRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.ChangeUrgencyResponse:
        """The requester re-rates the urgency; running deadlines move."""
        command = _Command(
            request.case_ref,
            "change",
            request.change,
            validation.validate_change_urgency(request),
            "change.urgency",
            command_id=request.command_id,
        )
        view, receipt = await self._case_rpc(
            "ChangeUrgency", context, command, SharingCase.change_urgency
        )
        return service_pb.ChangeUrgencyResponse(case=view, applied=receipt)

    async def Acknowledge(
        self, request: service_pb.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.AcknowledgeResponse:
        """The requester acknowledges one holder's delivery."""
        command = _Command(
            request.case_ref,
            "acknowledgement",
            request.acknowledgement,
            validation.validate_acknowledge(request),
            command_id=request.command_id,
        )
        view, receipt = await self._serve(
            "Acknowledge", context, lambda call: self._acknowledge(context, call, command)
        )
        return service_pb.AcknowledgeResponse(case=view, applied=receipt)

    async def SubmitDisclosure(
        self, request: service_pb.SubmitDisclosureRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.SubmitDisclosureResponse:
        """Open a disclosure case, or return the case its disclosure id already opened."""
        return await self._serve(
            "SubmitDisclosure",
            context,
            lambda call: self._submit_disclosure(request, context, call),
        )

    async def RecordDisclosureNotMade(
        self,
        request: service_pb.RecordDisclosureNotMadeRequest,
        context: grpc.aio.ServicerContext,
    ) -> service_pb.RecordDisclosureNotMadeResponse:
        """Record a disclosure considered and not made, with reasons."""
        return await self._serve(
            "RecordDisclosureNotMade", context, lambda call: self._not_made(request, context, call)
        )

    async def DecideDisclosure(
        self, request: service_pb.DecideDisclosureRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.DecideDisclosureResponse:
        """An approver at the holder approves or rejects a disclosure without consent."""
        command = _Command(
            request.case_ref,
            "decision",
            request.decision,
            dv.validate_decide_disclosure(request),
            command_id=request.command_id,
        )
        view, receipt = await self._serve(
            "DecideDisclosure",
            context,
            lambda call: self._decide_disclosure(context, call, command),
        )
        return service_pb.DecideDisclosureResponse(case=view, applied=receipt)

    async def ListCases(
        self, request: service_pb.ListCasesRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.ListCasesResponse:
        """The caller's own cases, filtered and paged."""
        return await self._serve(
            "ListCases", context, lambda call: self._list_cases(request, context, call)
        )

    async def ListAccessEvents(
        self, request: service_pb.ListAccessEventsRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.ListAccessEventsResponse:
        """The case's access history, for a party to it."""
        return await self._serve(
            "ListAccessEvents",
            context,
            lambda call: self._list_access_events(request, context, call),
        )

    async def WatchCase(
        self, request: service_pb.WatchCaseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[service_pb.WatchCaseResponse]:
        """The case's events as they happen, from ``from_event``, until the case closes."""
        call = _Call("WatchCase")
        log = structlog.get_logger(__name__)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        sent = 0
        _start_deadline(context)
        if self._watches >= self.max_watches:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED
            _log_access(log, call, code, started)
            await abort(context, GatewayError(code, "too many watches; retry later"))
        self._watches += 1
        try:
            async for event in self._watch(request, context, call):
                yield service_pb.WatchCaseResponse(event=event)
                sent += 1
        except GatewayError as err:
            code = err.code
            await self._record_refusal(call, code, context)
            await abort(context, err)
        except (asyncio.CancelledError, GeneratorExit):
            # The caller went away or its deadline passed: the poll loop stops here.
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as err:
            error = _failure("WatchCase", err)
            code = error.code
            await abort(context, error)
        finally:
            self._watches -= 1
            _log_access(log, call, code, started, events_sent=sent)

    # -- opening and reading cases ----------------------------------------------------------

    async def _list_cases(
        self, request: service_pb.ListCasesRequest, context: grpc.aio.ServicerContext, call: _Call
    ) -> service_pb.ListCasesResponse:
        call.read = access.Read(Action.LIST, request.read)
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(
            listing.validate_list_cases(request)
            + access.validate_read(request.read, self._registry.get(agency))
        )
        archive = self._closed_cases.archive
        if archive is not None and closed_listing.applies(request):
            query = listing.build_query(closed_listing.unpaged(request), agency)
            return await self._list_with_archive(archive, request, query, agency, call.read)
        try:
            query = listing.build_query(request, agency)
        except listing.BadPageToken as err:
            raise invalid_argument([FieldViolation("page_token", str(err))]) from err
        pages = self._client.list_workflows(
            query.query,
            page_size=query.page_size,
            next_page_token=query.temporal_token,
            rpc_timeout=_rpc_timeout(),
        )
        try:
            await pages.fetch_next_page()
        except RPCError as err:
            # Temporal refuses a token that is ours but no longer valid (its listing changed).
            if err.status == RPCStatusCode.INVALID_ARGUMENT and query.temporal_token:
                raise invalid_argument(
                    [FieldViolation("page_token", "not a page token of this listing")]
                ) from err
            raise
        listed = listing.summaries(pages.current_page or [], query.exchanges)
        cases = [seen for s in listed if (seen := party_view.summary_for(agency, s))]
        call.read.case_refs.extend(summary.case_ref for summary in cases)
        return service_pb.ListCasesResponse(
            cases=cases,
            next_page_token=listing.page_token(query.query, pages.next_page_token),
        )

    async def _list_with_archive(
        self,
        archive: ArchiveStore,
        request: service_pb.ListCasesRequest,
        query: listing.ListQuery,
        agency: str,
        read: access.Read,
    ) -> service_pb.ListCasesResponse:
        """ListCases over the archive, then visibility (``closed_listing``)."""
        try:
            cursor = closed_listing.decode(request.page_token, query.query)
        except listing.BadPageToken as err:
            raise invalid_argument([FieldViolation("page_token", str(err))]) from err
        if cursor is None:
            cursor = closed_listing.Cursor(await asyncio.to_thread(archive.log_size))
        cases: list[service_pb.CaseSummary] = []
        if not cursor.in_visibility:
            after, exhausted = cursor.after, False
            while len(cases) < query.page_size and not exhausted:
                rows = await asyncio.to_thread(
                    archive.cases_of_agency, agency, cursor.log_size, after, query.page_size
                )
                exhausted = len(rows) < query.page_size
                for record_id, index in rows:
                    if len(cases) == query.page_size:
                        exhausted = False  # rows left for the next page
                        break
                    after = (index.closed_at, record_id)
                    found = closed_listing.summary(record_id, index)
                    if found is not None and (seen := party_view.summary_for(agency, found)):
                        cases.append(seen)
            following = closed_listing.Cursor(cursor.log_size, after, in_visibility=exhausted)
            read.case_refs.extend(summary.case_ref for summary in cases)
            return service_pb.ListCasesResponse(
                cases=cases, next_page_token=closed_listing.encode(query.query, following)
            )
        pages = self._client.list_workflows(
            query.query,
            page_size=query.page_size,
            next_page_token=cursor.temporal_token,
            rpc_timeout=_rpc_timeout(),
        )
        try:
            await pages.fetch_next_page()
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT and cursor.temporal_token:
                raise invalid_argument(
                    [FieldViolation("page_token", "not a page token of this listing")]
                ) from err
            raise
        listed = listing.summaries(pages.current_page or [], query.exchanges)
        # 👉 A case the archive had logged when the listing began was listed from it.
        archived = await asyncio.to_thread(
            archive.logged_below, [case_workflow_id(s.case_ref) for s in listed], cursor.log_size
        )
        cases = [
            seen
            for s in listed
            if case_workflow_id(s.case_ref) not in archived
            and (seen := party_view.summary_for(agency, s))
        ]
        read.case_refs.extend(summary.case_ref for summary in cases)
        token = ""
        if pages.next_page_token:
            following = closed_listing.Cursor(
                cursor.log_size, None, in_visibility=True, temporal_token=pages.next_page_token
            )
            token = closed_listing.encode(query.query, following)
        return service_pb.ListCasesResponse(cases=cases, next_page_token=token)

    async def _watch(
        self, request: service_pb.WatchCaseRequest, context: grpc.aio.ServicerContext, call: _Call
    ) -> AsyncIterator[service_pb.CaseEvent]:
        call.read = access.Read(Action.WATCH, request.read)
        agency = call.agency_id = caller_agency(context, self._registry)
        violations = validation.validate_case_ref(request.case_ref)
        violations += access.validate_read(request.read, self._registry.get(agency))
        if not 0 <= request.from_event <= watch.MAX_FROM_EVENT:
            violations.append(
                FieldViolation("from_event", f"must be between 0 and {watch.MAX_FROM_EVENT}")
            )
        _raise_if(violations)
        call.case_ref = request.case_ref
        case = await self._case_for_party(request.case_ref, agency, call)
        party = _party(agency, case)
        asked = case.record.request
        holders = list(asked.holding_agency_ids)
        # A watch may run for hours: it is recorded when it starts serving, not when it ends.
        call.read.case_refs.append(request.case_ref)
        await self._record(call, context)
        next_number = max(request.from_event, 1)
        closed = watch.Closed()
        workflow_ids = [case_workflow_id(request.case_ref)] + [
            holder_exchange_workflow_id(request.case_ref, holder) for holder in holders
        ]
        async with watch.HistoryFeed(self._client, workflow_ids) as feed:
            async for event in self._watched(request, party, asked, feed, closed):
                if event.number >= next_number:
                    yield event
                    next_number = event.number + 1

    async def _watched(
        self,
        request: service_pb.WatchCaseRequest,
        party: Any,
        asked: pb.SharingRequest,
        feed: watch.HistoryFeed,
        closed: watch.Closed,
    ) -> AsyncIterator[service_pb.CaseEvent]:
        """Every settled event the party may see, snapshot after snapshot (each snapshot's
        events start with the previous one's), until the case has closed."""
        holders = list(asked.holding_agency_ids)
        sent = 0
        while True:
            taken = await watch.take_snapshot(
                self._client, request.case_ref, holders, closed, _rpc_timeout, feed.latest
            )
            # 👉 Filtered before numbering: each party's numbers are stable across reconnects.
            if isinstance(party, disclosure_view.Party):
                seen = {
                    source: [
                        e for entry in entries if (e := disclosure_view.entry_for(party, entry))
                    ]
                    for source, entries in taken.entries.items()
                }
            else:
                seen = {
                    source: party_view.entries_for(party, asked, source, entries)
                    for source, entries in taken.entries.items()
                }
            snapshot = watch.Snapshot(seen, taken.ranks, taken.watermark)
            for event in watch.settled_events(snapshot)[sent:]:
                yield event
                sent = event.number
            if snapshot.watermark is None:
                return  # the case and every exchange have closed: that was the last event
            # 👉 Woken as soon as a history records a task (pushed), else after the interval.
            await feed.wait(self.poll_interval)

    async def _submit(
        self,
        request: service_pb.SubmitRequestRequest,
        context: grpc.aio.ServicerContext,
        call: _Call,
    ) -> service_pb.SubmitRequestResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(validation.validate_submit(request))
        unknown = validation.unknown_holders(request, self._registry)
        if unknown:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, validation.NOT_A_PARTNER, unknown)
        _raise_if(validation.self_holders(request, agency))

        sharing = pb.SharingRequest()
        sharing.CopyFrom(request.request)
        # The requesting agency is whoever holds the certificate, whatever the body says.
        sharing.requesting_agency_id = agency
        sharing.ClearField("gateway_seal")
        case_ref = call.case_ref = case_ref_for(agency, sharing.request_id)
        sharing = self._sealed(sharing, case_workflow_id(case_ref), seal.START)
        digest = self._request_digest(sharing)
        try:
            await self._client.start_workflow(
                SharingCase.run,
                sharing,
                id=case_workflow_id(case_ref),
                memo={REQUEST_DIGEST_MEMO: digest},
                task_queue=self._hub_task_queue,
                # 👉 The workflow id is derived from the idempotency key, and neither a running
                # nor a closed case with that id may be replaced: a resubmission finds its case.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=_summary(sharing),
                rpc_timeout=_rpc_timeout(),
            )
        except WorkflowAlreadyStartedError:
            existing = await self._case_handle(case_ref).describe(rpc_timeout=_rpc_timeout())
            stored = await existing.memo_value(REQUEST_DIGEST_MEMO, "")
            # A case opened before digests were kept has none: it is found, as before.
            if stored and stored != digest:
                raise GatewayError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"request_id was already used for another request: case {case_ref}",
                    [FieldViolation("request.request_id", f"already used by case {case_ref}")],
                ) from None
            return service_pb.SubmitRequestResponse(case_ref=case_ref, created=False)
        self._saw_parties(case_ref, sharing)
        return service_pb.SubmitRequestResponse(case_ref=case_ref, created=True)

    def _request_digest(self, sharing: pb.SharingRequest) -> str:
        """A keyed digest of the request (never the request itself: the memo must hold no
        personal data, and a plain hash of a child's name and date of birth can be guessed)."""
        body = pb.SharingRequest()
        body.CopyFrom(sharing)
        body.ClearField("gateway_seal")
        return hmac.new(
            self._digest_key, body.SerializeToString(deterministic=True), hashlib.sha256
        ).hexdigest()

    async def _submit_disclosure(
        self,
        request: service_pb.SubmitDisclosureRequest,
        context: grpc.aio.ServicerContext,
        call: _Call,
    ) -> service_pb.SubmitDisclosureResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(dv.validate_submit_disclosure(request))
        recipients = list(request.disclosure.recipient_agency_ids)
        path = "disclosure.recipient_agency_ids"
        unknown = dv.unknown_recipients(recipients, path, self._registry)
        if unknown:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, validation.NOT_A_PARTNER, unknown)
        _raise_if(dv.self_recipients(recipients, path, agency))
        disclosure = pb.Disclosure()
        disclosure.CopyFrom(request.disclosure)
        # The holder is whoever holds the certificate, whatever the body says.
        disclosure.holding_agency_id = agency
        case_ref = call.case_ref = disclosure_ref_for(agency, disclosure.disclosure_id)
        kind = pb.DisclosureKind.Name(disclosure.kind).removeprefix("DISCLOSURE_KIND_")
        created = await self._start_disclosure(
            case_ref, pb.DisclosureCaseInput(disclosure=disclosure),
            f"{kind} disclosure: {agency} tells {', '.join(recipients) or 'children social care'}",
        )  # fmt: skip
        return service_pb.SubmitDisclosureResponse(case_ref=case_ref, created=created)

    async def _not_made(
        self,
        request: service_pb.RecordDisclosureNotMadeRequest,
        context: grpc.aio.ServicerContext,
        call: _Call,
    ) -> service_pb.RecordDisclosureNotMadeResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(dv.validate_not_made(request))
        not_made = pb.DisclosureNotMade()
        not_made.CopyFrom(request.not_made)
        not_made.holding_agency_id = agency
        not_made.ClearField("decided_at")
        case_ref = call.case_ref = disclosure_ref_for(agency, not_made.disclosure_id)
        kind = pb.DisclosureKind.Name(not_made.kind).removeprefix("DISCLOSURE_KIND_")
        created = await self._start_disclosure(
            case_ref,
            pb.DisclosureCaseInput(not_made=not_made),
            f"{kind} disclosure considered and not made by {agency}",
        )
        return service_pb.RecordDisclosureNotMadeResponse(case_ref=case_ref, created=created)

    async def _start_disclosure(
        self, case_ref: str, case: pb.DisclosureCaseInput, summary: str
    ) -> bool:
        """Start the disclosure case; False when its id had already opened it."""
        workflow_id = case_workflow_id(case_ref)
        try:
            await self._client.start_workflow(
                DisclosureCase.run,
                self._sealed(case, workflow_id, seal.START),
                id=workflow_id,
                task_queue=self._hub_task_queue,
                # 👉 As for a request: the id comes from the idempotency key, and no case with
                # it may be replaced, so a resubmission finds its case.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary,
                rpc_timeout=_rpc_timeout(),
            )
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def _decide_disclosure(
        self, context: grpc.aio.ServicerContext, call: _Call, command: _Command
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        agency, case = await self._party_to(context, call, command)
        if not disclosure_view.is_disclosure(case) or (
            agency != case.record.disclosure.holding_agency_id
        ):
            raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, WRONG_ROLE)
        handle = self._client.get_workflow_handle_for(
            DisclosureCase.run, case_workflow_id(command.case_ref)
        )
        decision = _as_actor(cast(pb.DisclosureApproval, command.message), agency)
        update_id = self._update_id(handle.id, command, decision)
        view = await _translated(
            command,
            handle.execute_update(
                DisclosureCase.decide_disclosure,
                self._sealed(decision, handle.id, update_id),
                id=update_id,
                rpc_timeout=_rpc_timeout(),
            ),
        )
        published = await _as_published(handle, pb.CaseView, view)
        return await self._merged(published, {}, agency), _receipt(update_id, view)

    async def _get_case(
        self, request: service_pb.GetCaseRequest, context: grpc.aio.ServicerContext, call: _Call
    ) -> service_pb.GetCaseResponse:
        call.read = access.Read(Action.VIEW, request.read)
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(
            validation.validate_case_ref(request.case_ref)
            + access.validate_read(request.read, self._registry.get(agency))
        )
        call.case_ref = request.case_ref
        # 👉 One round trip, not two: the exchanges this caller may see are read while the
        # case is (when this gateway already knows who the case's parties are).
        reads = {
            holder: asyncio.ensure_future(self._holder_record(request.case_ref, holder))
            for holder in self._known_exchanges(request.case_ref, agency)
        }
        try:
            case = await self._case_for_party(request.case_ref, agency, call)
            read = {holder: await task for holder, task in reads.items()}
        finally:
            for task in reads.values():
                task.cancel()
        # A closed exchange's copy in the case wins over its memo: the copy carries what
        # happened after it closed (a consent withdrawal's notice).
        copied = {h.holding_agency_id for h in case.record.holders}
        fresh = {
            holder: record
            for holder, record in read.items()
            if record is not None and holder not in copied
        }
        response = service_pb.GetCaseResponse(case=await self._merged(case, fresh, agency))
        call.read.case_refs.append(request.case_ref)
        return response

    def _known_exchanges(self, case_ref: str, agency: str) -> list[str]:
        """The exchanges of ``case_ref`` that ``agency`` may see, if this gateway has seen
        the case's parties; [] otherwise (they are read once the case has been)."""
        parties = self._parties.get(case_ref)
        if parties is None:
            return []
        requester, holders = parties
        if agency == requester:
            return list(holders)
        return [agency] if agency in holders else []

    def _saw_parties(self, case_ref: str, request: pb.SharingRequest) -> None:
        if not request.requesting_agency_id:
            return
        self._parties[case_ref] = (request.requesting_agency_id, tuple(request.holding_agency_ids))
        self._parties.move_to_end(case_ref)
        while len(self._parties) > KNOWN_CASES:
            self._parties.popitem(last=False)

    async def _list_access_events(
        self,
        request: service_pb.ListAccessEventsRequest,
        context: grpc.aio.ServicerContext,
        call: _Call,
    ) -> service_pb.ListAccessEventsResponse:
        agency = call.agency_id = caller_agency(context, self._registry)
        violations = validation.validate_case_ref(request.case_ref)
        after = -1
        if request.page_token:
            try:
                after = int(request.page_token)
            except ValueError:
                violations.append(FieldViolation("page_token", "not a page token of this list"))
        _raise_if(violations)
        call.case_ref = request.case_ref
        await self._case_for_party(request.case_ref, agency)
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

    # -- commands ---------------------------------------------------------------------------

    async def _holder_rpc(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        command: _Command,
        update: HolderUpdate[Any],
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        return await self._serve(
            rpc, context, lambda call: self._holder_command(context, call, command, update)
        )

    async def _case_rpc(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        command: _Command,
        update: CaseUpdate[Any],
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        return await self._serve(
            rpc, context, lambda call: self._case_command(context, call, command, update)
        )

    async def _holder_command(
        self,
        context: grpc.aio.ServicerContext,
        call: _Call,
        command: _Command,
        update: HolderUpdate[Any],
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        """A holder's decision, sent to the caller's own exchange."""
        agency, case = await self._party_to(context, call, command)
        if agency not in case.record.request.holding_agency_ids:
            raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, WRONG_ROLE)
        record, receipt = await self._update_exchange(command, agency, agency, update, case)
        fresh = await self._case_view(command.case_ref)
        return await self._merged(fresh, _fresh(agency, record), agency), receipt

    async def _withdraw_consent(
        self, context: grpc.aio.ServicerContext, call: _Call, command: _Command
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        """Consent withdrawn after delivery: the open exchange records it itself; once the
        exchange has closed, a ConsentWithdrawalNotice workflow records it and tells the
        recipient (one per exchange: a repeat is FAILED_PRECONDITION)."""
        agency, case = await self._party_to(context, call, command)
        if agency not in case.record.request.holding_agency_ids:
            raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, WRONG_ROLE)
        closed = {h.holding_agency_id: h for h in case.record.holders}
        exchange = self._client.get_workflow_handle(
            holder_exchange_workflow_id(command.case_ref, agency)
        )
        try:
            described = await exchange.describe(rpc_timeout=_rpc_timeout())
            running = described.status == WorkflowExecutionStatus.RUNNING
        except RPCError as err:
            # 👉 Deleted after its retention: the archived case's copy is its record.
            if err.status != RPCStatusCode.NOT_FOUND or agency not in closed:
                if err.status == RPCStatusCode.NOT_FOUND:
                    raise GatewayError(
                        grpc.StatusCode.FAILED_PRECONDITION, "nothing was delivered"
                    ) from err
                raise
            running = False
        if running or agency not in closed:
            result, receipt = await self._update_exchange(
                command, agency, agency, HolderExchange.withdraw_consent
            )
            fresh = await self._case_view(command.case_ref)
            return await self._merged(fresh, _fresh(agency, result), agency), receipt
        record = pb.HolderRecord()
        record.CopyFrom(closed[agency])
        if not record.HasField("receipt"):
            raise GatewayError(grpc.StatusCode.FAILED_PRECONDITION, "nothing was delivered")
        notice = pb.ConsentWithdrawalNoticeInput(
            case_ref=command.case_ref,
            holding_agency_id=agency,
            recipient_agency_id=case.record.request.requesting_agency_id,
            delivery_ids=[record.receipt.delivery_id],
        )
        notice_id = consent_withdrawal_workflow_id(command.case_ref, agency)
        if await self._notice_only_archived(notice_id):
            # Its first notice was archived and Temporal has deleted it: a start would not
            # find it and would tell the recipient twice.
            raise GatewayError(
                grpc.StatusCode.FAILED_PRECONDITION, "consent withdrawal already recorded"
            )
        withdrawal = cast(pb.ConsentWithdrawal, _as_actor(command.message, agency))
        notice.withdrawal.CopyFrom(self._sealed(withdrawal, notice_id, seal.START))
        # The notice is a workflow start, not an update: its memo keeps the command's id, so
        # a repeat of the same command finds the notice it started.
        update_id = self._update_id(notice_id, command, withdrawal)
        try:
            handle = await self._client.start_workflow(
                ConsentWithdrawalNotice.run,
                self._sealed(notice, notice_id, seal.START),
                id=notice_id,
                task_queue=self._hub_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Consent withdrawn at {agency} for case {command.case_ref}",
                memo={COMMAND_MEMO: update_id},
                rpc_timeout=_rpc_timeout(),
            )
        except WorkflowAlreadyStartedError as err:
            handle = self._client.get_workflow_handle_for(ConsentWithdrawalNotice.run, notice_id)
            described = await handle.describe(rpc_timeout=_rpc_timeout())
            first = await described.memo_value(COMMAND_MEMO, "")
            if first != update_id:
                if first and commands.command_id_of(first) == commands.command_id_of(update_id):
                    raise _reused() from err
                raise GatewayError(
                    grpc.StatusCode.FAILED_PRECONDITION, "consent withdrawal already recorded"
                ) from err
        try:
            withdrawal = await asyncio.wait_for(handle.result(), _rpc_timeout().total_seconds())
        except TimeoutError:
            # Recorded and still being pushed to the recipient (its system may be down).
            withdrawal = notice.withdrawal
        # 👉 No update: the receipt is the closed exchange's record, which no longer changes
        # (its entries and outcome as it closed), so every repeat answers the same.
        receipt = _receipt(update_id, record)
        record.consent_withdrawal.CopyFrom(withdrawal)
        return await self._merged(case, {agency: record}, agency), receipt

    async def _notice_only_archived(self, notice_id: str) -> bool:
        """Whether a consent-withdrawal notice is in the archive and no longer in Temporal."""
        archive = self._closed_cases.archive
        if archive is None or not await asyncio.to_thread(archive.known, [notice_id]):
            return False
        try:
            await self._client.get_workflow_handle(notice_id).describe(rpc_timeout=_rpc_timeout())
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return False

    async def _case_command(
        self,
        context: grpc.aio.ServicerContext,
        call: _Call,
        command: _Command,
        update: CaseUpdate[Any],
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        """A requester's command, sent to the case (which forwards it to open exchanges)."""
        agency, case = await self._party_to(context, call, command)
        _require_requester(agency, case)
        handle = self._case_handle(command.case_ref)
        message = _as_actor(command.message, agency)
        update_id = self._update_id(handle.id, command, message)
        try:
            result = await _translated(
                command,
                handle.execute_update(
                    update,
                    self._sealed(message, handle.id, update_id),
                    id=update_id,
                    rpc_timeout=_rpc_timeout(),
                ),
            )
        except _StepClosed:
            if not commands.applied_in(case.record, update_id):
                raise
            # Applied before the case closed, and Temporal has deleted it since: the
            # archived history holds the update's result.
            archived = await self._closed_cases.update_result(
                command.case_ref, handle.id, update_id
            )
            receipt = _receipt(update_id, archived)
            result = None
        else:
            receipt = _receipt(update_id, result)
        # A case started with compact histories answers with what changed: the view is read
        # (from the memo of a case that keeps it there, written with the update's result).
        view = (
            result if isinstance(result, pb.CaseView) else await self._case_view(command.case_ref)
        )
        return await self._merged(view, {}, agency), receipt

    async def _acknowledge(
        self, context: grpc.aio.ServicerContext, call: _Call, command: _Command
    ) -> tuple[pb.CaseView, service_pb.CommandReceipt]:
        """The requester acknowledges the delivery of one holder, named or the only one."""
        agency, case = await self._party_to(context, call, command)
        if disclosure_view.is_disclosure(case):
            if _party(agency, case).role is not disclosure_view.Role.RECIPIENT:
                raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, WRONG_ROLE)
            handle = self._client.get_workflow_handle_for(
                DisclosureCase.run, case_workflow_id(command.case_ref)
            )
            ack = _as_actor(cast(pb.Acknowledgement, command.message), agency)
            update_id = self._update_id(handle.id, command, ack)
            view = await _translated(
                command,
                handle.execute_update(
                    DisclosureCase.acknowledge,
                    self._sealed(ack, handle.id, update_id),
                    id=update_id,
                    rpc_timeout=_rpc_timeout(),
                ),
            )
            published = await _as_published(handle, pb.CaseView, view)
            return await self._merged(published, {}, agency), _receipt(update_id, view)
        _require_requester(agency, case)
        holder = _acknowledged_holder(command.message, case.record.request)
        record, receipt = await self._update_exchange(
            command, agency, holder, HolderExchange.acknowledge, case
        )
        fresh = await self._case_view(command.case_ref)
        return await self._merged(fresh, _fresh(holder, record), agency), receipt

    async def _party_to(
        self, context: grpc.aio.ServicerContext, call: _Call, command: _Command
    ) -> tuple[str, pb.CaseView]:
        """The caller and the case, once the call is well formed and the caller a party."""
        agency = call.agency_id = caller_agency(context, self._registry)
        _raise_if(command.violations)
        call.case_ref = command.case_ref
        # Party check before anything else: a non-party never hears the workflow's reason.
        return agency, await self._case_for_party(command.case_ref, agency)

    async def _update_exchange(
        self,
        command: _Command,
        agency: str,
        holder: str,
        update: HolderUpdate[Any],
        case: pb.CaseView | None = None,
    ) -> tuple[pb.HolderRecord | pb.CommandResult, service_pb.CommandReceipt]:
        """The update's result from ``holder``'s exchange and its receipt; for a repeat of a
        command applied before the exchange's history was deleted, the record ``case`` holds
        of it, and the receipt from the update's result in the archived history."""
        handle: ExchangeHandle = self._client.get_workflow_handle_for(
            HolderExchange.run, holder_exchange_workflow_id(command.case_ref, holder)
        )
        message = _as_actor(command.message, agency)
        update_id = self._update_id(handle.id, command, message)
        try:
            result = await _translated(
                command,
                handle.execute_update(
                    update,
                    self._sealed(message, handle.id, update_id),
                    id=update_id,
                    rpc_timeout=_rpc_timeout(),
                ),
            )
            return result, _receipt(update_id, result)
        except _StepClosed:
            closed = [
                h
                for h in (case.record.holders if case is not None else [])
                if h.holding_agency_id == holder and commands.applied_in(h, update_id)
            ]
            if not closed:
                raise
            archived = await self._closed_cases.update_result(
                command.case_ref, handle.id, update_id
            )
            return closed[0], _receipt(update_id, archived)

    def _update_id(self, workflow_id: str, command: _Command, message: Message) -> str:
        """The Temporal update id of ``message`` as the caller's command (``commands``)."""
        return commands.update_id(self._command_key, workflow_id, command.command_id, message)

    def _sealed(self, message: M, workflow_id: str, command_id: str) -> M:
        """``message`` with the gateway's seal for that workflow and command."""
        return self._signer.sealed(message, workflow_id, command_id)

    # -- views ------------------------------------------------------------------------------

    def _case_handle(self, case_ref: str) -> CaseHandle:
        return self._client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))

    async def _case_view(self, case_ref: str) -> pb.CaseView:
        handle = self._case_handle(case_ref)
        try:
            # 👉 An open case is read from the view it keeps in its memo (one describe, no
            # worker; a case started before views were published is queried). A closed case
            # is read from the archive, or from its result (the history's close event) until
            # archived: Temporal may have deleted it after its retention.
            try:
                described = await open_cases.case_view(handle, _rpc_timeout())
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                described = None  # deleted after its retention: the archive may hold it
            if described is None or not described.running:
                closed = await self._closed_cases.closed_case(case_ref, _rpc_timeout())
                if closed is not None:
                    return closed
                if described is None:
                    raise _case_not_found()
            if described.view is None:
                raise _case_not_found()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise _case_not_found() from err
            raise
        self._saw_parties(case_ref, described.view.record.request)
        return described.view

    async def _case_for_party(
        self, case_ref: str, agency: str, call: _Call | None = None
    ) -> pb.CaseView:
        view = await self._case_view(case_ref)
        if party_view.party_in(agency, view) is None and call is not None and call.read:
            call.read.refusal = access.NOT_A_PARTY
        _party(agency, view)
        return view

    async def _merged(
        self, case: pb.CaseView, fresh: Mapping[str, pb.HolderRecord], agency: str
    ) -> pb.CaseView:
        """The case as ``agency`` may see it (``party_view``), from every holder's record:
        ``fresh`` ones (an update's own result), the case's copy for a closed exchange, the
        others queried from their exchanges."""
        party = _party(agency, case)
        if isinstance(party, disclosure_view.Party):
            return disclosure_view.view_for(party, case)
        holders = list(case.record.request.holding_agency_ids)
        if party.role is party_view.Role.HOLDER:
            holders = [agency]  # it sees no other holder's exchange: none is read for it
        # A closed exchange's record is the case's copy (its result): only open ones are asked.
        closed = {h.holding_agency_id: h for h in case.record.holders}
        asked = [h for h in holders if h not in fresh and h not in closed]
        queried = await asyncio.gather(*(self._holder_record(case.case_ref, h) for h in asked))
        found = dict(zip(asked, queried, strict=True))
        records = [
            record
            for holder in holders
            if (record := fresh.get(holder) or found.get(holder) or closed.get(holder))
        ]
        return party_view.view_for(party, merge_case_view(case, records))

    async def _holder_record(self, case_ref: str, holder: str) -> pb.HolderRecord | None:
        handle = self._client.get_workflow_handle(holder_exchange_workflow_id(case_ref, holder))
        try:
            described = await open_cases.holder_record(handle, _rpc_timeout())
        except RPCError as err:
            # Not started yet (the protocol gate is running, or refused the request), or
            # started but its first workflow task not done: left out of the view for now.
            if err.status == RPCStatusCode.NOT_FOUND or _not_ready(err):
                return None
            raise
        return None if described is None else described.view

    # -- one RPC's frame ------------------------------------------------------------------

    async def _serve(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[_Call], Awaitable[T]],
    ) -> T:
        """Run one RPC: map every failure to a status and log one access line."""
        call = _Call(rpc)
        log = structlog.get_logger(__name__)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        _start_deadline(context)
        try:
            result = await handler(call)
            # 👉 Before the reply leaves: a read that cannot be recorded is not served.
            await self._record(call, context)
            return result
        except GatewayError as err:
            code = err.code
            await self._record_refusal(call, code, context)
            await abort(context, err)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as err:
            error = _failure(rpc, err)
            code = error.code
            await abort(context, error)
        finally:
            _log_access(log, call, code, started)

    async def _record(self, call: _Call, context: grpc.aio.ServicerContext) -> None:
        """Record the cases this read served (raises if the log cannot take them)."""
        await self._append(call, grpc.StatusCode.OK, context)

    async def _record_refusal(
        self, call: _Call, code: grpc.StatusCode, context: grpc.aio.ServicerContext
    ) -> None:
        """Record a refused read; a log that fails then is logged, the refusal still sent."""
        try:
            await self._append(call, code, context)
        except Exception as err:
            structlog.get_logger(__name__).error(
                "access_log_failed", rpc=call.rpc, error_type=type(err).__name__
            )

    async def _append(
        self, call: _Call, code: grpc.StatusCode, context: grpc.aio.ServicerContext
    ) -> None:
        if call.read is None or self._access_log is None:
            return
        # A caller turned away as no partner is named by its certificate all the same.
        agency_id = call.agency_id or peer_common_name(context) or ""
        found = access.events(
            call.read,
            code,
            agency_id,
            self._registry.get(call.agency_id),
            call.case_ref,
            datetime.now(UTC),
        )
        if found:
            # 👉 In a thread: the append waits for its fsync, the event loop serves others.
            await asyncio.to_thread(self._access_log.append, found)


async def _as_published(handle: WorkflowHandle[Any, Any], view_type: type[M], result: M) -> M:
    """The view the workflow published in the task that completed an update (its memo), so a
    command's reply and a read right after it agree; the update's own result for a workflow
    that publishes no view (started before views were published). (A case or exchange that
    keeps its view answers an update with what changed, and the view is read anyway.)

    👉 The update's result is the view as its handler returned it; the workflow may have done
    more in the same task (the run loop moves on to the next step and its deadline), and the
    memo is written once that task has done its work, in the same completion as the result.
    """
    described = await open_cases.describe(handle, view_type, _rpc_timeout())
    return described.view if described.view is not None else result


def _failure(rpc: str, err: Exception) -> GatewayError:
    """The status for a failure that is not a refusal: UNAVAILABLE when Temporal is down or
    slow (the caller may retry), INTERNAL for anything else (logged by type only: the
    exception's message may quote a payload)."""
    log = structlog.get_logger(__name__)
    down = isinstance(
        err,
        RPCTimeoutOrCancelledError | WorkflowUpdateRPCTimeoutOrCancelledError | ArchiveUnavailable,
    )
    if isinstance(err, RPCError):
        down = err.status in _TEMPORAL_DOWN
    if isinstance(err, RPCError) and err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        log.warning("temporal_busy", rpc=rpc, **_temporal_status(err))
        return GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "case store busy; retry later",
            retry_after=TEMPORAL_BUSY_RETRY_SECONDS,
        )
    if down:
        # Temporal's status and detail types (never its message) say which kind it was.
        log.warning(
            "temporal_unavailable", rpc=rpc, error_type=type(err).__name__, **_temporal_status(err)
        )
        return GatewayError(
            grpc.StatusCode.UNAVAILABLE,
            "case store unavailable; retry later",
            retry_after=TEMPORAL_BUSY_RETRY_SECONDS,
        )
    if isinstance(err, RPCError):
        log.error("temporal_call_failed", rpc=rpc, **_temporal_status(err))
    else:
        log.error("unexpected_error", rpc=rpc, error_type=type(err).__name__)
    return GatewayError(grpc.StatusCode.INTERNAL, "internal error")


def _temporal_status(err: Exception) -> dict[str, str]:
    if not isinstance(err, RPCError):
        return {}
    details = ",".join(d.TypeName() for d in err.grpc_status.details)
    return {"temporal_status": err.status.name, "temporal_details": details}


def _not_ready(err: RPCError) -> bool:
    """Whether Temporal refused because the workflow has not finished its first workflow task
    (FAILED_PRECONDITION with ``WorkflowNotReadyFailure``): a busy hub, not a wrong call."""
    if err.status != RPCStatusCode.FAILED_PRECONDITION:
        return False
    return any(d.Is(WorkflowNotReadyFailure.DESCRIPTOR) for d in err.grpc_status.details)


def _log_access(
    log: Any, call: _Call, code: grpc.StatusCode, started: float, **extra: object
) -> None:
    """The access log line of one call: ids, status and duration only; and its metric."""
    count_gateway_request(call.rpc, code.name)
    log.info(
        "rpc_completed",
        rpc=call.rpc,
        agency_id=call.agency_id,
        case_ref=call.case_ref,
        code=code.name,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        **extra,
    )


def _start_deadline(context: grpc.aio.ServicerContext) -> None:
    """Remember when this call's deadline passes, for ``_rpc_timeout``."""
    remaining = context.time_remaining()
    _CALL_DEADLINE.set(None if remaining is None else time.monotonic() + remaining)


def _rpc_timeout() -> timedelta:
    """The timeout for a Temporal call made for the current RPC: what is left of the
    caller's deadline, at most ``TEMPORAL_RPC_TIMEOUT`` (and at least a moment, so an
    expiring call fails fast rather than with a zero timeout's odd errors)."""
    deadline = _CALL_DEADLINE.get()
    if deadline is None:
        return TEMPORAL_RPC_TIMEOUT
    left = timedelta(seconds=max(deadline - time.monotonic(), 0.05))
    return min(left, TEMPORAL_RPC_TIMEOUT)


def _raise_if(violations: list[FieldViolation]) -> None:
    if violations:
        raise invalid_argument(violations)


def _case_not_found() -> GatewayError:
    return GatewayError(grpc.StatusCode.NOT_FOUND, "case not found")


def _party(agency: str, case: pb.CaseView) -> Any:
    """The caller's part in the case (``party_view.Party``, or ``disclosure_view.Party`` for a
    disclosure); NOT_FOUND when the case must look like no case to it (not a party, or a
    holder or recipient before the protocol gate passed the case)."""
    party = (
        disclosure_view.party_in(agency, case)
        if disclosure_view.is_disclosure(case)
        else party_view.party_in(agency, case)
    )
    if party is None:
        raise _case_not_found()
    return party


def _summary(request: pb.SharingRequest) -> str:
    """The case's static summary in the Temporal UI: codes and agency ids, no personal data."""
    urgency = pb.Urgency.Name(request.urgency).removeprefix("URGENCY_")
    purpose = pb.Purpose.Name(request.purpose).removeprefix("PURPOSE_")
    holders = ", ".join(request.holding_agency_ids)
    return f"{urgency} {purpose}: {request.requesting_agency_id} asks {holders}"


def _require_requester(agency: str, case: pb.CaseView) -> None:
    if agency != case.record.request.requesting_agency_id:
        raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, WRONG_ROLE)


def _acknowledged_holder(ack: Message, request: pb.SharingRequest) -> str:
    """The holder whose delivery is acknowledged: the one named, or the case's only holder."""
    assert isinstance(ack, pb.Acknowledgement)
    holders = list(request.holding_agency_ids)
    if ack.holding_agency_id in holders:
        return ack.holding_agency_id
    if not ack.holding_agency_id and len(holders) == 1:
        return holders[0]
    why = (
        "not a holding agency of this case"
        if ack.holding_agency_id
        else "required when the case has several holding agencies"
    )
    raise invalid_argument([FieldViolation("acknowledgement.holding_agency_id", why)])


def _as_actor(message: M, agency: str) -> M:
    """A copy of ``message`` acting for ``agency``, with SafeShare's own fields cleared.

    The acting agency is always the certificate's: a body naming another agency is ignored.
    """
    command = type(message)()
    command.CopyFrom(message)
    fields = command.DESCRIPTOR.fields_by_name
    if "actor" in fields:
        command.actor.agency_id = agency  # type: ignore[attr-defined]
    if "agency_id" in fields:
        command.agency_id = agency  # type: ignore[attr-defined]
    for name in _SET_BY_SAFESHARE:
        if name in fields:
            command.ClearField(name)
    return command


def _receipt(update_id: str, result: object) -> service_pb.CommandReceipt:
    """What the command did, from the update's own result (Temporal answers every repeat of
    an update id with the same result): a compact ``CommandResult``, or the whole record or
    view an older case or exchange answers with. Only the command id when there is no result
    (a deleted history that the archive does not hold)."""
    receipt = service_pb.CommandReceipt(command_id=commands.command_id_of(update_id))
    if isinstance(result, pb.CommandResult):
        receipt.entry_number = result.entry_number
        receipt.state, receipt.outcome = result.state, result.outcome
    elif isinstance(result, pb.HolderRecord):
        receipt.entry_number = len(result.entries)
        receipt.state, receipt.outcome = result.state, result.outcome
    elif isinstance(result, pb.CaseView):
        receipt.entry_number = len(result.record.entries)
        receipt.state, receipt.outcome = result.state, result.record.outcome
    return receipt


def _fresh(holder: str, result: pb.HolderRecord | pb.CommandResult) -> dict[str, pb.HolderRecord]:
    """An update's result as the holder's fresh record, if it is one: an exchange started with
    compact histories answers with what changed, and its record is then read from the exchange."""
    return {holder: result} if isinstance(result, pb.HolderRecord) else {}


async def _translated(command: _Command, update: Awaitable[R]) -> R:
    """The update's result, or its refusal as a status (``GatewayError``)."""
    try:
        return await update
    except WorkflowUpdateFailedError as err:
        refusal = _refusal(err, command)
        if refusal is None:
            raise  # not a refusal the workflows document: logged as unexpected
        raise refusal from err
    except RPCError as err:
        # The case exists and the caller is a party, so NOT_FOUND means the workflow that
        # owns this step has closed or has not started yet: the command is out of turn.
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _StepClosed() from err
        raise


class _StepClosed(GatewayError):
    """The workflow that owns the step has closed and is gone (while Temporal keeps a closed
    workflow's history it answers a repeat of a command it applied itself), or has not
    started yet."""

    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.FAILED_PRECONDITION, "this step of the case is not open")
