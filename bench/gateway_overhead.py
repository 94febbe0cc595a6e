"""The gateway's own overhead: SubmitRequest, GetCase and a decision (ChangeUrgency) through the
real gateway, against a bare grpc.aio echo server over the same mTLS with the same request and
response sizes."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from bench import cases
from bench.echo_server import METHOD, echo_request
from bench.stack import CALL_TIMEOUT, HOST, BenchStack
from bench.stats import percentile
from safeshare.client import CaseClient
from safeshare.tls import channel_credentials


@dataclass(frozen=True)
class Timing:
    """Latency percentiles of one RPC at one concurrency, with its echo yardstick."""

    rpc: str
    in_flight: int
    calls: int
    p50: float
    p99: float
    echo_p50: float
    echo_p99: float
    errors: int = 0
    """Real calls that failed (e.g. UNAVAILABLE: Temporal slower than the gateway's deadline)."""


async def _timed(
    in_flight: int, calls: int, call: Callable[[int], Awaitable[object]]
) -> tuple[list[float], int]:
    samples: list[float] = []
    errors: list[int] = []
    counter = iter(range(calls))

    async def lane() -> None:
        for i in counter:
            t0 = time.perf_counter()
            try:
                await call(i)
            except grpc.aio.AioRpcError:
                errors.append(i)  # reported beside the timings, not hidden in them
                continue
            samples.append(time.perf_counter() - t0)

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return samples, len(errors)


async def _submit(client: CaseClient, tag: str, case_ref: str, i: int) -> object:
    return await client.submit(cases.request(cases.COMMON, f"{tag}-{i}"))


async def _get(client: CaseClient, tag: str, case_ref: str, i: int) -> object:
    # A different case each call (the ones SubmitRequest just opened): queries to one workflow
    # are answered one at a time, so reading a single case 64 at a time would time a queue.
    return await client.get(cases.case_ref(cases.COMMON, f"{tag}-{i}"))


async def _change_urgency(client: CaseClient, tag: str, case_ref: str, i: int) -> object:
    # The cases SubmitRequest opened (AMBER, waiting on the recipient's acknowledgement), once
    # each: a re-rating is an Update on the case, forwarded to its exchange by signal.
    ref = cases.case_ref(cases.COMMON, f"{tag}-{i}")
    return await client.change_urgency(ref, cases.urgency_change(cases.COMMON))


async def _echo(
    echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes], payload: bytes, i: int
) -> object:
    return await echo(payload, timeout=10)


async def measure(
    stack: BenchStack, tag: str, calls: int, levels: tuple[int, ...] = (1, 64)
) -> list[Timing]:
    """Time SubmitRequest, then GetCase and ChangeUrgency on the cases it opened (one call
    each), at each level, then the echo server at the same request and response sizes."""
    path = cases.COMMON
    tls = stack.dev.pki.agency(path.requester)
    results = []
    async with (
        CaseClient.connect(
            stack.dev.gateway_target, tls, call_timeout=CALL_TIMEOUT, attempts=1
        ) as client,
        grpc.aio.secure_channel(
            f"{HOST}:{stack.echo_port}", channel_credentials(tls)
        ) as echo_channel,
    ):
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = echo_channel.unary_unary(METHOD)
        # One case to read, and the real message sizes.
        sample = cases.request(path, f"{tag}-probe")
        submitted = await client.submit(sample)
        view = await client.get(submitted.case_ref)
        change = cases.urgency_change(path)
        sizes = {
            "SubmitRequest": (sample.ByteSize() + 4, submitted.ByteSize()),
            "GetCase": (len(submitted.case_ref) + 2, view.ByteSize() + 3),
            "ChangeUrgency": (len(submitted.case_ref) + change.ByteSize() + 5, view.ByteSize() + 3),
        }
        calls_for = {"SubmitRequest": _submit, "GetCase": _get, "ChangeUrgency": _change_urgency}
        for level in levels:
            for rpc, (request_size, response_size) in sizes.items():
                rpc_call = calls_for[rpc]
                call = functools.partial(rpc_call, client, f"{tag}-{level}", submitted.case_ref)
                real, failed = await _timed(level, calls, call)
                payload = echo_request(request_size, response_size)
                echo_call = functools.partial(_echo, echo, payload)
                await _timed(level, min(calls, 64), echo_call)  # warm the channel
                bare, _ = await _timed(level, calls, echo_call)
                results.append(Timing(
                    rpc, level, calls, percentile(real, 50), percentile(real, 99),
                    percentile(bare, 50), percentile(bare, 99), failed,
                ))  # fmt: skip
    return results
