"""A real TLS front before the Temporal dev server, which has no TLS of its own: Debian's nginx
terminating mutual TLS (``ssl_verify_client on``) and passing gRPC on (``grpc_pass``), as a
cluster's frontend or load balancer does in production.

Every client certificate comes from the front's own CA (not the partnership CA the Case API
trusts), one per SafeShare process; the access log records which certificate made each call.
nginx runs in the foreground (``daemon off``, ``master_process off``) from its own temporary
configuration on a free loopback port, and is stopped with the stack.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import trustme

from safeshare.tls import TlsFiles

NGINX = "/usr/sbin/nginx"
START_TIMEOUT_SECONDS = 20.0

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format identity '$ssl_client_s_dn $request $status';
    access_log {root}/access.log identity;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {root}/server.pem;
        ssl_certificate_key {root}/server.key;
        ssl_client_certificate {root}/ca.pem;
        ssl_verify_client on;
        # Workers long-poll Temporal for about a minute; payloads may be megabytes.
        client_max_body_size 0;
        grpc_read_timeout 300s;
        grpc_send_timeout 300s;
        location / {{
            grpc_pass grpc://{upstream};
        }}
    }}
}}
"""


def nginx_or_skip() -> str:
    """nginx's path; outside CI a missing nginx skips the test, under CI it fails it."""
    if Path(NGINX).exists():
        return NGINX
    found = shutil.which("nginx")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("nginx is not installed (.ci/run installs it)")
    pytest.skip("nginx is not installed (apt-get install nginx)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NginxFront:
    """An nginx mTLS front at ``address`` for the gRPC server at ``upstream``."""

    def __init__(self, root: Path, upstream: str) -> None:
        self.root = root
        self.upstream = upstream
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._ca = trustme.CA(organization_name="Temporal front (test)")
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        self.ca_path = root / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        server = self._ca.issue_cert("127.0.0.1", "localhost", common_name="temporal-front")
        server.private_key_pem.write_to_path(str(root / "server.key"))
        (root / "server.pem").write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))

    @property
    def address(self) -> str:
        """Where clients connect."""
        return f"127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        """One line per call: the client certificate's subject, the method, the status."""
        return self.root / "access.log"

    def client(self, name: str) -> TlsFiles:
        """A client certificate (CN=``name``) the front accepts, with the front's CA."""
        folder = self.root / "clients" / name
        if not (folder / "cert.pem").exists():
            folder.mkdir(parents=True, exist_ok=True)
            leaf = self._ca.issue_cert(f"{name}.invalid", common_name=name)
            (folder / "cert.pem").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
            leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
            os.chmod(folder / "key.pem", 0o600)
        return TlsFiles(self.ca_path, folder / "cert.pem", folder / "key.pem")

    def start(self) -> None:
        """Start nginx in the foreground and wait until it listens."""
        nginx = nginx_or_skip()
        config = self.root / "nginx.conf"
        config.write_text(CONFIG.format(root=self.root, port=self.port, upstream=self.upstream))
        log = (self.root / "nginx.out").open("ab")
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.root), "-c", str(config), "-e", str(self.root / "error.log")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited ({self.process.returncode}): "
                    + (self.root / "error.log").read_text(errors="replace")[-500:]
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError("nginx did not listen in time")

    def stop(self) -> None:
        """Stop nginx (SIGTERM: fast shutdown), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def identities(self) -> set[str]:
        """The client certificate subjects seen so far (``CN=...``)."""
        if not self.access_log.exists():
            return set()
        return {
            line.split(" ", 1)[0]
            for line in self.access_log.read_text().splitlines()
            if line.startswith("CN=")
        }
