"""A workflow's current view, published in its memo, so readers need no worker.

A query is answered by a worker replaying the workflow between its tasks: slow under load,
and impossible while the hub is down. ``describe`` answers from the state Temporal holds, memo
included, so each workflow also keeps its view (``CaseView`` or ``HolderRecord``) in its memo.

The view is split into parts, each under its own memo key, and a workflow task upserts only
the parts that changed: the scalar fields of a message together under its path, each set
message field under its own path, each element of a repeated field under ``path.<index>``
(an entry appended is one small part, not the whole record again). ``CaseView.record`` is
split the same way one level down. Every part is a message of the view's own type with only
that part set, stored as ``binary/protobuf`` with its message type (the SDK's own encoding:
a third of the size of JSON in history) and passed through the payload codec like every
payload (encrypted: the memo keys are field names and indexes only, never personal data);
merging the parts in key order gives the view back.

The workflows publish with ``ViewInMemo`` (one upsert at the end of each workflow task that
changed the view, so an update's reply and the memo leave the worker in the same task
completion); readers decode the memo with the client's data converter and call ``assemble``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

PATCH = "view-in-memo"
"""Workflows started before views were published keep no view in their memo (readers query)."""

PREFIX = "view"
"""Every key of a published view starts with this (the gateway's own memo keys do not)."""
SPLIT_DEEPER = frozenset({"record"})
"""Message fields of the view whose own fields are published as separate parts."""

M = TypeVar("M", bound=Message)


def parts(view: Message) -> dict[str, Message]:
    """The view's parts by memo key, each a message of the view's type with one part set."""
    found: dict[str, Message] = {}
    _split(view, PREFIX, found, lambda sub: sub, depth=0)
    return found


def _split(message: Message, path: str, found: dict[str, Message], wrap: Any, depth: int) -> None:
    scalars = type(message)()
    for field, value in message.ListFields():
        key = f"{path}.{field.name}"
        if _is_repeated(field):
            for index, element in enumerate(value):
                part = type(message)()
                container = getattr(part, field.name)
                if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                    container.add().CopyFrom(element)
                else:
                    container.append(element)
                found[f"{key}.{index}"] = wrap(part)
        elif field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if depth == 0 and field.name in SPLIT_DEEPER:

                def deeper(sub: Message, name: str = field.name) -> Message:
                    outer = type(message)()
                    getattr(outer, name).CopyFrom(sub)
                    return wrap(outer)

                _split(value, key, found, deeper, depth + 1)
                continue
            part = type(message)()
            getattr(part, field.name).CopyFrom(value)
            found[key] = wrap(part)
        else:
            setattr(scalars, field.name, value)
    if scalars.ListFields():
        found[path] = wrap(scalars)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _order(key: str) -> tuple[tuple[int, str], ...]:
    # Indexes sort as numbers, so a repeated field's elements merge back in their order.
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in key.split("."))


def assemble(view_type: type[M], memo: Mapping[str, Any]) -> M | None:
    """The view from a decoded memo; None if the workflow has published none (it started
    before views were published, or its first task has not completed)."""
    keys = sorted((k for k in memo if k == PREFIX or k.startswith(PREFIX + ".")), key=_order)
    if not keys:
        return None
    view = view_type()
    for key in keys:
        part = memo[key]
        if part is None:
            continue  # a part removed (Temporal keeps the key, with a null payload)
        if not isinstance(part, view_type):
            raise TypeError(f"memo key {key!r} holds {type(part).__name__}, not a view part")
        view.MergeFrom(part)
    return view


class Publisher:
    """What a workflow last published, so each task upserts only the parts that changed."""

    def __init__(self) -> None:
        self._published: dict[str, bytes] = {}

    def changes(self, view: Message) -> dict[str, RawValue | None]:
        """The memo upsert that brings the published view to ``view`` (None removes a key);
        empty when nothing changed."""
        serialized = {
            key: part.SerializeToString(deterministic=True) for key, part in parts(view).items()
        }
        metadata = {
            "encoding": b"binary/protobuf",
            "messageType": view.DESCRIPTOR.full_name.encode(),
        }
        upsert: dict[str, RawValue | None] = {
            key: RawValue(Payload(metadata=metadata, data=data))
            for key, data in serialized.items()
            if self._published.get(key) != data
        }
        upsert.update({key: None for key in self._published if key not in serialized})
        self._published = serialized
        return upsert


class ViewInMemo:
    """Keeps a workflow's view in its memo: mark it ``changed()`` when the view may have
    changed; the parts that did are upserted once the workflow task has done its work."""

    def __init__(self, view: Callable[[], Message]) -> None:
        self._view = view
        self._publisher = Publisher()
        self._changed = True
        self._keeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start publishing (call once, from the workflow's run)."""
        self._keeper = asyncio.create_task(self._keep())

    def changed(self) -> None:
        """The view may have changed in this task."""
        self._changed = True

    def flush(self) -> None:
        """Upsert what changed now (before the workflow completes, as nothing runs after)."""
        self._changed = False
        upsert = self._publisher.changes(self._view())
        if upsert:
            workflow.upsert_memo(upsert)

    async def _keep(self) -> None:
        # 👉 A condition is checked once the task's ready coroutines have all run, so this
        # upserts after the handlers and the run loop have done their work in this task: an
        # update's result and the memo are written by the same workflow task completion.
        while True:
            await workflow.wait_condition(lambda: self._changed)
            self.flush()
