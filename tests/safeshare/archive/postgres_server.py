"""A real PostgreSQL server for tests, started from Debian's ``postgresql`` package.

``initdb`` refuses to run as root, so as root the server runs as ``nobody`` with a data
directory it owns; it listens on a free loopback port with its socket in the same temporary
directory, and stops when the test session ends. No containers.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_USER = "nobody"


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed here, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def postgres_bin_or_skip() -> Path:
    """The binaries; a skip locally without them, a failure under CI (.ci/run installs them)."""
    found = postgres_bin()
    if found is not None:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI must install Debian postgresql (.ci/run does)")
    pytest.skip("no PostgreSQL server: apt-get install postgresql")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: make a fresh database per test with ``new_database``."""

    bin: Path
    data: Path
    port: int
    user: str | None
    run_dir: Path | None = None
    """Where its socket and log are (the data directory's parent unless given)."""

    @property
    def _run_dir(self) -> Path:
        return self.run_dir or self.data.parent

    @property
    def admin_url(self) -> str:
        """The server's own database, as its superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"archive_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _command(self, *args: str) -> list[str]:
        """pg_ctl with ``args``, as the server's user: through ``runuser`` rather than
        subprocess's ``user=``, so the child is spawned (posix_spawn, no Python code between
        fork and exec). A forked child of a process whose gRPC threads are busy (the chaos
        run's) could crash before exec (pg_ctl "died with SIGSEGV")."""
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        runuser = shutil.which("runuser")
        if self.user is None or runuser is None:
            return command
        return [runuser, "-u", self.user, "--", *command]

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            self._command(*args), check=True, capture_output=True, timeout=60, close_fds=False,
            user=None if shutil.which("runuser") else self.user,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once (an outage): PostgreSQL's immediate shutdown.

        That is SIGQUIT to the postmaster, which is what ``pg_ctl -m immediate stop`` sends; sent
        from here, so no child process is forked from a test process full of gRPC threads (a
        pg_ctl forked there once died of SIGBUS under load).
        """
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split("\n", 1)[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # As pg_ctl does, the postmaster's pid file going is the sign that it stopped.
            if not pid_file.exists():
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop within 60 s of SIGQUIT")

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections.

        After an immediate stop the server first recovers; on a loaded machine pg_ctl can give
        up waiting although the server comes up, so its status decides, and a start that
        really failed is tried again before the error (with pg_ctl's own words) is raised.
        """
        options = f"-p {self.port} -h 127.0.0.1 -k {self._run_dir} -F"
        for attempt in range(3):
            try:
                self._ctl("-o", options, "-l", str(self._run_dir / "server.log"), "-w",
                          "-t", "120", "start")  # fmt: skip
                return
            except subprocess.CalledProcessError as failed:
                if self._running():
                    return
                if attempt == 2:
                    raise RuntimeError(
                        f"pg_ctl start failed: {failed.stdout!r} {failed.stderr!r}"
                    ) from failed
                time.sleep(2)

    def _running(self) -> bool:
        status = subprocess.run(
            self._command("status"), capture_output=True, timeout=60, check=False,
            close_fds=False, user=None if shutil.which("runuser") else self.user,
        )  # fmt: skip
        return status.returncode == 0


@contextlib.contextmanager
def running_postgres(data_size: str | None = None) -> Iterator[PostgresServer]:
    """Start a server in a temporary directory; stop it and remove the directory after.

    Args:
        data_size: if given (e.g. ``"96m"``), the data directory is a filesystem of its own of
            that size (tmpfs), for a full disk; its socket and log stay outside it. Mounting
            needs root: skipped otherwise.
    """
    bin_dir = postgres_bin_or_skip()
    root = Path(tempfile.mkdtemp(prefix="safeshare-pg-"))
    user = SERVER_USER if os.geteuid() == 0 else None
    owner = pwd.getpwnam(user) if user is not None else None
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data = root / "data"
    mounted = False
    try:
        if data_size is not None:
            data.mkdir()
            ids = f",uid={owner.pw_uid},gid={owner.pw_gid}" if owner is not None else ""
            mount = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={data_size},mode=0700{ids}", "tmpfs",
                 str(data)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if mount.returncode != 0:
                pytest.skip(f"cannot mount a small filesystem here: {mount.stderr.strip()}")
            mounted = True
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, user=user, capture_output=True, timeout=120, cwd=root,
        )  # fmt: skip
        server = PostgresServer(bin_dir, data, _free_port(), user, run_dir=root)
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(subprocess.SubprocessError):
                server.stop()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(data)], check=False)
        shutil.rmtree(root, ignore_errors=True)
