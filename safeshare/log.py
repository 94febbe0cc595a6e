"""Logging, configured once by the CLI: structlog JSON (or the console renderer on a TTY).

Temporal's and grpc's stdlib loggers go through the same formatter. Bind ``case_ref``,
``agency_id`` and ``rpc`` at each request or activity boundary; log ids and decisions, never
record contents or personal data.

Two processors make that hold even when a call site forgets:

- only the fields in ``ALLOWED_FIELDS`` are written as they are; any other field's value is
  replaced by ``"[redacted]"`` (the key stays, so a reader sees that something was dropped);
- an exception is written as its types and stack frames, never its message (a message may
  quote a payload: a name, a record).

A new field is added to ``ALLOWED_FIELDS`` only if its values are ids, codes, counts or
durations. The event name itself is free text chosen by the code; keep it a snake_case fact.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from safeshare.tracing import add_trace_ids

REDACTED = "[redacted]"

ALLOWED_FIELDS = frozenset(
    {
        # structlog's and the stdlib's own
        "event", "level", "timestamp", "logger", "component", "stack", "exception",
        # ids and where: references, never personal data
        "case_ref", "agency_id", "rpc", "task_queue", "delivery_id", "notification_id",
        "notice_id", "claim_digest", "address", "port", "namespace",
        "temporal_workflow", "temporal_activity", "deployment", "build_id",
        "run_id",  # Temporal's own random run ids
        # codes and outcomes
        "code", "status", "temporal_status", "temporal_details", "error_type", "signal",
        "fault", "faults", "kind", "step", "duplicate", "claimed", "key_id",
        "rung", "reason", "urgency",
        # the trace a line belongs to (random ids, never personal data)
        "trace_id", "span_id",
        # numbers
        "duration_ms", "count", "item_count", "size_bytes", "reminders", "attempt",
        "deliveries_known", "deliveries_unknown", "registry_version",
    }
)  # fmt: skip
"""Fields written as they are. Everything else is masked as ``"[redacted]"``."""


def redact_unlisted_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask the value of every field not in ``ALLOWED_FIELDS``."""
    for key in event_dict:
        if key not in ALLOWED_FIELDS:
            event_dict[key] = REDACTED
    return event_dict


def exception_without_messages(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Render ``exc_info`` as exception types and frames only, in ``exception``."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[1] is not None:
        event_dict["exception"] = _types_and_frames(exc_info[1])
    return event_dict


def _types_and_frames(error: BaseException) -> str:
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        lines.append(f"{type(current).__module__}.{type(current).__qualname__} (message withheld)")
        lines.extend(line.rstrip() for line in traceback.format_list(frames))
        current = current.__cause__ or current.__context__
    return "\n".join(lines)


_PROCESSORS: list[Any] = []


def configure_logging(
    level: str = "INFO", json: bool | None = None, component: str = "", stream: TextIO | None = None
) -> None:
    """Configure structlog and route the stdlib loggers through it.

    Args:
        level: the minimum level, e.g. "INFO".
        json: JSON lines if true, the console renderer if false; by default JSON unless
            stderr is a terminal.
        component: bound to every line (e.g. "gateway", "adapter") so a shared log reads.
        stream: where lines go; stderr by default.
    """
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        exception_without_messages,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    # 👉 One list, changed in place, and loggers not cached: a logger in use must follow a later
    # configuration (another command in the same process, structlog's capture_logs in tests).
    _PROCESSORS[:] = [
        *shared,
        structlog.processors.StackInfoRenderer(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # 👉 Last before rendering, so nothing added earlier escapes the allow-list.
            redact_unlisted_fields,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if component:
        structlog.contextvars.bind_contextvars(component=component)
