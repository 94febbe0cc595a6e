"""An OTLP/gRPC trace receiver for tests: a real ``TraceService`` server on a free loopback
port that keeps every span exported to it, with the resource of the process that sent it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, with the attributes of the process (resource) that sent it."""

    trace_id: str
    name: str
    service: str
    instance: str
    attributes: dict[str, Any]
    raw: dict[str, Any]
    """The whole span and its resource as JSON (what the leak scan reads)."""


@dataclass
class Receiver:
    endpoint: str
    spans: list[ReceivedSpan] = field(default_factory=list)


class _TraceService(otlp_grpc.TraceServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    async def Export(
        self, request: otlp.ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> otlp.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._receiver.spans.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            name=span.name,
                            service=str(resource.get("service.name", "")),
                            instance=str(resource.get("service.instance.id", "")),
                            attributes=_attributes(span.attributes),
                            raw={"resource": MessageToDict(resource_spans.resource),
                                 "span": MessageToDict(span)},
                        )
                    )  # fmt: skip
        return otlp.ExportTraceServiceResponse()


def _attributes(values: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in values:
        kind = item.value.WhichOneof("value")
        found[item.key] = getattr(item.value, kind) if kind else None
    return found


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    """A running receiver; its ``endpoint`` is what ``SAFESHARE_OTLP_ENDPOINT`` takes."""
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    receiver = Receiver(endpoint=f"http://127.0.0.1:{port}")
    otlp_grpc.add_TraceServiceServicer_to_server(_TraceService(receiver), server)
    await server.start()
    try:
        yield receiver
    finally:
        await server.stop(None)
