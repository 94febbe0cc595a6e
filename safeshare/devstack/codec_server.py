"""The dev stack's codec server, which the Temporal Web UI decrypts payloads through, and the
local OIDC provider its operators sign in at."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from safeshare.codec import KeyRingError, ensure_key_file
from safeshare.devstack.processes import ChildProcesses, DevStackError
from safeshare.devstack.settings import HOST

DEV_OPERATORS = ("operator-ana", "operator-ben")
DEV_OIDC_CLIENT = "safeshare-codec"


@dataclass(frozen=True)
class DevCodecServer:
    """The codec server on ``port``, the sign-in on the port after it, for the UI on ``ui_port``."""

    port: int
    ui_port: int
    keys_file: Path
    """The payload key ring, made on first start."""
    secret_file: Path
    """The codec server's client secret at the local sign-in, made on first start."""
    access_log: Path
    access_log_key: Path

    @property
    def url(self) -> str:
        """The codec server (the UI's and CLI's --codec-endpoint)."""
        return f"http://{HOST}:{self.port}"

    @property
    def oidc_port(self) -> int:
        """The local sign-in's port: the one after the codec server's."""
        return self.port + 1

    @property
    def oidc_issuer(self) -> str:
        """The local sign-in for operators (an OIDC provider)."""
        return f"http://{HOST}:{self.oidc_port}"

    async def start(self, processes: ChildProcesses, existing_data: Path) -> None:
        """Make the key ring and client secret if new, start the sign-in and the codec server.

        Raises:
            DevStackError: the key ring cannot be made (``existing_data`` was encrypted with a
                lost one), or a process did not start.
        """
        try:
            ensure_key_file(self.keys_file, existing_data=(existing_data,))
        except KeyRingError as err:
            raise DevStackError(str(err)) from None
        if not self.secret_file.exists():
            descriptor = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
        # 👉 A real OIDC provider (the test one) stands in for the partnership's sign-in: one
        # predefined user per dev operator, each with the operator role.
        users = [f'{{"sub": "{operator}", "roles": ["operator"]}}' for operator in DEV_OPERATORS]
        await processes.spawn_binary(
            "oidc",
            sys.executable, "-m", "oidc_provider_mock",
            "--host", HOST, "--port", str(self.oidc_port),
            *[arg for user in users for arg in ("--user-claims", user)],
        )  # fmt: skip
        await processes.wait_for_port("oidc", self.oidc_port)
        await processes.spawn(
            "codec-server",
            "codec-server", "--port", str(self.port),
            "--keys-file", str(self.keys_file),
            "--oidc-issuer", self.oidc_issuer, "--oidc-audience", DEV_OIDC_CLIENT,
            "--oidc-client-secret-file", str(self.secret_file),
            "--public-url", self.url,
            "--access-log", str(self.access_log), "--access-log-key", str(self.access_log_key),
            "--ui-origin", f"http://{HOST}:{self.ui_port}",
            # 👉 DEV ONLY. The dev UI has no sign-in of its own and sends the codec server's
            # session cookie only once "include cross-origin credentials" is ticked in its
            # codec settings; until then, on loopback, the UI's origin stands in (recorded as an
            # unauthenticated operator). A signed-in operator's cookie always wins.
            "--trust-ui-origin",
        )  # fmt: skip
        await processes.wait_for_port("codec-server", self.port)
