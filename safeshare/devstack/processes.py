"""The dev stack's child processes: how each is started (its log file, its environment), how
the stack waits until it answers, and how it is stopped, killed or started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from safeshare.codec import KEYS_ENV, KEYS_FILE_ENV
from safeshare.devstack.settings import HOST
from safeshare.tls import TlsFiles, channel_credentials
from safeshare.tracing import OTLP_ENDPOINT_ENV

STOP_GRACE_SECONDS = 15.0
START_TIMEOUT_SECONDS = 60.0


class DevStackError(Exception):
    """A part of the dev stack did not start."""


@dataclass
class Child:
    """A process the dev stack started."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    argv: tuple[str, ...] = ()
    """How it was started, so a replica can be started again (``ChildProcesses.restart``)."""


class ChildProcesses:
    """Every process the dev stack started, in the order it started them."""

    def __init__(self, log_dir: Path, keys_file: Path | None, otlp_endpoint: str | None) -> None:
        """Each child logs to ``log_dir/<name>.log``; it gets ``keys_file`` as its payload key
        ring, or runs with payloads in the clear when it is None."""
        self.log_dir = log_dir
        self.keys_file = keys_file
        self.otlp_endpoint = otlp_endpoint
        self.children: list[Child] = []

    async def spawn(self, name: str, *argv: str) -> None:
        """Start ``safeshare ARGV...`` (this interpreter's) as the child called ``name``."""
        await self.spawn_binary(name, sys.executable, "-m", "safeshare", *argv)

    async def spawn_binary(self, name: str, *argv: str) -> None:
        """Start ``argv`` as the child called ``name``, in its own session, logging to its file."""
        log_path = self.log_dir / f"{name}.log"
        env = {**os.environ, "SAFESHARE_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        env.pop(KEYS_ENV, None)
        if self.otlp_endpoint:
            env[OTLP_ENDPOINT_ENV] = self.otlp_endpoint
        if self.keys_file is not None:
            env[KEYS_FILE_ENV] = str(self.keys_file)
        else:
            env.pop(KEYS_FILE_ENV, None)
            env["SAFESHARE_PLAINTEXT_PAYLOADS"] = "1"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                # Its own session: Ctrl-C reaches the dev stack only, which stops children in order.
                start_new_session=True,
            )
        self.children.append(Child(name, process, log_path, argv))

    def check_alive(self, name: str) -> None:
        """Raise DevStackError if the child called ``name`` has exited."""
        for child in self.children:
            if child.name == name and child.process.returncode is not None:
                raise DevStackError(
                    f"{name} exited with code {child.process.returncode}; see {child.log_path}"
                )

    async def wait_for_port(self, name: str, port: int) -> None:
        """Wait until the child called ``name`` listens on ``port``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_SECONDS
        while loop.time() < deadline:
            self.check_alive(name)
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise DevStackError(f"{name} did not listen on {HOST}:{port} in time")

    async def wait_for_health(self, name: str, target: str, tls: TlsFiles) -> None:
        """Wait until the child called ``name`` reports SERVING at ``target`` (grpc.health.v1)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_SECONDS
        async with grpc.aio.secure_channel(target, channel_credentials(tls)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while loop.time() < deadline:
                self.check_alive(name)
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)
        raise DevStackError(f"{name} did not report SERVING at {target} in time")

    def kill(self, name: str) -> bool:
        """SIGKILL the child called ``name`` (a replica lost); whether it was running."""
        for child in self.children:
            if child.name == name and child.process.returncode is None:
                child.process.kill()
                return True
        return False

    async def restart(self, name: str) -> None:
        """Start the child called ``name`` again as it was started, once it has exited."""
        [child] = [c for c in self.children if c.name == name]
        await child.process.wait()
        self.children.remove(child)
        await self.spawn_binary(name, *child.argv)

    async def stop(self) -> None:
        """Stop every child in reverse order of start: SIGTERM, then SIGKILL after a grace."""
        for child in reversed(self.children):
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), STOP_GRACE_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
        self.children.clear()
