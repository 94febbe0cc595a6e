"""OpenTelemetry tracing of one process, so one trace follows a case across processes.

``configure_tracing`` (called once by each long-running process, ``safeshare.services``, before
it makes any server, channel or Temporal client):

- a tracer provider whose resource names the process (``service.name`` ``safeshare-<component>``,
  ``service.instance.id`` the agency for adapters and sandbox agencies);
- the gRPC instrumentation on every ``grpc.aio`` server (the gateway, the sandbox agencies) and
  channel (the adapters' calls to agency systems), which continue the caller's trace from the
  ``traceparent`` metadata; health and reflection calls are not traced;
- ``tracing_interceptors()`` for the Temporal client (``safeshare.temporal``): Temporal's own
  ``TracingInterceptor``, which carries the trace in workflow, update and activity headers, so the
  gateway's ``SubmitRequest`` span is the parent of the case's workflows and of the activities the
  hub and the adapters run;
- export over OTLP/gRPC only when an endpoint is given (``--otlp-endpoint`` on ``safeshare dev``,
  ``SAFESHARE_OTLP_ENDPOINT`` for every command); otherwise spans stay in the process and only
  their ids reach the log lines (``add_trace_ids``).

Spans carry names of RPCs, workflows and activities, workflow ids (case refs, never personal
data) and status codes; never payloads (the leak test scans exported spans).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import (
    GrpcAioInstrumentorClient,
    GrpcAioInstrumentorServer,
    filters,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor

OTLP_ENDPOINT_ENV = "SAFESHARE_OTLP_ENDPOINT"
"""Where to export spans (OTLP over gRPC, e.g. ``http://127.0.0.1:4317``); unset: no export."""

_provider: TracerProvider | None = None


def configure_tracing(
    component: str, otlp_endpoint: str | None = None, instance: str = ""
) -> TracerProvider:
    """Trace this process as ``safeshare-<component>``; export to ``otlp_endpoint`` if given.

    Call once, before any gRPC server or channel is made (the instrumentation wraps their
    factories). A second call returns the provider made by the first.
    """
    global _provider
    if _provider is not None:
        return _provider
    attributes = {"service.name": f"safeshare-{component}"}
    if instance:
        attributes["service.instance.id"] = instance
    provider = TracerProvider(resource=Resource.create(attributes))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # 👉 Batching keeps exporting off the request path; the provider flushes it at exit.
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint), schedule_delay_millis=500)
        )
    trace.set_tracer_provider(provider)
    untraced = filters.negate(
        filters.any_of(
            filters.service_name("grpc.health.v1.Health"),
            filters.service_prefix("grpc.reflection"),
        )
    )
    GrpcAioInstrumentorServer(filter_=untraced).instrument(tracer_provider=provider)
    GrpcAioInstrumentorClient(filter_=untraced).instrument(tracer_provider=provider)
    _provider = provider
    return provider


def tracing_interceptors() -> list[Interceptor]:
    """Temporal's tracing interceptor when this process traces, else nothing."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_provider.get_tracer("safeshare.temporal"))]


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: the current span's trace and span ids on the line, if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict
