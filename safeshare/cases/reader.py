"""One reader of a case's view for every reader of it: GetCase and every command's reply,
WatchCase's snapshots and ``safeshare cases show``.

A case is its case workflow's view and each holder's exchange record, merged
(``workflows.domain.case_view.merge_case_view``):

- an open workflow is read from the view it keeps in its memo: one ``describe``, no worker
  (``safeshare.open_cases``; a workflow started before views were published is queried);
- a closed case is read from the archive, or from its result (the history's close event) until
  archived: Temporal may have deleted it after its retention (``safeshare.archive.reader``);
- a closed exchange's record is the case's copy of it (the case's result), and is not read again.

Each read is one round trip per workflow, made once per command: the caller keeps what it has
read and reads again only the workflow a command changed. Who a case's parties are never
changes, so the reader remembers that for the cases it has read (``parties``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import timedelta

from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from safeshare import open_cases
from safeshare.archive.reader import CaseReader
from safeshare.archive.store import ArchiveStore
from workflows.domain.case_view import merge_case_view
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

KNOWN_CASES = 10_000
"""How many cases' parties a reader remembers (a few hundred bytes each)."""

Parties = tuple[str, tuple[str, ...]]
"""A case's requesting agency and its holding agencies, in request order."""


class CaseNotFound(Exception):
    """No such case: never opened, or deleted from Temporal and not in the archive."""


class CaseViews:
    """Reads cases: open ones from their workflows' memos, closed ones from the archive first.

    Args:
        client: the Temporal client (with the payload codec, when one is configured).
        archive: the case archive closed cases are read from (None: Temporal only).
    """

    def __init__(self, client: Client, archive: ArchiveStore | None = None) -> None:
        self._client = client
        self.closed = CaseReader(client, archive)
        self._parties: OrderedDict[str, Parties] = OrderedDict()

    @property
    def archive(self) -> ArchiveStore | None:
        """The archive closed cases are read from, if any."""
        return self.closed.archive

    async def case(self, case_ref: str, rpc_timeout: timedelta | None) -> pb.CaseView:
        """The case workflow's own view (without its open exchanges' records).

        Raises:
            CaseNotFound: no such case.
            RPCError: Temporal cannot be reached.
        """
        try:
            # 👉 An open case is read from the view it keeps in its memo. A closed case is read
            # from the archive, or from its result until archived: Temporal may have deleted
            # it after its retention.
            try:
                described = await self.described_case(case_ref, rpc_timeout)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                described = None  # deleted after its retention: the archive may hold it
            if described is None or not described.running:
                closed = await self.closed.closed_case(case_ref, rpc_timeout)
                if closed is not None:
                    return closed
            if described is None or described.view is None:
                raise CaseNotFound(case_ref)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise CaseNotFound(case_ref) from err
            raise
        self.saw(case_ref, described.view.record.request)
        return described.view

    async def described_case(
        self, case_ref: str, rpc_timeout: timedelta | None
    ) -> open_cases.Described[pb.CaseView]:
        """The case workflow as ``describe`` saw it, and its own view (its memo's, or its
        query's for a case started before views were published).

        Raises:
            RPCError: no such workflow (NOT_FOUND), or Temporal cannot be reached.
        """
        handle = self._client.get_workflow_handle(case_workflow_id(case_ref))
        return await open_cases.case_view(handle, rpc_timeout)

    async def published_case(
        self, case_ref: str, rpc_timeout: timedelta | None
    ) -> pb.CaseView | None:
        """The view the case workflow keeps in its memo now; None if it keeps none.

        Raises:
            RPCError: no such workflow (NOT_FOUND), or Temporal cannot be reached.
        """
        handle = self._client.get_workflow_handle(case_workflow_id(case_ref))
        return (await open_cases.describe(handle, pb.CaseView, rpc_timeout)).view

    async def described_exchange(
        self, case_ref: str, holder: str, rpc_timeout: timedelta | None
    ) -> open_cases.Described[pb.HolderRecord] | None:
        """The exchange as ``describe`` saw it, and its record (its memo's, or its query's for
        an exchange started before views were published; None until its first workflow task
        has completed); None when it has not started, or is no longer kept.

        Raises:
            RPCError: Temporal cannot be reached, or the query failed.
        """
        handle = self._client.get_workflow_handle(holder_exchange_workflow_id(case_ref, holder))
        try:
            described = await open_cases.describe(handle, pb.HolderRecord, rpc_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if described.view is not None or not described.started_before_views:
            return described
        view = await handle.query(
            open_cases.HOLDER_QUERY, result_type=pb.HolderRecord, rpc_timeout=rpc_timeout
        )
        return open_cases.Described(described.description, view)

    async def exchange(
        self, case_ref: str, holder: str, rpc_timeout: timedelta | None
    ) -> pb.HolderRecord | None:
        """The open exchange's record; None while it has not started or its first workflow
        task has not completed (it is left out of the case's view for now).

        Raises:
            RPCError: Temporal cannot be reached.
        """
        try:
            described = await self.described_exchange(case_ref, holder, rpc_timeout)
        except RPCError as err:
            # Not started yet (the protocol gate is running, or refused the request), or
            # started but its first workflow task not done.
            if err.status == RPCStatusCode.NOT_FOUND or not_ready(err):
                return None
            raise
        return None if described is None else described.view

    async def exchanges(
        self, case_ref: str, holders: Sequence[str], rpc_timeout: timedelta | None
    ) -> dict[str, pb.HolderRecord]:
        """The records of the open exchanges of ``holders`` that have one, read side by side."""
        read = await asyncio.gather(*(self.exchange(case_ref, h, rpc_timeout) for h in holders))
        return {holder: record for holder, record in zip(holders, read, strict=True) if record}

    async def whole(
        self,
        case: pb.CaseView,
        holders: Sequence[str],
        fresh: Mapping[str, pb.HolderRecord],
        rpc_timeout: timedelta | None,
    ) -> pb.CaseView:
        """The case with the records of ``holders`` merged in: ``fresh`` ones (already read,
        or an update's own result), the case's copy of a closed exchange, the others read
        from their exchanges."""
        closed = {h.holding_agency_id: h for h in case.record.holders}
        asked = [h for h in holders if h not in fresh and h not in closed]
        found = await self.exchanges(case.case_ref, asked, rpc_timeout)
        records = [
            record
            for holder in holders
            if (record := fresh.get(holder) or found.get(holder) or closed.get(holder))
        ]
        return merge_case_view(case, records)

    def parties(self, case_ref: str) -> Parties | None:
        """The case's parties, if this reader has read the case (or been told them)."""
        return self._parties.get(case_ref)

    def saw(self, case_ref: str, request: pb.SharingRequest) -> None:
        """Remember the parties of ``request``'s case (they never change)."""
        if not request.requesting_agency_id:
            return
        self._parties[case_ref] = (request.requesting_agency_id, tuple(request.holding_agency_ids))
        self._parties.move_to_end(case_ref)
        while len(self._parties) > KNOWN_CASES:
            self._parties.popitem(last=False)


def not_ready(err: RPCError) -> bool:
    """Whether Temporal refused because the workflow has not finished its first workflow task
    (FAILED_PRECONDITION with ``WorkflowNotReadyFailure``): a busy hub, not a wrong call."""
    if err.status != RPCStatusCode.FAILED_PRECONDITION:
        return False
    return any(d.Is(WorkflowNotReadyFailure.DESCRIPTOR) for d in err.grpc_status.details)
