"""The dev stack's processes: every part of SafeShare, started on loopback in the order each
needs the ones before it, and stopped in reverse."""

from __future__ import annotations

import socket
from pathlib import Path

from partnership.registry_file import load_registry
from safeshare.audit.signing import ensure_signing_key
from safeshare.devstack.codec_server import DevCodecServer
from safeshare.devstack.processes import ChildProcesses
from safeshare.devstack.prometheus import spawn_prometheus
from safeshare.devstack.settings import HOST, DevPorts, Replicas, replica_name
from safeshare.devstack.temporal_server import NAMESPACE, RETENTION_DAYS, TemporalDevServer
from safeshare.files import tighten
from safeshare.pki import DevPki
from safeshare.tls import TlsFiles

ARCHIVE_INTERVAL_SECONDS = 15


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
        self.access_log = data_dir / "access.db"
        self.access_log_key = data_dir / "dev" / "access-signing.key"
        self.registry_path = registry_path
        self.registry = load_registry(registry_path)
        self.pki = DevPki(data_dir / "dev" / "pki")
        self.processes = ChildProcesses(
            data_dir / "logs", self.keys_file if encryption else None, otlp_endpoint
        )
        self.codec = DevCodecServer(
            ports.codec,
            ports.ui,
            self.keys_file,
            data_dir / "dev" / "oidc-client-secret",
            self.access_log,
            self.access_log_key,
        )
        self.temporal = TemporalDevServer(
            self.processes, ports, data_dir / "temporal.db", self.codec.url if encryption else None
        )
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
            f'[profile.default]\naddress = "{self.temporal.address}"\nnamespace = "{NAMESPACE}"\n'
        )
        ensure_signing_key(self.data_dir / "dev" / "audit-signing.key")  # audit exports
        if self.encryption:
            await self.codec.start(self.processes, existing_data=self.data_dir / "temporal.db")
        await self.temporal.start()
        spawn = self.processes.spawn
        for agency_id, port in self.agency_ports.items():
            tls = self.pki.agency(agency_id)
            await spawn(
                f"sandbox-{agency_id}",
                "sandbox-agency", "--agency", agency_id, "--port", str(port),
                "--db", str(self.data_dir / "agencies" / f"{agency_id}.db"),
                *_tls_args(tls),
                *self._metrics_args(f"sandbox-{agency_id}", 30 + port - self.ports.first_agency),
            )  # fmt: skip
        for agency_id, port in self.agency_ports.items():
            await self.processes.wait_for_health(
                f"sandbox-{agency_id}", f"{HOST}:{port}", self.pki.adapter(agency_id)
            )
            # Metrics from the first replica of each part only: one port each.
            for replica in range(1, self.replicas.adapter + 1):
                name = replica_name(f"adapter-{agency_id}", replica)
                metrics_offset = 10 + port - self.ports.first_agency
                await spawn(
                    name,
                    "adapter", "--agency", agency_id, "--target", f"{HOST}:{port}",
                    "--claim-check-dir", str(self.data_dir / "claims"),
                    *_tls_args(self.pki.adapter(agency_id)), *self._temporal_args(),
                    *(self._metrics_args(name, metrics_offset) if replica == 1 else []),
                )  # fmt: skip
        signing_key, gateway_key = self.pki.gateway_signing_key()
        await spawn(
            "archiver",
            "archive", "run", "--archive", self.archive_url,
            "--signing-key", str(self.archive_key), "--registry", str(self.registry_path),
            "--retention-days", str(RETENTION_DAYS), "--interval", str(ARCHIVE_INTERVAL_SECONDS),
            *self._temporal_args(), *self._metrics_args("archiver", 2),
        )  # fmt: skip
        build = self.replicas.hub_build_id
        for replica in range(1, self.replicas.hub + 1):
            await spawn(
                replica_name("hub", replica),
                "hub", "--registry", str(self.registry_path), *self._temporal_args(),
                "--access-log", str(self.access_log), "--gateway-key", str(gateway_key),
                "--archive", self.archive_url,
                *(["--build-id", build] if build else []),
                *(self._metrics_args("hub", 0) if replica == 1 else []),
            )  # fmt: skip
        for replica, address in enumerate(self.gateway_addresses, start=1):
            await spawn(
                replica_name("gateway", replica),
                "gateway", "--port", address.rsplit(":", 1)[1],
                "--registry", str(self.registry_path), "--archive", self.archive_url,
                "--access-log", str(self.access_log), "--access-log-key", str(self.access_log_key),
                "--signing-key", str(signing_key),
                *_tls_args(self.pki.gateway()), *self._temporal_args(),
                *(self._metrics_args("gateway", 1) if replica == 1 else []),
            )  # fmt: skip
        await self.wait_for_gateways()
        if build:
            await self.temporal.make_current(build)

    def _issue_certificates(self) -> None:
        self.pki.gateway()
        for agency_id in self.agency_ports:
            self.pki.agency(agency_id)
            self.pki.adapter(agency_id)

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
        return ["--temporal-address", self.temporal.address, "--namespace", NAMESPACE]

    async def start_prometheus(self) -> None:
        """Start Prometheus with the shipped alert rules, scraping every metrics endpoint.

        Raises:
            DevStackError: Prometheus is not installed, or did not start.
        """
        self.prometheus_url = await spawn_prometheus(
            self.processes, self.data_dir / "prometheus", self.ports.prometheus,
            self.metrics_endpoints,
        )  # fmt: skip

    async def add_hub(self, name: str) -> None:
        """Start one more hub replica, as the first was started (without its metrics port)."""
        [first] = [c for c in self.processes.children if c.name == "hub"]
        argv = list(first.argv)
        if "--metrics-port" in argv:
            at = argv.index("--metrics-port")
            del argv[at : at + 2]
        await self.processes.spawn_binary(name, *argv)

    async def wait_for_gateways(self) -> None:
        """Wait until every gateway replica reports SERVING."""
        any_agency = next(iter(self.agency_ports))
        for replica, address in enumerate(self.gateway_addresses, start=1):
            await self.processes.wait_for_health(
                replica_name("gateway", replica), address, self.pki.agency(any_agency)
            )

    async def stop(self) -> None:
        """Stop every process in reverse order of start (``ChildProcesses.stop``)."""
        await self.processes.stop()

    def demo_tls(self) -> dict[str, TlsFiles]:
        """Each agency's Case API client certificate, as its own system would hold it."""
        return {agency_id: self.pki.agency(agency_id) for agency_id in self.agency_ports}


def _tls_args(tls: TlsFiles) -> list[str]:
    return ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
