"""Decision commands' ids: the caller's ``command_id`` (the idempotency key) and the Temporal
update id the gateway makes from it.

The update id is ``<command_id>~<digest>``, the digest a keyed HMAC-SHA256 (the key derived
from the gateway's signing key) of the command as forwarded: the workflow id and the sealed
canonical form (``workflows.seal.canonical``: the caller's message with the acting agency set
from the certificate and SafeShare's own fields cleared). So:

- the same command again has the same update id: Temporal applies it once and answers every
  repeat with the first outcome, also after the workflow has closed;
- the same command id with other content has another update id, which the workflow's
  validators refuse (``workflows.commands``): ALREADY_EXISTS, field ``command_id``;
- the digest is keyed because update ids are stored in clear in the history and the UI: a plain
  hash of a short command could be guessed back.

A call without a command id gets a fresh random one: applied at most once, not safe to retry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from typing import TypeVar

from google.protobuf.message import Message

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from workflows import seal
from workflows.commands import SEPARATOR, caller_key

MAX_COMMAND_ID_LENGTH = 64
COMMAND_ID_PATTERN = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_COMMAND_ID_LENGTH}}}")
COMMAND_ID_RULE = f"1 to {MAX_COMMAND_ID_LENGTH} characters: letters, digits, '-', '_', '.', ':'"
_DIGEST_BYTES = 16
# Fields SafeShare sets itself (the workflows' stamps, the gateway's seal): a caller's value is
# never passed on.
_SET_BY_SAFESHARE = (*seal.STAMPED_FIELDS, seal.SEAL_FIELD)

M = TypeVar("M", bound=Message)


def command_id_problem(command_id: str) -> str | None:
    """What is wrong with a caller's command id, or None (empty is allowed: a fresh one)."""
    if not command_id or COMMAND_ID_PATTERN.fullmatch(command_id):
        return None
    return COMMAND_ID_RULE


def update_id(key: bytes, workflow_id: str, command_id: str, message: Message) -> str:
    """The Temporal update id for ``message`` sent to ``workflow_id`` as ``command_id``.

    Args:
        key: the gateway's digest key.
        workflow_id: the workflow the update goes to.
        command_id: the caller's id (already validated); empty for a fresh one.
        message: the command as forwarded (acting agency set), sealed or not.
    """
    command_id = command_id or str(uuid.uuid4())
    body = seal.canonical(workflow_id, command_id, message)
    digest = hmac.new(key, body, hashlib.sha256).digest()[:_DIGEST_BYTES]
    return f"{command_id}{SEPARATOR}{digest.hex()}"


def command_id_of(update_id: str) -> str:
    """The caller's command id within an update id."""
    return caller_key(update_id)


def applied_in(record: Message, update_id: str) -> bool:
    """Whether ``record`` (a closed case's or exchange's record) holds a command sealed for
    ``update_id``: the record shows that command was applied."""
    for field, value in record.ListFields():
        if field.name == seal.SEAL_FIELD and getattr(value, "command_id", None) == update_id:
            return True
        if field.message_type is None:
            continue
        values = value if field.is_repeated else [value]
        if any(isinstance(v, Message) and applied_in(v, update_id) for v in values):
            return True
    return False


def as_actor(message: M, agency: str) -> M:
    """A copy of ``message`` acting for ``agency``, with SafeShare's own fields cleared.

    The acting agency is always the certificate's: a body naming another agency is ignored.
    """
    command = type(message)()
    command.CopyFrom(message)
    fields = command.DESCRIPTOR.fields_by_name
    if "actor" in fields:
        command.actor.agency_id = agency  # type: ignore[attr-defined]
    if "agency_id" in fields:
        command.agency_id = agency  # type: ignore[attr-defined]
    for name in _SET_BY_SAFESHARE:
        if name in fields:
            command.ClearField(name)
    return command


def receipt(update_id: str, result: object) -> service_pb.CommandReceipt:
    """What the command did, from the update's own result (Temporal answers every repeat of
    an update id with the same result): a compact ``CommandResult``, or the whole record or
    view an older case or exchange answers with. Only the command id when there is no result
    (a deleted history that the archive does not hold)."""
    answer = service_pb.CommandReceipt(command_id=command_id_of(update_id))
    if isinstance(result, pb.CommandResult):
        answer.entry_number = result.entry_number
        answer.state, answer.outcome = result.state, result.outcome
    elif isinstance(result, pb.HolderRecord):
        answer.entry_number = len(result.entries)
        answer.state, answer.outcome = result.state, result.outcome
    elif isinstance(result, pb.CaseView):
        answer.entry_number = len(result.record.entries)
        answer.state, answer.outcome = result.state, result.record.outcome
    return answer
