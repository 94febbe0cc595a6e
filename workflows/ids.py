"""Case references, workflow ids and the hub's task queue: one helper each.

A case reference is random-looking and non-identifying: it is derived from the requesting
agency and the caller's idempotency key by SHA-256, so the same request always maps to the same
case, and no personal data the caller might have put in its key reaches the workflow id.
"""

from __future__ import annotations

import base64
import hashlib
import re

HUB_TASK_QUEUE = "safeshare.hub"

_CASE_PREFIX = "case-"
CASE_REF_PATTERN = re.compile(r"^[a-z2-7]{20}$")


def case_ref_for(requesting_agency_id: str, request_id: str) -> str:
    """The case reference for a request id submitted by an agency."""
    digest = hashlib.sha256(f"sharing-request\0{requesting_agency_id}\0{request_id}".encode())
    return base64.b32encode(digest.digest()).decode("ascii").lower()[:20]


def case_workflow_id(case_ref: str) -> str:
    """The workflow id of a case."""
    return f"{_CASE_PREFIX}{case_ref}"


def holder_exchange_workflow_id(case_ref: str, holding_agency_id: str) -> str:
    """The workflow id of one holder's exchange within a case (a child of the case)."""
    return f"{_CASE_PREFIX}{case_ref}.{holding_agency_id}"


def consent_withdrawal_workflow_id(case_ref: str, holding_agency_id: str) -> str:
    """The workflow id of the notice that consent was withdrawn after an exchange closed."""
    return f"{_CASE_PREFIX}{case_ref}.{holding_agency_id}.consent-withdrawn"


def case_ref_from_workflow_id(workflow_id: str) -> str:
    """The case reference inside a case's (or one of its exchanges') workflow id.

    Raises:
        ValueError: the workflow id is not a case's.
    """
    ref = workflow_id.removeprefix(_CASE_PREFIX).split(".", 1)[0]
    if ref == workflow_id or not CASE_REF_PATTERN.fullmatch(ref):
        raise ValueError("not a case workflow id")
    return ref


def disclosure_ref_for(holding_agency_id: str, disclosure_id: str) -> str:
    """The case reference for a disclosure id submitted by a holder (never the same as a
    request's: a request id and a disclosure id may be equal)."""
    digest = hashlib.sha256(f"disclosure\0{holding_agency_id}\0{disclosure_id}".encode())
    return base64.b32encode(digest.digest()).decode("ascii").lower()[:20]
