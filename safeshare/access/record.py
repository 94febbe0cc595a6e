"""Access events for the operators' and auditors' commands.

A command that reads case content (``safeshare cases show/follow``, ``safeshare audit
export/report/replay`` with the keys) records one event per case it read, naming the person
from ``--operator`` / ``SAFESHARE_OPERATOR`` (by default the machine's login name) and the
``--purpose`` they give. The event is recorded before the content is shown or written where the
command can; a log that cannot be opened stops the command.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterable
from pathlib import Path

from safeshare.access.events import AccessEvent, Action, Channel, Outcome, Purpose
from safeshare.access.log import AccessLog
from safeshare.audit.signing import SigningError


class RecordError(Exception):
    """The access log cannot be opened or written, or the purpose is not a purpose code."""


def operator_id(given: str | None) -> str:
    """Who runs the command: ``given``, or the login name of this machine's user."""
    return given or getpass.getuser()


def record_reads(
    log_path: Path,
    key_path: Path,
    operator: str | None,
    purpose: str,
    action: Action,
    case_refs: Iterable[str],
) -> list[AccessEvent]:
    """Append one allowed event per case read by a command.

    Raises:
        RecordError: the log cannot be opened or the purpose is unknown.
    """
    try:
        reason = Purpose.parse(purpose)
    except ValueError as err:
        raise RecordError(str(err)) from None
    now = dt.datetime.now(dt.UTC)
    events = [
        AccessEvent(
            time=now,
            case_ref=ref.removeprefix("case-").split(".", 1)[0],
            channel=Channel.CLI,
            action=action,
            outcome=Outcome.ALLOWED,
            user_id=operator_id(operator),
            purpose=reason,
        )
        for ref in dict.fromkeys(case_refs)
    ]
    unique = list({e.case_ref: e for e in events}.values())
    try:
        return AccessLog.open(log_path, key_path).append(unique)
    except (OSError, SigningError) as err:
        raise RecordError(f"cannot record in the access log {log_path}: {err}") from None
