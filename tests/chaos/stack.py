"""The chaos stack: every SafeShare part as a real process on loopback, which the fault
driver can SIGKILL and start again.

It is the dev stack's composition (safeshare/devstack/stack.py) without the demo, the UI or the
codec server, and with TWO adapter workers per agency, so a killed replica leaves one polling;
hubs and gateways come in as many replicas as asked (the chaos run: two of each).
Process management is synchronous (``subprocess.Popen``), so sync and async tests share it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from partnership.registry_file import DEFAULT_REGISTRY_PATH, load_registry
from safeshare.codec import KEYS_ENV, KEYS_FILE_ENV, KeyRing, ensure_key_file
from safeshare.devstack.temporal_server import temporal_cli, temporal_search_attribute_type
from safeshare.pki import DevPki
from safeshare.tls import TlsFiles
from tests.chaos.tls_front import NginxFront
from tests.safeshare.archive.postgres_server import PostgresServer
from workflows import search_attributes

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
ADAPTER_REPLICAS = 2
UNSAFE_DELIVERY_ENV = "SAFESHARE_CHAOS_UNSAFE_DELIVERY"
"""Set to 1: the sandbox agencies run with a store that ignores delivery-id idempotency
(tests/chaos/unsafe_sandbox.py), the checker's negative control. Never production code."""


class StackError(Exception):
    """A part of the chaos stack did not start."""


