"""Before a hub or gateway starts: does the key ring decrypt the cases Temporal holds?

A ring that lacks a key some stored case was encrypted with makes that case unreadable (every
read answers INTERNAL, its history cannot be replayed), while new cases work, so nothing looks
wrong. The processes that read cases refuse to start instead, naming the missing key ids.

What is checked: every payload of the whole history (starts, activity inputs and results,
updates, signals, memos, child workflows, markers) of the most recent running workflows and of
the most recently closed ones, so a key used only later in a history (a rotation under way while
the case ran, one writer already on the new key) is caught like the start's key. Efficiently:
histories are fetched page by page, several workflows at a time, and each page is scanned for
the codec's key-id metadata in its serialized bytes (a C-speed search, no walk over the events'
fields). Bounded, so a start with tens of thousands of open cases is not held up for long.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from safeshare.codec.aes import KEY_ID_METADATA, LABEL_METADATA, LABELLED_FORMAT
from safeshare.codec.keys import KeyRing, KeyRingError

RUNNING_SAMPLE = 1000
CLOSED_SAMPLE = 200
CONCURRENCY = 16
PAGE_SIZE = 1000


class MissingKeysError(KeyRingError):
    """Stored cases use key ids the ring lacks."""


async def stored_key_ids(client: Client, closed_sample: int = CLOSED_SAMPLE) -> Counter[str]:
    """How many checked workflows use each key id anywhere in their histories."""
    executions: list[WorkflowExecution] = []
    for query, limit in (
        ("ExecutionStatus = 'Running'", RUNNING_SAMPLE),
        ("ExecutionStatus != 'Running'", closed_sample),
    ):
        async for execution in client.list_workflows(query, limit=limit):
            executions.append(WorkflowExecution(workflow_id=execution.id, run_id=execution.run_id))
    found: Counter[str] = Counter()
    limit_calls = asyncio.Semaphore(CONCURRENCY)

    async def history_keys(execution: WorkflowExecution) -> set[str]:
        keys: set[str] = set()
        token = b""
        while True:
            async with limit_calls:
                response = await client.workflow_service.get_workflow_execution_history(
                    GetWorkflowExecutionHistoryRequest(
                        namespace=client.namespace, execution=execution, next_page_token=token,
                        maximum_page_size=PAGE_SIZE,
                    )
                )  # fmt: skip
            keys |= key_ids_in(response.history.SerializeToString())
            token = response.next_page_token
            if not token:
                return keys

    for keys in await asyncio.gather(*(history_keys(e) for e in executions)):
        found.update(keys)
    return found


def key_ids_in(serialized: bytes) -> set[str]:
    """The key ids named by the encrypted payloads anywhere in a serialized history.

    A payload's metadata is a protobuf map<string, bytes>: each entry is a nested message of
    field 1 (the name) and field 2 (the value), so an encrypted payload carries the bytes
    ``0x0a <len> "encryption-key-id" 0x12 <len> <key id>`` (formats 1 to 3) or
    ``0x0a <len> "encryption" 0x12 <varint len> "4 <key id> <namespace> <workflow id>"``
    (format 4). The scan is over bytes, never decrypting anything.
    """
    found = set()
    for match in _KEY_ID_ENTRY.finditer(serialized):
        found.add(_value_at(serialized, match.end()).decode(errors="replace"))
    for match in _LABEL_ENTRY.finditer(serialized):
        fields = _value_at(serialized, match.end()).split(b" ", 2)
        if len(fields) == 3 and fields[0] == LABELLED_FORMAT:
            found.add(fields[1].decode(errors="replace"))
    return found


def _value_at(serialized: bytes, start: int) -> bytes:
    """The length-delimited field value whose varint length starts at ``start``."""
    length, shift, at = 0, 0, start
    while at < len(serialized):
        byte = serialized[at]
        length |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return serialized[at : at + length]
        shift += 7
    return b""


def _entry_name(name: str) -> re.Pattern[bytes]:
    return re.compile(re.escape(bytes([0x0A, len(name)]) + name.encode() + b"\x12"))


_KEY_ID_ENTRY = _entry_name(KEY_ID_METADATA)
_LABEL_ENTRY = _entry_name(LABEL_METADATA)


async def require_keys_for_stored_cases(client: Client, ring: KeyRing) -> None:
    """Raise unless ``ring`` has every key id the stored cases checked use.

    Raises:
        MissingKeysError: naming each missing key id and how many workflows use it.
    """
    missing = {
        key_id: count for key_id, count in (await stored_key_ids(client)).items()
        if key_id not in ring.ids
    }  # fmt: skip
    if missing:
        named = ", ".join(
            f"{key_id!r} ({count} workflows)" for key_id, count in sorted(missing.items())
        )
        raise MissingKeysError(
            f"stored cases were encrypted with key ids the key ring lacks: {named}; "
            f"the ring has {', '.join(ring.ids)}. Restore the key file from its backup "
            "(docs/security.md, Keys): refusing to start"
        )
