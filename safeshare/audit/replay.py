"""Replay recorded histories through the current workflow code (Temporal's Replayer).

A history that replays shows the code still makes the same decisions it made when the case
ran; one that diverges names the event where the code and the history part ways. Encrypted
histories replay given the keys (the codec's data converter decrypts the payloads).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from safeshare.audit.export import ExportedHistory
from safeshare.codec import replay_converter
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase

WORKFLOWS: tuple[type, ...] = (SharingCase, HolderExchange, ConsentWithdrawalNotice, DisclosureCase)
# The corpus in tests/histories/ names its workflows in this index (the format holds no id).
WORKFLOW_ID_INDEX = "workflow-ids.json"
# Nondeterminism errors name the event as "... event_id: 12 ..." or "HistoryEvent(id: 12".
_EVENT_ID = re.compile(r"(?:event[ _]?id|HistoryEvent\(id)\W{0,3}(\d+)", re.IGNORECASE)


_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


class ReplayInputError(Exception):
    """A file or folder given to replay holds no history."""


@dataclass(frozen=True)
class ReplayOutcome:
    """One history's replay: replayed, or diverged (at which event, and why)."""

    workflow_id: str
    run_id: str
    source: str
    failure: str | None = None
    event_id: int | None = None

    @property
    def replayed(self) -> bool:
        """True when the current code reproduced the history."""
        return self.failure is None


def divergence_event_id(message: str) -> int | None:
    """The event id a replay failure names, if it names one."""
    match = _EVENT_ID.search(message)
    return int(match.group(1)) if match else None


def as_replayable(histories: Sequence[ExportedHistory]) -> list[tuple[str, WorkflowHistory]]:
    """(file name, history) pairs for ``replay_histories``.

    Raises:
        ReplayInputError: a file is not a history.
    """
    replayable = []
    for exported in histories:
        try:
            document = json.loads(exported.content)
            history = WorkflowHistory.from_json(exported.workflow_id, document)
        except (ValueError, TypeError, KeyError) as err:
            name = exported.file_name
            raise ReplayInputError(f"{name} is not a history: {type(err).__name__}") from None
        replayable.append((exported.file_name, history))
    return replayable


async def replay_histories(
    histories: Sequence[tuple[str, WorkflowHistory]],
    data_converter: DataConverter,
    workflows: Sequence[type] | None = None,
) -> list[ReplayOutcome]:
    """Replay each (source, history) through ``workflows`` (default: the current code's
    ``WORKFLOWS``); one outcome per history, in order."""
    replayer = Replayer(
        workflows=list(workflows or WORKFLOWS),
        data_converter=replay_converter(data_converter),
        workflow_runner=workflow_runner(),
    )
    sources = {(h.workflow_id, h.run_id): source for source, h in histories}

    async def each() -> AsyncIterator[WorkflowHistory]:
        for _, history in histories:
            yield history

    outcomes = []
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:
            history = result.history
            failure = result.replay_failure
            message = _message(failure) if failure is not None else None
            outcomes.append(
                ReplayOutcome(
                    workflow_id=history.workflow_id,
                    run_id=history.run_id,
                    source=sources.get((history.workflow_id, history.run_id), ""),
                    failure=message,
                    event_id=divergence_event_id(message) if message else None,
                )
            )
    return outcomes


def _message(failure: Any) -> str:
    # Core wraps the reason in a debug dump of the failure: keep the reason itself.
    text = str(failure).strip() or type(failure).__name__
    match = _CORE_MESSAGE.search(text)
    return match.group(1) if match else text
