"""Command ids: a caller's idempotency key for one decision, and the update id made from it.

The gateway sends every decision as a Temporal Update whose id is ``<command id>~<digest>``:
the caller's ``command_id`` and a keyed digest of the command's content
(``safeshare.gateway.commands``). Temporal applies an update id once per workflow run and
answers every repeat (also after the workflow closed) with the first outcome, so the same
command sent twice is applied once. The same command id with other content makes another
update id, which Temporal would apply as a new update: the validators refuse it here, so an
id names one command for the life of the case.

The record of what was applied is rebuilt on replay (every accepted update's handler runs
again and calls ``applied``), and validators never run on replay, so this adds nothing to a
history and needs no patch.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

SEPARATOR = "~"
"""Between the caller's command id and the digest (outside the command id's charset)."""
REUSED = "CommandIdReused"
"""The ApplicationError type of a command id used again for another command."""
REUSED_MESSAGE = "command_id was already used for another command"


def caller_key(update_id: str) -> str:
    """The caller's command id in ``update_id`` (all of it for ids made without a digest)."""
    return update_id.split(SEPARATOR, 1)[0]


class AppliedCommands:
    """The command ids a workflow has applied, each with the update id it was applied as."""

    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}

    def applied(self) -> None:
        """Note the update in hand as applied (first thing in every update handler)."""
        update = workflow.current_update_info()
        if update is not None:
            self._by_key.setdefault(caller_key(update.id), update.id)

    def check(self) -> None:
        """Refuse the update in hand when its command id was applied with other content.

        Raises:
            ApplicationError: ``REUSED``, non-retryable.
        """
        update = workflow.current_update_info()
        if update is None:
            return
        first = self._by_key.get(caller_key(update.id))
        if first is not None and first != update.id:
            raise ApplicationError(REUSED_MESSAGE, type=REUSED, non_retryable=True)
