"""Before a hub or gateway starts: does the key ring decrypt the cases Temporal holds?

A ring that lacks a key some stored case was encrypted with makes that case unreadable (every
read answers INTERNAL, its history cannot be replayed), while new cases work, so nothing looks
wrong. The processes that read cases refuse to start instead, naming the missing key ids.

What is checked: the first event (its input names the key the workflow was started under) of
the most recent running workflows and of the most recently closed ones, concurrently; bounded,
so a start with tens of thousands of open cases is not held up for long. Payloads written later in a
history are under the key active then, which the operators rotated in and keep (see
docs/security.md "Keys"); this check catches the lost or replaced ring, not a single key
removed from the middle of a rotation.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from safeshare.codec.aes import ENCODING, KEY_ID_METADATA
from safeshare.codec.keys import KeyRing, KeyRingError

RUNNING_SAMPLE = 1000
CLOSED_SAMPLE = 200
CONCURRENCY = 16


class MissingKeysError(KeyRingError):
    """Stored cases use key ids the ring lacks."""


async def stored_key_ids(client: Client, closed_sample: int = CLOSED_SAMPLE) -> Counter[str]:
    """How many checked workflows were started under each key id."""
    executions: list[WorkflowExecution] = []
    for query, limit in (
        ("ExecutionStatus = 'Running'", RUNNING_SAMPLE),
        ("ExecutionStatus != 'Running'", closed_sample),
    ):
        async for execution in client.list_workflows(query, limit=limit):
            executions.append(WorkflowExecution(workflow_id=execution.id, run_id=execution.run_id))
    found: Counter[str] = Counter()
    limit_calls = asyncio.Semaphore(CONCURRENCY)

    async def first_event_keys(execution: WorkflowExecution) -> set[str]:
        async with limit_calls:
            response = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=client.namespace, execution=execution, maximum_page_size=1
                )
            )
        keys = set()
        for event in response.history.events[:1]:
            started = event.workflow_execution_started_event_attributes
            for payload in started.input.payloads:
                if payload.metadata.get("encoding") == ENCODING:
                    keys.add(payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace"))
        return keys

    for keys in await asyncio.gather(*(first_event_keys(e) for e in executions)):
        found.update(keys)
    return found


async def require_keys_for_stored_cases(client: Client, ring: KeyRing) -> None:
    """Raise unless ``ring`` has every key id the stored cases checked were started under.

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
