"""The caller's part in a case, and the case as the caller may see it.

One policy for "not yours": a caller that is not party to a case (neither its requester nor
one of its holders), or a holder of a case the protocol gate has not passed, gets NOT_FOUND,
the same answer as for a case that does not exist, so it cannot learn that the case exists.
What a party sees is decided by ``party_view`` (a sharing case) and ``disclosure_view``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from protos.sharing.v1 import case_pb2 as pb
from safeshare.cases.reader import CaseNotFound, CaseViews
from safeshare.gateway import access, disclosure_view, party_view
from safeshare.gateway.errors import GatewayError
from safeshare.gateway.frame import current, rpc_timeout

WRONG_ROLE = "the calling agency has no such role in this case"


def case_not_found() -> GatewayError:
    """NOT_FOUND: no such case, or none the caller may know of."""
    return GatewayError(grpc.StatusCode.NOT_FOUND, "case not found")


def wrong_role() -> GatewayError:
    """PERMISSION_DENIED: a party acting outside its role."""
    return GatewayError(grpc.StatusCode.PERMISSION_DENIED, WRONG_ROLE)


def party(agency: str, case: pb.CaseView) -> Any:
    """The caller's part in the case (``party_view.Party``, or ``disclosure_view.Party`` for a
    disclosure); NOT_FOUND when the case must look like no case to it (not a party, or a
    holder or recipient before the protocol gate passed the case)."""
    found = (
        disclosure_view.party_in(agency, case)
        if disclosure_view.is_disclosure(case)
        else party_view.party_in(agency, case)
    )
    if found is None:
        raise case_not_found()
    return found


def require_requester(agency: str, case: pb.CaseView) -> None:
    """PERMISSION_DENIED unless ``agency`` requested the case."""
    if agency != case.record.request.requesting_agency_id:
        raise wrong_role()


def require_holder(agency: str, case: pb.CaseView) -> None:
    """PERMISSION_DENIED unless ``agency`` is asked by the case."""
    if agency not in case.record.request.holding_agency_ids:
        raise wrong_role()


async def read_case(views: CaseViews, case_ref: str) -> pb.CaseView:
    """The case's own view (``CaseViews.case``); NOT_FOUND when there is no such case."""
    try:
        return await views.case(case_ref, rpc_timeout())
    except CaseNotFound:
        raise case_not_found() from None


async def case_for_party(views: CaseViews, case_ref: str, agency: str) -> pb.CaseView:
    """The case's own view, once ``agency`` is known to be party to it (a refused read is
    recorded as not a party's)."""
    case = await read_case(views, case_ref)
    read = current().read
    if read is not None and party_view.party_in(agency, case) is None:
        read.refusal = access.NOT_A_PARTY
    party(agency, case)
    return case


async def visible(
    views: CaseViews, case: pb.CaseView, fresh: Mapping[str, pb.HolderRecord], agency: str
) -> pb.CaseView:
    """The case as ``agency`` may see it, from every holder's record it may see: ``fresh``
    ones (read already, or an update's own result), the case's copy for a closed exchange,
    the others read from their exchanges."""
    seen = party(agency, case)
    if isinstance(seen, disclosure_view.Party):
        return disclosure_view.view_for(seen, case)
    holders = list(case.record.request.holding_agency_ids)
    if seen.role is party_view.Role.HOLDER:
        holders = [agency]  # it sees no other holder's exchange: none is read for it
    return party_view.view_for(seen, await views.whole(case, holders, fresh, rpc_timeout()))
