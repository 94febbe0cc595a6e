"""Appends from many concurrent calls, committed together.

Every read the gateway serves waits until its access event is in the log (``AccessLog.append``:
one transaction, one signed checkpoint, one fsync). One append per call made 64 calls in flight
queue behind each other's fsync on the file's lock: in the profile of GetCase at 64 in flight
the appends were the largest share of the gateway's time. Here the calls that arrive while an
append is being written wait for the next one, which takes them all: one transaction and one
checkpoint for the batch, and each call still answers only once its own events are durable.
A batch that fails fails every call in it, as its own append would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from safeshare.access.events import AccessEvent
from safeshare.access.log import AccessLog

_Waiting = tuple[list[AccessEvent], "asyncio.Future[list[AccessEvent]]"]


class GroupCommit:
    """Appends to ``log`` on behalf of concurrent callers, one writer at a time.

    Args:
        log: the access log (its appends run in a worker thread: they wait for the disk).
    """

    def __init__(self, log: AccessLog) -> None:
        self.log = log
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, events: Sequence[AccessEvent]) -> list[AccessEvent]:
        """Append ``events`` with whatever else is waiting; returns them with their ``seq``
        once they are committed.

        Raises:
            Exception: whatever the batch's append raised (the log could not take it).
        """
        if not events:
            return []
        done: asyncio.Future[list[AccessEvent]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(events), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # 👉 Shielded: a caller that goes away still has its events written with the batch.
        return await asyncio.shield(done)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            flat = [event for events, _ in batch for event in events]
            try:
                stored = await asyncio.to_thread(self.log.append, flat)
            except Exception as err:
                for _, done in batch:
                    done.set_exception(err)
                continue
            start = 0
            for events, done in batch:
                done.set_result(stored[start : start + len(events)])
                start += len(events)
