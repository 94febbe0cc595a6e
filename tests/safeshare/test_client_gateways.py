"""One Case API target for several gateways: the client spreads calls round robin over every
address and leaves out a gateway whose health says NOT_SERVING or that has stopped, on real
gRPC servers over mTLS on loopback."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1.case_service_pb2_grpc import (
    CaseServiceServicer,
    add_CaseServiceServicer_to_server,
)
from safeshare.client import CaseClient, gateway_channel
from safeshare.pki import DevPki
from safeshare.tls import server_credentials

CALLS = 12


@dataclass
class Gateway:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer


class CountingService(CaseServiceServicer):
    """Answers GetCase and counts which gateway answered."""

    def __init__(self, index: int, hits: Counter[int]) -> None:
        self.index = index
        self.hits = hits

    async def GetCase(
        self, request: service_pb.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> service_pb.GetCaseResponse:
        self.hits[self.index] += 1
        return service_pb.GetCaseResponse()


@pytest_asyncio.fixture(loop_scope="session")
async def gateways(pki: DevPki) -> AsyncIterator[tuple[list[Gateway], Counter[int]]]:
    hits: Counter[int] = Counter()
    started = []
    for index in range(2):
        server = grpc.aio.server()
        # Only GetCase is implemented; the other methods answer UNIMPLEMENTED.
        add_CaseServiceServicer_to_server(CountingService(index, hits), server)  # type: ignore[abstract]
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_secure_port("127.0.0.1:0", server_credentials(pki.gateway()))
        await server.start()
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        started.append(Gateway(server, port, servicer))
    try:
        yield started, hits
    finally:
        for gateway in started:
            await gateway.server.stop(None)


async def calls(client: CaseClient, hits: Counter[int]) -> Counter[int]:
    hits.clear()
    for _ in range(CALLS):
        await client.get("0123456789abcdef")
    return Counter(hits)


@pytest.mark.asyncio(loop_scope="session")
async def test_calls_go_round_robin_and_skip_a_gateway_that_is_not_serving(
    gateways: tuple[list[Gateway], Counter[int]], pki: DevPki
) -> None:
    servers, hits = gateways
    target = ",".join(f"127.0.0.1:{g.port}" for g in servers)
    async with CaseClient.connect(target, pki.agency("riverside-gp")) as client:
        # Both answer (the first calls may all go to whichever connected first).
        both = await calls(client, hits)
        assert set(both) == {0, 1} and min(both.values()) >= CALLS // 4, both

        await servers[0].health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        # Health is watched (a stream), so the next calls already avoid it.
        assert await eventually_only(client, hits, 1) == {1: CALLS}

        await servers[0].health.set("", health_pb2.HealthCheckResponse.SERVING)
        await servers[1].server.stop(None)
        assert await eventually_only(client, hits, 0) == {0: CALLS}


async def eventually_only(client: CaseClient, hits: Counter[int], index: int) -> Counter[int]:
    """The counts of a round of calls once all of it goes to gateway ``index`` (bounded)."""
    seen: Counter[int] = Counter()
    for _ in range(50):
        try:
            seen = await calls(client, hits)
        except grpc.aio.AioRpcError as err:  # a call in flight as a server stopped
            assert err.code() is grpc.StatusCode.UNAVAILABLE
            continue
        if set(seen) == {index}:
            return seen
        await asyncio.sleep(0.1)
    return seen


def test_a_list_of_addresses_is_one_channel_named_for_the_certificate() -> None:
    target, options = gateway_channel(["10.0.0.5:50051", "10.0.0.6:50051"], "gateway.example")
    assert target == "ipv4:10.0.0.5:50051,10.0.0.6:50051"
    assert ("grpc.ssl_target_name_override", "gateway.example") in options
    single, options = gateway_channel("dns:///gateways.partnership.example:50051")
    assert single == "dns:///gateways.partnership.example:50051"
    assert [name for name, _ in options] == ["grpc.service_config"]
    with pytest.raises(ValueError, match="no gateway address"):
        gateway_channel(" , ")
