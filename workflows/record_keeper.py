"""A workflow's record keeper: the entries of its decision record and the view operators see.

Every workflow of a case writes its record the same way: each thing that happened is a
``DecisionEntry`` (when, what, which agency, which user, a detail of codes only), and after
each change the operators' view is published: the search attributes operators filter by, the
current details the UI shows, and (when the workflow keeps one) the view in its memo
(``workflows.memo_view``). The keeper does the writing; the workflow says what its attributes
and details are.

Side-effect free and without module state (a pure module the sandbox passes through).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows import memo_view
from workflows import search_attributes as sa
from workflows.domain.vocabulary import timestamp

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb

Attributes = Sequence[SearchAttributeUpdate[Any]]


class Recorded(Protocol):
    """A record with decision entries (``DecisionRecord``, ``HolderRecord``)."""

    @property
    def entries(self) -> RepeatedCompositeFieldContainer[pb.DecisionEntry]:
        """The record's entries, in order."""
        ...


class Upserts(enum.Enum):
    """How published search attributes become upserts (each upsert is an event in history)."""

    EVERY = "every"
    """All of them, at every publish."""
    CHANGED = "changed"
    """Those that differ from the workflow's own, at every publish."""
    ONCE_PER_TASK = "once_per_task"
    """Those that differ, once the workflow task has done its work (one upsert per task)."""


class RecordKeeper:
    """Writes one workflow's decision entries and publishes its view."""

    def __init__(
        self,
        record: Recorded,
        *,
        attributes: Callable[[], Attributes],
        details: Callable[[], str],
        upserts: Upserts = Upserts.EVERY,
        memo: memo_view.ViewInMemo | None = None,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        """Keep ``record``.

        Args:
            record: the record whose entries are written.
            attributes: the search attributes the view has now.
            details: the current details (plain words: what the case waits for, until when).
            upserts: how attributes are upserted.
            memo: the view kept in the memo, if the workflow keeps one.
            refresh: brings the record up to date before each publish (derived fields).
        """
        self._record = record
        self._attributes = attributes
        self._details = details
        self._upserts = upserts
        self._memo = memo
        self._refresh = refresh
        self._pending: Attributes | None = None
        """Attributes published but not upserted yet (``ONCE_PER_TASK``)."""
        self._upserter: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start keeping the memo's view (call once, from the workflow's run)."""
        if self._memo is not None:
            self._memo.start()

    def note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        """Append an entry: ``event`` by ``agency_id``/``user_id`` now, with ``detail``."""
        self.changed()
        self._record.entries.append(
            pb.DecisionEntry(at=timestamp(workflow.now()), event=event,
                             agency_id=agency_id, user_id=user_id, detail=detail)
        )  # fmt: skip

    def changed(self) -> None:
        """The view may have changed in this task (the memo's view is published again)."""
        if self._memo is not None:
            self._memo.changed()

    def since(self) -> int:
        """How many entries the record holds now (an update's answer holds those after)."""
        return len(self._record.entries)

    def publish(self) -> None:
        """Keep the operators' view current: search attributes and current details (and the
        memo's view, once this task has done its work)."""
        self.changed()
        if self._refresh is not None:
            self._refresh()
        updates = self._attributes()
        if self._upserts is Upserts.ONCE_PER_TASK:
            self._pending = updates
            if self._upserter is None:
                self._upserter = asyncio.create_task(self._upsert_when_idle())
        elif self._upserts is Upserts.CHANGED:
            changed = sa.changed(updates, workflow.info().typed_search_attributes)
            if changed:
                workflow.upsert_search_attributes(changed)
        else:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details())

    def close(self) -> None:
        """Publish the final view now: nothing runs after the workflow completes."""
        self.publish()
        self._upsert()
        if self._memo is not None:
            self._memo.flush()

    async def _upsert_when_idle(self) -> None:
        # 👉 A condition is checked once every coroutine of the workflow task has run as far
        # as it can: what was published meanwhile is upserted in one command, not one each.
        while True:
            await workflow.wait_condition(lambda: self._pending is not None)
            self._upsert()

    def _upsert(self) -> None:
        """Upsert the published search attributes that differ from the workflow's own."""
        if self._pending is None:
            return
        changed = sa.changed(self._pending, workflow.info().typed_search_attributes)
        self._pending = None
        if changed:
            workflow.upsert_search_attributes(changed)
