"""The commands a workflow takes: their ids, their seals, their refusals.

Command ids: a caller's idempotency key for one decision, and the update id made from it.

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

Every Update must also carry the gateway's seal (``workflows.seal``): ``check_sealed`` refuses
one that does not, and ``refuse_if`` turns the model's refusal into the update's failure.
"""

from __future__ import annotations

from google.protobuf.message import Message
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import seal
from workflows.domain.refusal import Refusal, Rule, details

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb

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


def refused(refusal: Refusal) -> ApplicationError:
    """The error that refuses a command: the rule as its type, the message, and the fields at
    fault as its one detail (``workflows.domain.refusal.details``), which the gateway sends
    on as ``google.rpc.BadRequest`` field violations."""
    extra = [details(refusal)] if refusal.violations else []
    return ApplicationError(refusal.message, *extra, type=refusal.rule.value)


def refuse_if(refusal: Refusal | None) -> None:
    """Refuse the update in hand for ``refusal``, if there is one.

    👉 Validators run before anything is written to history: a refused command leaves none.

    Raises:
        ApplicationError: the refusal's rule, message and fields at fault (``refused``).
    """
    if refusal is not None:
        raise refused(refusal)


def check_sealed(record: pb.DecisionRecord, command: Message, what: str) -> None:
    """Refuse the update in hand unless the gateway sealed ``command`` for this workflow.

    The gateway's key comes from the gate's result in ``record``: nothing is accepted before
    it is known. ``what`` names the workflow's case in the refusal ("case", "disclosure").

    Raises:
        ApplicationError: OutOfTurn before the gate's result, NotPermitted for a missing,
            misaddressed or failing seal.
    """
    update = workflow.current_update_info()
    if update is None or not record.HasField("gate"):
        raise ApplicationError(
            f"the {what} is still being checked; retry shortly", type=Rule.OUT_OF_TURN.value
        )
    try:
        seal.check(record.gate.gateway_public_key, workflow.info().workflow_id,
                   command, update.id)  # fmt: skip
    except seal.SealError as err:
        raise ApplicationError(str(err), type=Rule.NOT_PERMITTED.value) from None
