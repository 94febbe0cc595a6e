"""``safeshare codec-server``: /encode and /decode for operators signed in at the OIDC
issuer, so the Temporal UI and CLI can show payloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeshare.access.options import (
    DEFAULT_ACCESS_LOG,
    DEFAULT_ACCESS_LOG_KEY,
    AccessLogKey,
    AccessLogPath,
)
from safeshare.commands.options import LogFormat, LogLevel
from safeshare.commands.plumbing import open_access_log, payload_keys, run, start_logging
from safeshare.temporal_options import KeysFile


def codec_server(
    oidc_issuer: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_OIDC_ISSUER",
            help="The OpenID Connect issuer operators sign in at (its URL, as tokens name it).",
        ),
    ],
    keys_file: KeysFile = None,
    access_log: AccessLogPath = DEFAULT_ACCESS_LOG,
    access_log_key: AccessLogKey = DEFAULT_ACCESS_LOG_KEY,
    oidc_audience: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_OIDC_AUDIENCE",
            help="This codec server's client id at the issuer: tokens must name it (aud).",
        ),
    ] = "safeshare-codec",
    oidc_roles_claim: Annotated[
        str, typer.Option(envvar="SAFESHARE_OIDC_ROLES_CLAIM", help="The claim holding roles.")
    ] = "roles",
    oidc_operator_role: Annotated[
        str, typer.Option(envvar="SAFESHARE_OIDC_OPERATOR_ROLE", help="The role that may decrypt.")
    ] = "operator",
    oidc_client_secret_file: Annotated[
        Path | None,
        typer.Option(
            envvar="SAFESHARE_OIDC_CLIENT_SECRET_FILE",
            help="This server's client secret at the issuer (0600), for /login.",
        ),
    ] = None,
    public_url: Annotated[
        str,
        typer.Option(
            envvar="SAFESHARE_CODEC_PUBLIC_URL",
            help="Where browsers reach this server; turns on the /login sign-in route.",
        ),
    ] = "",
    ui_origin: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_CODEC_UI_ORIGIN", help="The Temporal UI's origin, for CORS."
        ),
    ] = "http://127.0.0.1:8233",
    trust_ui_origin: Annotated[
        bool,
        typer.Option(
            help="DEV ONLY, NEVER IN PRODUCTION: accept browser requests that claim --ui-origin "
            "without a sign-in (anyone who can reach the port can claim it)."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
    log_format: LogFormat = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve /encode and /decode for the Temporal UI and CLI (--codec-endpoint) to operators
    signed in at the OIDC issuer; every decryption and refusal goes to the access log."""
    from safeshare.codec.oidc import OidcSettings, OidcVerifier
    from safeshare.codec.server import CodecAccess
    from safeshare.services import run_codec_server

    start_logging("codec-server", log_format, log_level)
    keys = payload_keys(keys_file)
    assert keys is not None  # required=True
    settings = OidcSettings(oidc_issuer, oidc_audience, oidc_roles_claim, oidc_operator_role)
    secret = oidc_client_secret_file.read_text().strip() if oidc_client_secret_file else ""
    try:
        access = CodecAccess(
            OidcVerifier(settings), ui_origin or None, trust_ui_origin, secret, public_url
        )
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--trust-ui-origin") from None
    if trust_ui_origin:
        typer.secho(
            "codec-server: --trust-ui-origin is for a loopback dev machine ONLY: anyone who can "
            "reach this port can decrypt by claiming the UI's origin.",
            err=True,
            fg="red",
            bold=True,
        )
    run(run_codec_server(keys, access, host, port, open_access_log(access_log, access_log_key)))
