"""ListCases: the caller's own cases, filtered and paged, each as the caller may see it.

Open cases (and closed ones Temporal still keeps) are listed by a visibility query
(``safeshare.gateway.listing``). With an archive, a listing that can include closed cases
reads the archive's cases first, then visibility, leaving out what the archive had logged when
the listing began (``safeshare.gateway.closed_listing``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio.client import Client, WorkflowExecutionAsyncIterator
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.archive.store import ArchiveStore
from safeshare.gateway import access, closed_listing, listing, party_view
from safeshare.gateway.errors import invalid_argument
from safeshare.gateway.fields import (
    FieldViolation,
)
from safeshare.gateway.frame import rpc_timeout
from workflows.ids import case_workflow_id


async def list_cases(
    client: Client,
    archive: ArchiveStore | None,
    request: service_pb.ListCasesRequest,
    agency: str,
    read: access.Read,
) -> service_pb.ListCasesResponse:
    """One page of ``agency``'s cases; the cases served are added to ``read``."""
    if archive is not None and closed_listing.applies(request):
        query = listing.build_query(closed_listing.unpaged(request), agency)
        return await _with_archive(client, archive, request, query, agency, read)
    try:
        query = listing.build_query(request, agency)
    except listing.BadPageToken as err:
        raise invalid_argument([FieldViolation("page_token", str(err))]) from err
    pages = await _page(client, query, query.temporal_token)
    cases = _seen(agency, listing.summaries(pages.current_page or [], query.exchanges))
    read.case_refs.extend(summary.case_ref for summary in cases)
    return service_pb.ListCasesResponse(
        cases=cases, next_page_token=listing.page_token(query.query, pages.next_page_token)
    )


async def _with_archive(
    client: Client,
    archive: ArchiveStore,
    request: service_pb.ListCasesRequest,
    query: listing.ListQuery,
    agency: str,
    read: access.Read,
) -> service_pb.ListCasesResponse:
    """ListCases over the archive, then visibility."""
    try:
        cursor = closed_listing.decode(request.page_token, query.query)
    except listing.BadPageToken as err:
        raise invalid_argument([FieldViolation("page_token", str(err))]) from err
    if cursor is None:
        cursor = closed_listing.Cursor(await asyncio.to_thread(archive.log_size))
    if not cursor.in_visibility:
        cases, following = await _archived_page(archive, query, agency, cursor)
        read.case_refs.extend(summary.case_ref for summary in cases)
        return service_pb.ListCasesResponse(
            cases=cases, next_page_token=closed_listing.encode(query.query, following)
        )
    pages = await _page(client, query, cursor.temporal_token)
    listed = listing.summaries(pages.current_page or [], query.exchanges)
    # 👉 A case the archive had logged when the listing began was listed from it.
    archived = await asyncio.to_thread(
        archive.logged_below, [case_workflow_id(s.case_ref) for s in listed], cursor.log_size
    )
    cases = _seen(agency, [s for s in listed if case_workflow_id(s.case_ref) not in archived])
    read.case_refs.extend(summary.case_ref for summary in cases)
    token = ""
    if pages.next_page_token:
        following = closed_listing.Cursor(
            cursor.log_size, None, in_visibility=True, temporal_token=pages.next_page_token
        )
        token = closed_listing.encode(query.query, following)
    return service_pb.ListCasesResponse(cases=cases, next_page_token=token)


async def _archived_page(
    archive: ArchiveStore, query: listing.ListQuery, agency: str, cursor: closed_listing.Cursor
) -> tuple[list[service_pb.CaseSummary], closed_listing.Cursor]:
    """A page of the archive's cases of ``agency`` from ``cursor``, and the next cursor (in
    visibility once the archive's cases are exhausted)."""
    cases: list[service_pb.CaseSummary] = []
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
    return cases, closed_listing.Cursor(cursor.log_size, after, in_visibility=exhausted)


async def _page(
    client: Client, query: listing.ListQuery, token: bytes | None
) -> WorkflowExecutionAsyncIterator:
    """One page of the visibility query from ``token``."""
    pages = client.list_workflows(
        query.query, page_size=query.page_size, next_page_token=token, rpc_timeout=rpc_timeout()
    )
    try:
        await pages.fetch_next_page()
    except RPCError as err:
        # Temporal refuses a token that is ours but no longer valid (its listing changed).
        if err.status == RPCStatusCode.INVALID_ARGUMENT and token:
            raise invalid_argument(
                [FieldViolation("page_token", "not a page token of this listing")]
            ) from err
        raise
    return pages


def _seen(agency: str, listed: Sequence[service_pb.CaseSummary]) -> list[service_pb.CaseSummary]:
    return [seen for s in listed if (seen := party_view.summary_for(agency, s))]
