"""Prometheus metrics of one process: Temporal's SDK metrics plus SafeShare's own.

A process that runs with a metrics address gets one Temporal ``Runtime`` exporting on it
(``runtime_for``); every client ``connect_temporal`` makes in that process shares it, so the
SDK's worker and client series and SafeShare's counters appear on one endpoint. Workflows
record their counters through ``workflow.metric_meter()`` (replay-safe) on the same runtime.
Labels carry codes only (RPC names, status codes, outcomes, steps), never personal data.
"""

from __future__ import annotations

from temporalio.common import MetricCounter, MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

_runtime: Runtime | None = None
_bound = ""
_gateway_requests: MetricCounter | None = None
_access_events: MetricCounter | None = None


class MetricsError(OSError):
    """The metrics endpoint cannot be served (port taken, or already served elsewhere).

    An OSError so the CLI reports it in one line like any other address it cannot bind.
    """


def runtime_for(address: str) -> Runtime:
    """The process's Temporal runtime exporting Prometheus metrics on ``address``.

    Created on first use; later calls with the same address return the same runtime (a
    second runtime could not bind the same port).

    Raises:
        MetricsError: the address cannot be bound, or metrics are already served on another.
    """
    global _runtime, _bound
    if _runtime is None:
        try:
            prometheus = PrometheusConfig(bind_address=address)
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=prometheus))
        except ValueError as err:  # the core reports a port in use as a ValueError
            raise MetricsError(f"cannot serve metrics on {address}: {err}") from None
        _bound = address
        _use_meter(_runtime.metric_meter)
    elif _bound != address:
        raise MetricsError(f"metrics are already served on {_bound}, not {address}")
    return _runtime


def _use_meter(meter: MetricMeter) -> None:
    global _gateway_requests, _access_events
    _gateway_requests = meter.create_counter(
        "safeshare_gateway_requests", "Case API calls by RPC and gRPC status code."
    )
    _access_events = meter.create_counter(
        "safeshare_access_events",
        "Access events recorded (reads of case content and refused attempts), by channel, "
        "action and outcome (allowed or refused).",
    )


def count_gateway_request(rpc: str, code: str) -> None:
    """Count one completed Case API call; a no-op in a process without metrics."""
    if _gateway_requests is not None:
        _gateway_requests.add(1, {"rpc": rpc, "code": code})


def count_access_event(channel: str, action: str, outcome: str) -> None:
    """Count one recorded access event; a no-op in a process without metrics."""
    if _access_events is not None:
        _access_events.add(1, {"channel": channel, "action": action, "outcome": outcome})
