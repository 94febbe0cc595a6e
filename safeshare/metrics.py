"""Prometheus metrics of one process: Temporal's SDK metrics plus SafeShare's own.

A process that runs with a metrics address gets one Temporal ``Runtime`` exporting on it
(``runtime_for``); every client ``connect_temporal`` makes in that process shares it, so the
SDK's worker and client series and SafeShare's counters appear on one endpoint. Workflows
record their counters through ``workflow.metric_meter()`` (replay-safe) on the same runtime.
Labels carry codes only (RPC names, status codes, outcomes, steps, agency ids) and, on the
operator alerts, the case ref (a non-identifying digest), never personal data.

What says a person is needed (the alert rules in ``ops/prometheus/`` read these):

- ``safeshare_operator_alerts_open{reason, case_ref, step, rung, agency_id, urgency}`` (hub):
  1 while an operator alert is open, 0 once the case moved on (``safeshare.alerts``);
- ``safeshare_operator_alerts{reason, step, rung, urgency}`` (hub): alerts raised, a counter;
- ``safeshare_exchanges_overdue{urgency}`` (hub): open exchanges past their next deadline;
- ``safeshare_exchanges_open{waiting_on}`` (hub): open exchanges by whose move it is;
- ``safeshare_certificate_expiry_timestamp_seconds{component, agency_id, certificate}``
  (gateway, adapters, sandbox agencies): the not-after time of each certificate presented or
  trusted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from cryptography import x509
from temporalio.common import MetricCounter, MetricGauge, MetricGaugeFloat, MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

_runtime: Runtime | None = None
_bound = ""
_gateway_requests: MetricCounter | None = None
_access_events: MetricCounter | None = None
_alerts_open: MetricGauge | None = None
_alerts_raised: MetricCounter | None = None
_overdue: MetricGauge | None = None
_open_exchanges: MetricGauge | None = None
_disclosures_overdue: MetricGauge | None = None
_certificate_expiry: MetricGaugeFloat | None = None


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
    global _gateway_requests, _access_events, _alerts_open, _alerts_raised, _overdue
    global _certificate_expiry, _open_exchanges, _disclosures_overdue
    _gateway_requests = meter.create_counter(
        "safeshare_gateway_requests", "Case API calls by RPC and gRPC status code."
    )
    _access_events = meter.create_counter(
        "safeshare_access_events",
        "Access events recorded (reads of case content and refused attempts), by channel, "
        "action and outcome (allowed or refused).",
    )
    _alerts_open = meter.create_gauge(
        "safeshare_operator_alerts_open",
        "1 while an operator alert is open (by reason, case ref, step and rung), 0 once resolved.",
    )
    _alerts_raised = meter.create_counter(
        "safeshare_operator_alerts", "Operator alerts raised, by reason, step, rung and urgency."
    )
    _overdue = meter.create_gauge(
        "safeshare_exchanges_overdue", "Open exchanges past their next deadline, by urgency."
    )
    _open_exchanges = meter.create_gauge(
        "safeshare_exchanges_open", "Open exchanges by whose move it is (WaitingOn)."
    )
    _disclosures_overdue = meter.create_gauge(
        "safeshare_disclosure_acknowledgements_overdue",
        "Open disclosures whose recipient's acknowledgement is past its deadline, by kind.",
    )
    _certificate_expiry = meter.create_gauge_float(
        "safeshare_certificate_expiry_timestamp_seconds",
        "Not-after time (Unix seconds) of a certificate this process presents or trusts.",
    )


def set_operator_alert(labels: Mapping[str, str], is_open: bool) -> None:
    """Open (1) or resolve (0) one operator alert's series; a no-op without metrics."""
    if _alerts_open is not None:
        _alerts_open.set(1 if is_open else 0, labels)


def count_operator_alert(labels: Mapping[str, str]) -> None:
    """Count one operator alert raised; a no-op without metrics."""
    if _alerts_raised is not None:
        _alerts_raised.add(1, labels)


def set_exchanges_overdue(urgency: str, count: int) -> None:
    """How many open exchanges of ``urgency`` are past their deadline; no-op without metrics."""
    if _overdue is not None:
        _overdue.set(count, {"urgency": urgency})


def set_exchanges_open(waiting_on: str, count: int) -> None:
    """How many open exchanges wait on ``waiting_on``; a no-op without metrics."""
    if _open_exchanges is not None:
        _open_exchanges.set(count, {"waiting_on": waiting_on})


def set_disclosures_overdue(kind: str, count: int) -> None:
    """How many open disclosures of ``kind`` wait past their acknowledgement deadline; a no-op
    without metrics."""
    if _disclosures_overdue is not None:
        _disclosures_overdue.set(count, {"kind": kind})


def export_certificate_expiry(
    component: str, agency_id: str, certificates: Mapping[str, bytes]
) -> dict[str, dt.datetime]:
    """Export the not-after time of each PEM certificate (or bundle: its first to expire), by
    role (``server``, ``client``, ``ca``); returns them. Exports nothing without metrics."""
    expiry = {
        role: min(cert.not_valid_after_utc for cert in x509.load_pem_x509_certificates(pem))
        for role, pem in certificates.items()
    }
    if _certificate_expiry is not None:
        for role, not_after in expiry.items():
            _certificate_expiry.set(
                not_after.timestamp(),
                {"component": component, "agency_id": agency_id, "certificate": role},
            )
    return expiry


def count_gateway_request(rpc: str, code: str) -> None:
    """Count one completed Case API call; a no-op in a process without metrics."""
    if _gateway_requests is not None:
        _gateway_requests.add(1, {"rpc": rpc, "code": code})


def count_access_event(channel: str, action: str, outcome: str) -> None:
    """Count one recorded access event; a no-op in a process without metrics."""
    if _access_events is not None:
        _access_events.add(1, {"channel": channel, "action": action, "outcome": outcome})
