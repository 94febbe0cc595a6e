"""One access event: who read (or tried to read) which case, when, what, why, and the outcome.

An event holds codes and staff ids only: the case ref (a non-identifying digest), agency ids,
the reader's user id at their agency (or the operator's id at the partnership's sign-in), the
action, the purpose code the reader gave and a refusal reason. Never anything about the child.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """What was read."""

    VIEW = "view"
    """The case as it stands (GetCase, ``safeshare cases show``)."""
    WATCH = "watch"
    """The case's events as they happen (WatchCase, ``safeshare cases follow``)."""
    LIST = "list"
    """The case's summary in a listing (ListCases)."""
    EXPORT = "export"
    """The case's history exported with the keys (``safeshare audit export``)."""
    REPORT = "report"
    """The case's decision record rendered (``safeshare audit report``)."""
    REPLAY = "replay"
    """The case's history replayed with the keys (``safeshare audit replay``)."""
    DECRYPT = "decrypt"
    """Payloads of the case decrypted through the codec server (the Temporal UI, the CLI)."""


class Channel(StrEnum):
    """Where the read came in."""

    CASE_API = "case_api"
    CODEC_SERVER = "codec_server"
    CLI = "cli"


class Outcome(StrEnum):
    """Whether the read was served."""

    ALLOWED = "allowed"
    REFUSED = "refused"


class Purpose(StrEnum):
    """Why the reader says they read: the codes a caller may give."""

    UNSPECIFIED = "unspecified"
    CASE_WORK = "case_work"
    """The agency's own work on the case (the default a practitioner's system sends)."""
    AUDIT = "audit"
    """An audit or review of the partnership's sharing."""
    OPERATOR_SUPPORT = "operator_support"
    """Partnership operators supporting a case (a stuck case, an escalation)."""
    SUPERVISION = "supervision"
    """A manager or safeguarding lead supervising the case."""
    INVESTIGATION = "investigation"
    """A statutory investigation (e.g. police): often disclosed after a delay."""

    @classmethod
    def parse(cls, value: str) -> Purpose:
        """The purpose for a code.

        Raises:
            ValueError: not a purpose code.
        """
        try:
            return cls(value)
        except ValueError:
            codes = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown purpose {value!r}: use one of {codes}") from None


@dataclass(frozen=True)
class AccessEvent:
    """One read of a case, or one refused attempt."""

    time: dt.datetime
    case_ref: str
    """The case read; "" when a refused caller named none the server could tell."""
    channel: Channel
    action: Action
    outcome: Outcome
    agency_id: str = ""
    """The reader's agency (from its client certificate); "" for partnership operators."""
    user_id: str = ""
    """The reader at their agency, or the operator's id (OIDC ``sub``, or the CLI's --operator)."""
    purpose: Purpose = Purpose.UNSPECIFIED
    reason: str = ""
    """Why it was refused (a code: ``not_a_party``, ``expired``, ...); "" when allowed."""
    disclose_after: dt.datetime | None = None
    """Delayed disclosure: other parties see this event only from this time."""
    seq: int = field(default=-1, compare=False)
    """Its place in the log (0-based); -1 before it is appended."""

    def entry(self) -> bytes:
        """The event as the log stores and hashes it: canonical JSON, without ``seq``."""
        document = asdict(self)
        document.pop("seq")
        document["time"] = _timestamp(self.time)
        document["disclose_after"] = (
            _timestamp(self.disclose_after) if self.disclose_after else None
        )
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_entry(cls, entry: bytes, seq: int) -> AccessEvent:
        """The event a stored entry holds.

        Raises:
            ValueError: the entry is not an access event.
        """
        try:
            document = json.loads(entry)
            return cls(
                time=_parse_time(document["time"]),
                case_ref=str(document["case_ref"]),
                channel=Channel(document["channel"]),
                action=Action(document["action"]),
                outcome=Outcome(document["outcome"]),
                agency_id=str(document["agency_id"]),
                user_id=str(document["user_id"]),
                purpose=Purpose(document["purpose"]),
                reason=str(document["reason"]),
                disclose_after=(
                    _parse_time(document["disclose_after"]) if document["disclose_after"] else None
                ),
                seq=seq,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"entry {seq} is not an access event: {type(err).__name__}") from None

    def disclosed_to(self, agency_id: str, now: dt.datetime) -> bool:
        """Whether ``agency_id`` may see this event now: its own events always; others' once
        any delayed disclosure has ended."""
        if agency_id and agency_id == self.agency_id:
            return True
        return self.disclose_after is None or self.disclose_after <= now


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