def free_port() -> int:
    """A free loopback port (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Part:
    """One process of the stack, and how to start it again."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """Environment of this part only (over the stack's)."""


@dataclass
class ChaosStack:
    """The processes of a chaos run, under ``root``."""

    root: Path
    unsafe_delivery: bool = False
    temporal_front: bool = False
    """Every SafeShare part reaches Temporal through an nginx mTLS front, each with its own
    client certificate (tests/chaos/tls_front.py)."""
    hub_build_id: str | None = None
    """Run the hub under Worker Versioning as this build (``safeshare hub --build-id``)."""
    temporal_args: list[str] = field(default_factory=list)
    """More ``temporal server start-dev`` arguments (dynamic config)."""
    hub_replicas: int = 1
    gateway_replicas: int = 1
    """Gateway processes, each on its own port; clients reach them all (``gateways_target``)."""
    archive: PostgresServer | None = None
    """The case archive's PostgreSQL server: an archiver runs against it (and the fault driver
    takes it down)."""
    parts: dict[str, Part] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.registry_path = self.root / "registry.toml"
        self.registry_path.write_text(chaos_registry_text())
        self.registry = load_registry(self.registry_path)
        self.agencies = sorted(self.registry.agencies)
        self.pki = DevPki(self.root / "pki")
        self.keys_file = self.root / "keys.json"
        self.keys: KeyRing = ensure_key_file(self.keys_file)
        self.temporal_port = free_port()
        self.gateway_ports = [free_port() for _ in range(self.gateway_replicas)]
        self.gateway_port = self.gateway_ports[0]
        self.agency_ports = {agency: free_port() for agency in self.agencies}
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        (self.root / "agencies").mkdir(parents=True, exist_ok=True)
        self.front: NginxFront | None = None
        self.archive_url = ""

    # -- where things are ---------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        """The Temporal frontend."""
        return f"{HOST}:{self.temporal_port}"

    @property
    def gateway_target(self) -> str:
        """The Case API at the first gateway (for plain channels to one server)."""
        return f"{HOST}:{self.gateway_port}"

    @property
    def gateways_target(self) -> str:
        """Every gateway, as one ``CaseClient`` target (round robin, health-checked)."""
        return ",".join(f"{HOST}:{port}" for port in self.gateway_ports)

    @property
    def hub_names(self) -> list[str]:
        """Every hub worker process."""
        return [name for name in self.parts if name == "hub" or name.startswith("hub-")]

    @property
    def gateway_names(self) -> list[str]:
        """Every gateway process."""
        return [name for name in self.parts if name.startswith("gateway")]

    @property
    def archive_key(self) -> Path:
        """The key that signs the archive's checkpoints (``.pub`` beside it)."""
        return self.root / "archive-log.key"

    @property
    def temporal_db(self) -> Path:
        """Temporal's SQLite file, kept across server restarts."""
        return self.root / "temporal.db"

    def agency_db(self, agency_id: str) -> Path:
        """A sandbox agency's SQLite store."""
        return self.root / "agencies" / f"{agency_id}.db"

    def agency_target(self, agency_id: str) -> str:
        """A sandbox agency's agency.v1 endpoint."""
        return f"{HOST}:{self.agency_ports[agency_id]}"

    def agency_tls(self, agency_id: str) -> TlsFiles:
        """Agency ``agency_id``'s Case API identity."""
        return self.pki.agency(agency_id)

    @property
    def adapter_names(self) -> list[str]:
        """Every adapter worker process."""
        return [name for name in self.parts if name.startswith("adapter-")]

    # -- starting and stopping ------------------------------------------------------------

    def start(self) -> None:
        """Start every part and wait until each answers.

        Raises:
            StackError: a part exited or did not answer in time.
        """
        self.pki.gateway()
        for agency in self.agencies:
            self.pki.agency(agency)
            self.pki.adapter(agency)
        self._add_temporal()
        self.start_part("temporal")
        self._wait_for_port("temporal", self.temporal_port)
        self._register_search_attributes()
        if self.temporal_front:
            self.front = NginxFront(self.root / "front", self.temporal_address)
            self.front.start()
        sandbox = (
            ["-m", "tests.chaos.unsafe_sandbox"] if self.unsafe_delivery else ["-m", "safeshare"]
        )
        for agency in self.agencies:
            self._add(
                f"sandbox-{agency}",
                [sys.executable, *sandbox, "sandbox-agency", "--agency", agency,
                 "--port", str(self.agency_ports[agency]), "--db", str(self.agency_db(agency)),
                 *_tls_args(self.pki.agency(agency))],
            )  # fmt: skip
            for replica in range(1, ADAPTER_REPLICAS + 1):
                self._add(
                    f"adapter-{agency}-{replica}",
                    [sys.executable, "-m", "safeshare", "adapter", "--agency", agency,
                     "--target", self.agency_target(agency),
                     "--claim-check-dir", str(self.root / "claims"),
                     "--graceful-shutdown", "1",
                     *_tls_args(self.pki.adapter(agency))],
                )  # fmt: skip
        signing_key, _ = self.pki.gateway_signing_key()
        for replica in range(1, self.hub_replicas + 1):
            self._add(_replica("hub", replica), self._hub_argv(self.hub_build_id))
        for replica, port in enumerate(self.gateway_ports, start=1):
            self._add(
                _replica("gateway", replica),
                [sys.executable, "-m", "safeshare", "gateway", "--port", str(port),
                 "--registry", str(self.registry_path), *_tls_args(self.pki.gateway()),
                 "--signing-key", str(signing_key)],
            )  # fmt: skip
        if self.archive is not None:
            self.archive_url = self.archive.new_database()
            self._add(
                "archiver",
                [sys.executable, "-m", "safeshare", "archive", "run", "--archive", self.archive_url,
                 "--signing-key", str(self.archive_key), "--interval", "2"],
            )  # fmt: skip
        for name, part in self.parts.items():
            if name != "temporal" and not name.startswith("sandbox-"):
                self._connect_to_temporal(part)
        for name in self.parts:
            if name != "temporal":
                self.start_part(name)
        for agency in self.agencies:
            self.wait_for_health(
                f"sandbox-{agency}", self.agency_target(agency), self.pki.adapter(agency)
            )
        for name, port in zip(self.gateway_names, self.gateway_ports, strict=True):
            self.wait_for_health(name, f"{HOST}:{port}", self.pki.agency(self.agencies[0]))

    def _add_temporal(self) -> None:
        self._add(
            "temporal",
            [str(temporal_cli()), "server", "start-dev",
             "--db-filename", str(self.temporal_db), "--ip", HOST,
             "--port", str(self.temporal_port), "--headless", "--namespace", "default",
             "--log-level", "error",
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
             "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
             *self.temporal_args],
        )  # fmt: skip

    def add_hub(self, name: str, build_id: str | None = None) -> None:
        """Add and start another hub worker process (a replica, or another build)."""
        self._add(name, self._hub_argv(build_id))
        self._connect_to_temporal(self.parts[name])
        self.start_part(name)

    def _hub_argv(self, build_id: str | None) -> list[str]:
        """A hub worker's command: every replica and every build reads the same registry and
        checks decisions against the same gateway key."""
        build = ["--build-id", build_id] if build_id else []
        _, gateway_key = self.pki.gateway_signing_key()
        return [sys.executable, "-m", "safeshare", "hub", "--registry", str(self.registry_path),
                *build, "--gateway-key", str(gateway_key)]  # fmt: skip

    def _connect_to_temporal(self, part: Part) -> None:
        """How ``part`` reaches Temporal: flags on the dev server; through the front, each
        part with its own certificate, by each way the configuration can say it (flags for
        adapters, a TOML profile for hubs, ``TEMPORAL_*`` variables for gateways)."""
        if self.front is None:
            part.argv += ["--temporal-address", self.temporal_address, "--namespace", "default"]
            return
        tls = self.front.client(part.name)
        if part.name.startswith("hub"):
            profile = self.root / "front" / f"{part.name}.toml"
            profile.write_text(
                f'[profile.{part.name}]\naddress = "{self.front.address}"\n'
                f'namespace = "default"\n[profile.{part.name}.tls]\n'
                f'server_ca_cert_path = "{tls.ca}"\nclient_cert_path = "{tls.cert}"\n'
                f'client_key_path = "{tls.key}"\n'
            )
            part.env = {"TEMPORAL_CONFIG_FILE": str(profile), "TEMPORAL_PROFILE": part.name}
        elif part.name.startswith("gateway"):
            part.env = {
                "TEMPORAL_ADDRESS": self.front.address,
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tls.ca),
                "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tls.cert),
                "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tls.key),
            }
        else:
            part.argv += [
                "--temporal-address", self.front.address, "--temporal-ca", str(tls.ca),
                "--temporal-cert", str(tls.cert), "--temporal-key", str(tls.key),
            ]  # fmt: skip

    def _add(self, name: str, argv: list[str]) -> None:
        self.parts[name] = Part(name, argv)

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "SAFESHARE_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        for name in [n for n in env if n.startswith(("TEMPORAL_", "SAFESHARE_TEMPORAL_"))]:
            del env[name]  # each part says how it reaches Temporal (_connect_to_temporal)
        env.pop(KEYS_ENV, None)
        env.pop("SAFESHARE_PLAINTEXT_PAYLOADS", None)
        env[KEYS_FILE_ENV] = str(self.keys_file)
        env["SAFESHARE_LOG_LEVEL"] = "WARNING"
        return env

    def start_part(self, name: str) -> None:
        """Start (or start again) the part called ``name``."""
        part = self.parts[name]
        if part.process is not None and part.process.poll() is None:
            return
        with (self.root / "logs" / f"{name}.log").open("ab") as log:
            part.process = subprocess.Popen(
                part.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**self._env(), **part.env},
                cwd=Path(__file__).resolve().parents[2],
                start_new_session=True,
            )
        part.starts += 1

    def kill(self, name: str) -> bool:
        """SIGKILL the part called ``name``; whether it was running."""
        part = self.parts[name]
        if part.process is None or part.process.poll() is not None:
            return False
        part.process.send_signal(signal.SIGKILL)
        part.process.wait()
        return True

    def is_running(self, name: str) -> bool:
        """Whether the part called ``name`` is running."""
        process = self.parts[name].process
        return process is not None and process.poll() is None

    def restart_temporal(self) -> None:
        """Start the Temporal dev server again on the same SQLite file, and wait for it."""
        self.start_part("temporal")
        self._wait_for_port("temporal", self.temporal_port)

    def stop(self) -> None:
        """Stop every part: SIGTERM, then SIGKILL after a short grace."""
        for part in reversed(list(self.parts.values())):
            if part.process is not None and part.process.poll() is None:
                part.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for part in self.parts.values():
            if part.process is None:
                continue
            try:
                part.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                part.process.kill()
                part.process.wait()
        if self.front is not None:
            self.front.stop()

    # -- waiting --------------------------------------------------------------------------

    def _check_alive(self, name: str) -> None:
        process = self.parts[name].process
        if process is not None and process.poll() is not None:
            raise StackError(f"{name} exited with code {process.returncode}; see its log")

    def _wait_for_port(self, name: str, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._check_alive(name)
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                return
            time.sleep(0.1)
        raise StackError(f"{name} did not listen on port {port} in time")

    def wait_for_health(self, name: str, target: str, tls: TlsFiles) -> None:
        """Wait until the gRPC server ``name`` at ``target`` reports SERVING.

        Raises:
            StackError: it exited or did not answer in time.
        """
        ca, cert, key = tls.read()
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with grpc.secure_channel(target, credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_alive(name)
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                time.sleep(0.2)
        raise StackError(f"{name} did not report SERVING at {target} in time")

    def _register_search_attributes(self) -> None:
        # 👉 The dev server keeps them in its SQLite file, so once per fresh file is enough.
        for key in search_attributes.ALL:
            argv = [
                str(temporal_cli()), "operator", "search-attribute", "create",
                "--name", key.name, "--type", temporal_search_attribute_type(key),
                "--address", self.temporal_address, "--namespace", "default",
            ]  # fmt: skip
            for _ in range(50):
                done = subprocess.run(argv, capture_output=True, check=False)
                if done.returncode == 0:
                    break
                time.sleep(0.2)
            else:
                raise StackError(f"registering search attribute {key.name} failed")


def _replica(part: str, replica: int) -> str:
    """The name of a replica: ``hub``, ``hub-2``, ``hub-3``..."""
    return part if replica == 1 else f"{part}-{replica}"


def _tls_args(tls: TlsFiles) -> list[str]:
    return ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]


# RED deadlines of seconds, so RED cases left waiting see their whole escalation ladder fire
# within a run; AMBER and GREEN keep the partnership's own (hours: they never pass in a run).
_CHAOS_MINUTES = {
    "RED": (0.1, False),
    "AMBER": (None, True),
    "GREEN": (None, True),
}


def chaos_registry_text() -> str:
    """The committed registry with RED timescales in seconds (a test registry only)."""
    from partnership.registry import DEFAULT_TIMESCALES

    lines = [DEFAULT_REGISTRY_PATH.read_text(), ""]
    for (urgency, step), timescale in sorted(DEFAULT_TIMESCALES.items()):
        minutes, working = _CHAOS_MINUTES[urgency]
        lines += [
            f"[timescales.{urgency}.{step}]",
            f"minutes = {minutes if minutes is not None else timescale.minutes}",
            f"working_hours = {'true' if working else 'false'}",
            "",
        ]
    return "\n".join(lines)
