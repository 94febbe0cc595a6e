"""``safeshare archive run``: the archiver's process, sweeping until SIGINT or SIGTERM.

After each sweep it keeps the time and the lag in the archive (``LAST_SWEEP``, ``LAST_LAG``),
for ``safeshare archive status`` to report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.archive.cli_options import DEFAULT_ARCHIVE_URL, ArchiveUrl, SigningKey, guard
from safeshare.temporal_options import NO_FLAGS, TemporalFlags, temporal_options

LAST_SWEEP = "archiver.last_sweep"
LAST_LAG = "archiver.lag_seconds"


@temporal_options
def run_command(
    signing_key: SigningKey,
    archive_url: ArchiveUrl = DEFAULT_ARCHIVE_URL,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    interval: Annotated[float, typer.Option(help="Seconds between sweeps.")] = 15.0,
    retention_days: Annotated[
        float, typer.Option(help="The namespace's retention: the lag alert is a share of it.")
    ] = 7.0,
    lag_alert_fraction: Annotated[float, typer.Option(help="Alert past this share.")] = 0.5,
    metrics_port: Annotated[
        int | None, typer.Option(envvar="SAFESHARE_METRICS_PORT", help="Prometheus port.")
    ] = None,
    temporal: TemporalFlags = NO_FLAGS,
    log_format: Annotated[str | None, typer.Option(envvar="SAFESHARE_LOG_FORMAT")] = None,
) -> None:
    """Run the archiver: archive closed cases, read them back, sign checkpoints."""
    from safeshare.archive.archiver import ArchiverSettings, protocol_version_of
    from safeshare.log import configure_logging

    configure_logging(json=None if log_format is None else log_format == "json",
                      component="archiver")  # fmt: skip
    metrics = None if metrics_port is None else f"127.0.0.1:{metrics_port}"
    connection = guard(lambda: temporal.settings(metrics_address=metrics))
    archiver = ArchiverSettings(
        interval=interval,
        retention=dt.timedelta(days=retention_days),
        lag_alert_fraction=lag_alert_fraction,
        protocol_version=protocol_version_of(registry),
    )
    guard(lambda: asyncio.run(run_archiver(connection, archive_url, signing_key, archiver)))


async def run_archiver(temporal: Any, archive_url: str, signing_key: Path, settings: Any) -> None:
    """The archiver's process: connect, sweep until SIGINT or SIGTERM."""
    import structlog

    from safeshare.archive.archiver import Archiver, ArchiverMetrics
    from safeshare.archive.url import open_archive
    from safeshare.audit.signing import ensure_signing_key, load_private_key
    from safeshare.metrics import runtime_for
    from safeshare.shutdown import wait_for_stop_signal
    from safeshare.temporal import connect_temporal_waiting

    log = structlog.get_logger("safeshare.archive")
    ensure_signing_key(signing_key)
    key = load_private_key(signing_key)
    client = await connect_temporal_waiting(temporal)
    meter = runtime_for(temporal.metrics_address).metric_meter if temporal.metrics_address else None
    store = await asyncio.to_thread(_open_with_retry, open_archive, archive_url)
    archiver = Archiver(client, store, key, settings, ArchiverMetrics(meter))
    stop = asyncio.Event()

    async def stopper() -> None:
        await wait_for_stop_signal()
        stop.set()

    waiting = asyncio.ensure_future(stopper())
    log.info("archiver_started", count=int(settings.retention.total_seconds() // 86400))
    try:
        while not stop.is_set():
            result = await archiver.sweep()
            if not result.unavailable:
                await asyncio.to_thread(_record_sweep, store, result.lag.total_seconds())
            try:
                await asyncio.wait_for(stop.wait(), settings.interval)
            except TimeoutError:
                continue
    finally:
        waiting.cancel()
        store.close()
        log.info("archiver_stopped")


def _open_with_retry(open_archive: Callable[[str], Any], url: str) -> Any:
    """Open the archive, waiting for its database to come up (a server starting with us)."""
    import time

    from safeshare.archive.errors import ArchiveUnavailable

    for _ in range(60):
        try:
            return open_archive(url)
        except ArchiveUnavailable:
            time.sleep(1.0)
    return open_archive(url)


def _record_sweep(store: Any, lag_seconds: float) -> None:
    from safeshare.archive.errors import ArchiveUnavailable

    try:
        store.set_meta(LAST_SWEEP, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        store.set_meta(LAST_LAG, f"{lag_seconds:.0f}")
    except ArchiveUnavailable:
        pass
