"""The system under test and its baseline, side by side on one Temporal dev server.

SafeShare runs exactly as ``safeshare dev`` starts it (``safeshare.devstack.stack.DevStack``:
the dev server with SQLite WAL and the poll-rate setting, sandbox agencies, adapter workers,
hub, gateway, encryption on) in a fresh data dir on free ports; the bare baseline worker and the
bare gRPC echo server are extra child processes beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from bench import untuned_hub
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.codec import load_key_file
from safeshare.devstack.settings import DevPorts, Replicas
from safeshare.devstack.stack import DevStack
from safeshare.temporal import TemporalSettings, connect_temporal

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
# A loaded 2-core machine can take seconds per call; the bench measures, it does not fail fast.
CALL_TIMEOUT = 60.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _consecutive_free(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (gateway replicas)."""
    for base in range(21000, 32000, count + 1):
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind((HOST, port))
            except OSError:
                continue
            return base
    raise RuntimeError("no consecutive free ports")


@dataclass
class Extra:
    """A child process the bench started beside the dev stack."""

    name: str
    process: asyncio.subprocess.Process


@dataclass
class BenchStack:
    """Everything one bench run talks to."""

    dev: DevStack
    safeshare: Client
    """Temporal client with SafeShare's encrypting converter."""
    bare: Client
    """Temporal client with the default converter, for the baseline."""
    bare_deliveries: Path
    echo_port: int
    extras: list[Extra] = field(default_factory=list)

    @property
    def temporal_address(self) -> str:
        """The dev server."""
        return f"{HOST}:{self.dev.ports.temporal}"

    def recipient_db(self, agency_id: str) -> Path:
        """The sandbox agency's SQLite store (its ``deliveries`` table)."""
        return self.dev.data_dir / "agencies" / f"{agency_id}.db"

    async def swap_hub_for_untuned(self) -> None:
        """Stop the dev stack's hub and start ``bench.untuned_hub`` in its place (same name)."""
        for child in self.dev.processes.children:
            if child.name == "hub" and child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(child.process.wait(), 30)
        self.dev.processes.children = [c for c in self.dev.processes.children if c.name != "hub"]
        self.extras.append(await _spawn_ready(
            "hub", untuned_hub.READY, self.dev.data_dir / "logs" / "untuned-hub.log",
            sys.executable, "-m", "bench.untuned_hub", "--temporal-address", self.temporal_address,
            "--keys-file", str(self.dev.keys_file),
            "--gateway-key", str(self.dev.pki.gateway_signing_key()[1]),
        ))  # fmt: skip

    def pids(self) -> dict[str, int]:
        """Process ids of the SafeShare processes and the baseline worker, by name."""
        found = {c.name: c.process.pid for c in self.dev.processes.children}
        found.update({e.name: e.process.pid for e in self.extras})
        return found


async def _spawn_ready(name: str, marker: str, log: Path, *argv: str) -> Extra:
    """Start ``argv`` and wait for it to print ``marker``."""
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=out, stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
    if marker.encode() not in line:
        raise RuntimeError(f"{name} did not start; see {log}")
    return Extra(name, process)


async def _stop(extra: Extra) -> None:
    if extra.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            extra.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(extra.process.wait(), 15)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            extra.process.kill()
        await extra.process.wait()


@contextlib.asynccontextmanager
async def bench_stack(
    data_dir: Path, response_sizes: str = "", replicas: Replicas | None = None
) -> AsyncIterator[BenchStack]:
    """Start SafeShare's dev stack (no demo cases), the bare worker and the echo server."""
    ports = free_ports(6)
    gateway = ports[2] if replicas is None else _consecutive_free(replicas.gateway)
    dev = DevStack(
        data_dir,
        DevPorts(temporal=ports[0], ui=ports[1], gateway=gateway, first_agency=ports[3],
                 codec=ports[4]),
        DEFAULT_REGISTRY_PATH,
        encryption=True,
        replicas=replicas,
    )  # fmt: skip
    # Agencies take consecutive ports from first_agency: move the echo server past them.
    echo_port = free_ports(1)[0]
    while echo_port in dev.agency_ports.values():
        echo_port = free_ports(1)[0]
    extras: list[Extra] = []
    try:
        await dev.start()
        address = f"{HOST}:{ports[0]}"
        keys = load_key_file(dev.keys_file)
        safeshare = await connect_temporal(TemporalSettings(address=address, keys=keys))
        bare = await Client.connect(address)
        deliveries = data_dir / "bare-deliveries.db"
        logs = data_dir / "logs"
        extras.append(await _spawn_ready(
            "bare-worker", "bare-worker-ready", logs / "bare-worker.log",
            sys.executable, "-m", "bench.bare_worker",
            "--temporal-address", address, "--deliveries-db", str(deliveries),
        ))  # fmt: skip
        tls = dev.pki.gateway()
        extras.append(await _spawn_ready(
            "echo-server", "echo-server-ready", logs / "echo-server.log",
            sys.executable, "-m", "bench.echo_server", "--port", str(echo_port),
            "--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
        ))  # fmt: skip
        stack = BenchStack(dev, safeshare, bare, deliveries, echo_port, extras)
        yield stack
    finally:
        for extra in reversed(extras):
            await _stop(extra)
        await dev.stop()
