"""The agency activities' contract: task queues, timeouts and error types that adapter workers
implement (their names are in :mod:`activities.names`).

The hub's workflows call these by name on the task queue ``agency.<agency-id>``; the adapter
worker for that agency implements them by calling the agency's ``agency.v1.AgencyService``.
Each activity takes and returns the ``agency.v1`` request and response messages of the RPC it
stands for, so an agency could write its adapter in any language with a Temporal SDK.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import timedelta

from google.protobuf.message import Message
from temporalio.exceptions import ActivityError, ApplicationError

# Agency ids name task queues and certificates, so they are short codes, never personal data.
AGENCY_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,39}$")

# The adapter's gRPC deadline per call sits below this, so a hung agency system shows up
# as a retryable deadline error inside the activity rather than as an activity timeout.
AGENCY_CALL_TIMEOUT = timedelta(seconds=30)


class ApplicationErrorType:
    """``ApplicationError.type`` values that adapters raise and the hub understands."""

    AGENCY_UNAVAILABLE = "AgencyUnavailable"
    """The agency system could not answer now; retried."""
    AGENCY_REJECTED = "AgencyRejected"
    """The agency system refused the call in a way that will never succeed; not retried."""


def error_code(err: ActivityError) -> str:
    """A code for why an agency activity failed (never the agency's own message)."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        return str(cause.details[0])
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause else "unknown"


def agency_task_queue(agency_id: str) -> str:
    """The task queue that the adapter worker of ``agency_id`` polls.

    Raises:
        ValueError: ``agency_id`` is not a valid agency code.
    """
    if not AGENCY_ID_PATTERN.fullmatch(agency_id):
        raise ValueError(f"not a valid agency id: {agency_id!r}")
    return f"agency.{agency_id}"


def content_digest(items: Iterable[Message]) -> str:
    """SHA-256 of delivered ``sharing.v1.RecordItem`` messages, hex.

    For each item in order: its 4-byte big-endian length, then its deterministic protobuf
    serialisation. Agency systems compute the same to check a delivery arrived whole.
    """
    digest = hashlib.sha256()
    for item in items:
        encoded = item.SerializeToString(deterministic=True)
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return digest.hexdigest()


PAYLOAD_TOO_LARGE = "PayloadTooLarge"
"""``ApplicationError.type`` of a non-retryable refusal: records too large even for the
claim-check (or no claim-check store configured). The message says which limit."""
CLAIM_CHECK_FAILED = "ClaimCheckFailed"
"""``ApplicationError.type`` of a non-retryable failure to read a claimed delivery back
(missing from the store, or its digest does not match)."""

MAX_ACTIVITY_PAYLOAD_BYTES = 256 * 1024
"""An activity result or argument larger than this goes through the claim-check store:
well under Temporal's 2 MB payload limit, so a history never carries bulk record content."""
