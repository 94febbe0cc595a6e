"""One way for a test to wait for something that happens later: ``eventually``.

It reads until what it read is done, or fails the test saying what never happened and what it
read last. Tests wait for a condition, never for a time.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], object] | None = None,
    *,
    what: str,
    within: float = 30.0,
    every: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
    retry_if: Callable[[BaseException], bool] | None = None,
    last: Callable[[T], object] = repr,
) -> T: ...


@overload
async def eventually(
    read: Callable[[], T],
    done: Callable[[T], object] | None = None,
    *,
    what: str,
    within: float = 30.0,
    every: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
    retry_if: Callable[[BaseException], bool] | None = None,
    last: Callable[[T], object] = repr,
) -> T: ...


async def eventually(
    read: Callable[[], Any],
    done: Callable[[Any], object] | None = None,
    *,
    what: str,
    within: float = 30.0,
    every: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
    retry_if: Callable[[BaseException], bool] | None = None,
    last: Callable[[Any], object] = repr,
) -> Any:
    """``read()`` (sync or async) until ``done(value)`` holds; return that value.

    Args:
        read: what to look at.
        done: when it is enough (default: the value is true).
        what: what the test is waiting for, for the failure message ("never {what}").
        within: seconds before the test fails.
        every: seconds between reads.
        retry_on: exceptions that mean "not yet" (e.g. a workflow not started yet); any other
            exception fails at once.
        retry_if: of those, which mean "not yet" (default: all); the others fail at once.
        last: how to show the last value read in the failure message.

    Raises:
        AssertionError: ``done`` never held within ``within`` seconds.
    """
    enough: Callable[[Any], object] = bool if done is None else done
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen = "nothing read"
    while True:
        try:
            read_now = read()
            value = await read_now if inspect.isawaitable(read_now) else read_now
        except retry_on as err:
            if retry_if is not None and not retry_if(err):
                raise
            seen = f"{type(err).__name__}: {err}"
        else:
            if enough(value):
                return value
            seen = str(last(value))
        if loop.time() >= deadline:
            raise AssertionError(f"never {what} within {within:g} s; last read: {seen}")
        await asyncio.sleep(every)
