"""Fair shares: one agency cannot take every watch, and no watch lives for ever.

200 WatchCase streams from one agency used to lock every other agency out (RESOURCE_EXHAUSTED)
and slow another agency's case from 0.64 s to 36 s. Over real mTLS, on a real case.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from partnership.registry import Registry
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import create_gateway_server
from safeshare.gateway.admission import Quotas
from safeshare.pki import DevPki
from tests.safeshare.gateway_support import CSC, SCHOOL
from tests.security.test_forged_decisions import Stack, stack

__all__ = ["stack"]

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUOTAS = Quotas(calls_per_agency=8, watches_per_agency=2, max_watch_seconds=3.0)


async def _watch(
    channel: grpc.aio.Channel, ref: str
) -> AsyncIterator[service_pb.WatchCaseResponse]:
    stub = service_grpc.CaseServiceStub(channel)
    async for response in stub.WatchCase(service_pb.WatchCaseRequest(case_ref=ref), timeout=30):
        yield response


async def test_one_agencys_watches_leave_room_for_others_and_end_in_time(
    stack: Stack, pki: DevPki, registry: Registry
) -> None:
    ref = await stack.refused_case()
    server, port = await create_gateway_server(
        stack.system, registry, tls.server_credentials(pki.gateway()),
        hub_task_queue=stack.hub_queue, signer=stack.signer, quotas=QUOTAS,
    )  # fmt: skip
    channels = {
        agency: grpc.aio.secure_channel(
            f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(agency))
        )
        for agency in (CSC, SCHOOL)
    }
    try:
        held = [_watch(channels[CSC], ref) for _ in range(QUOTAS.watches_per_agency)]
        for stream in held:
            await anext(stream)  # open and served
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await anext(_watch(channels[CSC], ref))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_delay(refused.value) is not None
        # Another agency is not locked out by the first one's streams.
        school = _watch(channels[SCHOOL], ref)
        assert (await anext(school)).event.number >= 1
        # Every stream ends at its maximum life, asking the caller to resume.
        for stream in [*held, school]:
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async with asyncio.timeout(QUOTAS.max_watch_seconds + 10):
                    async for _ in stream:
                        pass
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "from_event" in (ended.value.details() or "")
        # With the streams gone, the agency may watch again.
        assert (await anext(_watch(channels[CSC], ref))).event.number >= 1
    finally:
        for channel in channels.values():
            await channel.close()
        await server.stop(None)


def _retry_delay(err: grpc.aio.AioRpcError) -> float | None:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return info.retry_delay.ToTimedelta().total_seconds()
    return None


async def test_one_agencys_flood_of_calls_is_refused_while_another_agency_is_served(
    stack: Stack, pki: DevPki, registry: Registry
) -> None:
    """Under real load over real mTLS: one agency sends many GetCase calls at once, far past
    its share of calls in flight; the excess is refused RESOURCE_EXHAUSTED with a retry delay
    (never INTERNAL, never a hang), the rest are answered, and another agency calling at the
    same time within its own share is answered every time."""
    ref = await stack.refused_case()
    server, port = await create_gateway_server(
        stack.system, registry, tls.server_credentials(pki.gateway()),
        hub_task_queue=stack.hub_queue, signer=stack.signer, quotas=QUOTAS,
    )  # fmt: skip
    channels = {
        agency: grpc.aio.secure_channel(
            f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(agency))
        )
        for agency in (CSC, SCHOOL)
    }
    stubs = {agency: service_grpc.CaseServiceStub(channel) for agency, channel in channels.items()}
    request = service_pb.GetCaseRequest(case_ref=ref)

    async def get(agency: str) -> grpc.StatusCode:
        try:
            await stubs[agency].GetCase(request, timeout=60)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                assert _retry_delay(err) is not None, "refused without a retry delay"
            return err.code()
        return grpc.StatusCode.OK

    try:
        for agency in channels:  # both connections up before the flood
            assert await get(agency) == grpc.StatusCode.OK
        flood = [asyncio.ensure_future(get(CSC)) for _ in range(25 * QUOTAS.calls_per_agency)]
        others = [asyncio.ensure_future(get(SCHOOL)) for _ in range(QUOTAS.calls_per_agency // 2)]
        flooded = await asyncio.gather(*flood)
        served = await asyncio.gather(*others)
    finally:
        for channel in channels.values():
            await channel.close()
        await server.stop(None)
    counts = {code: flooded.count(code) for code in set(flooded)}
    assert set(counts) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, counts
    assert counts[grpc.StatusCode.OK] >= QUOTAS.calls_per_agency, counts
    assert served == [grpc.StatusCode.OK] * len(others), served
