"""Cost per case: history events and bytes (case + exchange), and the payload bytes before and
after encryption (``safeshare.codec``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from safeshare.codec import ENCODING, EncryptionCodec

_NOT_DATA = frozenset({"search_attributes", "header", "memo"})


@dataclass(frozen=True)
class Cost:
    """One case's histories."""

    path: str
    events: int
    history_bytes: int
    payloads: int
    payload_bytes_plain: int
    payload_bytes_stored: int
    event_types: dict[str, int]


def _payloads(message: Message) -> list[Payload]:
    """Every data Payload inside ``message`` (search attributes and headers are not data)."""
    found: list[Payload] = []
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or descriptor.name in _NOT_DATA:
            continue
        items = (
            value.values()
            if descriptor.message_type.GetOptions().map_entry
            else (value if descriptor.is_repeated else [value])
        )
        for item in items:
            if not isinstance(item, Message):
                continue
            if isinstance(item, Payload):
                found.append(item)
            else:
                found.extend(_payloads(item))
    return found


async def case_cost(
    client: Client, path: str, workflow_ids: list[str], codec: EncryptionCodec | None
) -> Cost:
    """Sum the histories of ``workflow_ids`` (a case and its exchange)."""
    events = 0
    size = 0
    types: Counter[str] = Counter()
    stored: list[Payload] = []
    for wid in workflow_ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        for event in history.events:
            events += 1
            size += event.ByteSize()
            types[event.WhichOneof("attributes") or "?"] += 1
            stored.extend(_payloads(event))
    encrypted = [p for p in stored if p.metadata.get("encoding") == ENCODING]
    plain = [p for p in stored if p.metadata.get("encoding") != ENCODING]
    if codec and encrypted:
        plain += await codec.decode(encrypted)
    return Cost(
        path, events, size, len(stored), sum(p.ByteSize() for p in plain),
        sum(p.ByteSize() for p in stored), dict(types),
    )  # fmt: skip
