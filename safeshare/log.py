"""Logging, configured once by the CLI: structlog JSON (or the console renderer on a TTY).

Temporal's and grpc's stdlib loggers go through the same formatter. Bind ``case_ref``,
``agency_id`` and ``rpc`` at each request or activity boundary; log ids and decisions, never
record contents or personal data.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(level: str = "INFO", json: bool | None = None, component: str = "") -> None:
    """Configure structlog and route the stdlib loggers through it.

    Args:
        level: the minimum level, e.g. "INFO".
        json: JSON lines if true, the console renderer if false; by default JSON unless
            stderr is a terminal.
        component: bound to every line (e.g. "gateway", "adapter") so a shared log reads.
    """
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if component:
        structlog.contextvars.bind_contextvars(component=component)
