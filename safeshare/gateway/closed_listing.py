"""ListCases over the archive: closed cases stay listed after Temporal has deleted them.

With an archive, a case-level listing of every state or of CLOSED runs in two phases, and
its page tokens say which:

1. **the archive**: the cases (requests and disclosures) the archive had logged when the
   first page was asked for (below that log size: a leaf index only grows, so no clock is
   involved), newest close first, each kept to the caller's own by the same rules as a
   visibility entry (``party_view.summary_for``);
2. **Temporal's visibility**: the listing's usual query, less every case the archive had
   logged by then, so a case both in visibility and in the archive is listed once, from the
   archive. A case archived while the caller pages is still in visibility, and listed there.

The archive is asked for the rows that name the caller as requester, holder or recipient;
what a party may see of each is decided on its summary, exactly as for visibility entries.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.archive.records import IndexFields
from safeshare.gateway.listing import BadPageToken
from workflows.ids import case_ref_from_workflow_id

_DIGEST_BYTES = 16


@dataclass(frozen=True)
class Cursor:
    """Where a listing over the archive has got to."""

    log_size: int
    """The archive's log size when the first page was asked for."""
    after: tuple[str, str] | None = None
    """The archive phase's last row (close time, record id); None at its start."""
    in_visibility: bool = False
    temporal_token: bytes | None = None


def applies(request: service_pb.ListCasesRequest) -> bool:
    """Whether this (validated) listing includes archived cases: whole cases, of any state or
    CLOSED (not exchanges, which only Temporal holds while they run)."""
    return (
        request.state in (pb.CASE_STATE_UNSPECIFIED, pb.CASE_STATE_CLOSED)
        and not request.waiting_on
        and not request.HasField("deadline_before")
    )


def unpaged(request: service_pb.ListCasesRequest) -> service_pb.ListCasesRequest:
    """The request without its page token (this listing's tokens are its own)."""
    found = service_pb.ListCasesRequest()
    found.CopyFrom(request)
    found.ClearField("page_token")
    return found


def encode(query: str, cursor: Cursor) -> str:
    """The caller's token for the page after this one."""
    body = {
        "n": cursor.log_size,
        "a": list(cursor.after) if cursor.after else None,
        "v": cursor.in_visibility,
        "t": base64.b64encode(cursor.temporal_token).decode() if cursor.temporal_token else None,
    }
    raw = _digest(query) + json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode(token: str, query: str) -> Cursor | None:
    """The cursor a token of this listing carries; None for the first page.

    Raises:
        BadPageToken: not a token this listing gave out for the same filters.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        if len(raw) <= _DIGEST_BYTES or raw[:_DIGEST_BYTES] != _digest(query):
            raise BadPageToken("not a page token of this listing")
        body = json.loads(raw[_DIGEST_BYTES:])
        after = body["a"]
        size = body["n"]
        if not isinstance(size, int) or size < 0 or not isinstance(body["v"], bool):
            raise BadPageToken("not a page token of this listing")
        if after is not None and not (
            isinstance(after, list) and len(after) == 2 and all(isinstance(a, str) for a in after)
        ):
            raise BadPageToken("not a page token of this listing")
        temporal = base64.b64decode(body["t"]) if body["t"] else None
    except (binascii.Error, UnicodeEncodeError, ValueError, KeyError, TypeError) as err:
        raise BadPageToken("not a page token of this listing") from err
    return Cursor(size, (after[0], after[1]) if after else None, body["v"], temporal)


def summary(record_id: str, index: IndexFields) -> service_pb.CaseSummary | None:
    """A ListCases entry for an archived case, from its index fields (no payload read)."""
    try:
        case_ref = case_ref_from_workflow_id(record_id)
    except ValueError:
        return None
    found = service_pb.CaseSummary(
        case_ref=case_ref,
        state=pb.CASE_STATE_CLOSED,
        urgency=_enum(pb.Urgency, "URGENCY_", index.urgency),
        requesting_agency_id=index.requesting_agency,
        holding_agency_ids=list(index.holding_agencies),
        outcome=_enum(pb.Outcome, "OUTCOME_", index.outcome),
        disclosure_kind=_enum(pb.DisclosureKind, "DISCLOSURE_KIND_", index.disclosure_kind),
        recipient_agency_ids=list(index.recipient_agencies),
    )
    if index.opened_at:
        found.started_at.FromDatetime(
            dt.datetime.fromisoformat(index.opened_at.replace("Z", "+00:00"))
        )
    return found


def _enum(enum: Any, prefix: str, value: str) -> Any:
    name = f"{prefix}{value}"
    return enum.Value(name) if value and name in enum.DESCRIPTOR.values_by_name else 0


def _digest(query: str) -> bytes:
    return hashlib.sha256(f"archive\0{query}".encode()).digest()[:_DIGEST_BYTES]
