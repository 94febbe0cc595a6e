"""The codec server: the Temporal UI's and CLI's remote codec protocol over HTTP.

``POST /encode`` and ``POST /decode`` take and return ``{"payloads": [...]}`` in protobuf JSON
(``temporal.api.common.v1.Payloads``). The UI calls ``/decode?preserveStorageRefs=true``, so
routes match the path only. Who may call:

- anyone presenting ``Authorization: Bearer <token>`` (the CLI's ``--codec-auth``, scripts);
- with ``trust_ui_origin`` (dev stack only), a browser request whose ``Origin`` is the UI's.
  The Temporal UI sends an ``Authorization`` header only when it has its own sign-in (OIDC)
  and "pass access token" is on, so without it the UI cannot present a token. ``Origin`` is
  not a secret: any process that can reach the port can claim it. It stands in for a sign-in
  only on a loopback dev machine; in production the codec server sits behind the same sign-in
  as the UI (or mTLS) and this option stays off.

CORS answers only the configured UI origin.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from safeshare.codec.aes import EncryptionCodec
from safeshare.codec.keys import KeyRingError

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = "content-type,x-namespace,authorization"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CodecAccess:
    """Who may use the codec server."""

    token: str
    """The bearer token; required unless the request comes from the trusted UI origin."""
    ui_origin: str | None = None
    """The Temporal UI's origin (scheme://host:port), the only one CORS answers."""
    trust_ui_origin: bool = False
    """Dev stack only: accept requests from ``ui_origin`` without a token."""

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ValueError("the codec token must be at least 16 characters")
        if self.trust_ui_origin and not self.ui_origin:
            raise ValueError("trust_ui_origin needs ui_origin")


def create_codec_app(codec: EncryptionCodec, access: CodecAccess) -> web.Application:
    """The codec server as an aiohttp application."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_cors(access)])

    async def encode(request: web.Request) -> web.Response:
        return await _convert(request, access, codec.encode, "encode")

    async def decode(request: web.Request) -> web.Response:
        return await _convert(request, access, codec.decode, "decode")

    app.router.add_post("/encode", encode)
    app.router.add_post("/decode", decode)
    return app


async def start_codec_server(
    codec: EncryptionCodec, access: CodecAccess, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the port."""
    runner = web.AppRunner(create_codec_app(codec, access), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only here
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, int(bound)


def _cors(access: CodecAccess) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin == access.ui_origin
        if request.method == "OPTIONS":
            # A preflight from any other origin gets no CORS headers: the browser refuses.
            response: web.StreamResponse = web.Response(status=204 if allowed else 403)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as err:
                if allowed:  # so the UI can read the refusal, not just a CORS error
                    _allow(err.headers, origin or "")
                raise
        if allowed:
            _allow(response.headers, origin or "")
        return response

    return middleware


def _allow(headers: MutableMapping[str, str], origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    headers["Access-Control-Allow-Credentials"] = "true"
    headers["Vary"] = "Origin"


def _authorised(request: web.Request, access: CodecAccess) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    expected = access.token.encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), expected):
        return True
    return access.trust_ui_origin and request.headers.get("Origin") == access.ui_origin


async def _convert(
    request: web.Request,
    access: CodecAccess,
    apply: Callable[[list[Payload]], Awaitable[list[Payload]]],
    operation: str,
) -> web.Response:
    namespace = request.headers.get("X-Namespace", "")
    if not _authorised(request, access):
        log.warning("codec_refused", rpc=operation, status=401, namespace=namespace)
        raise web.HTTPUnauthorized(text="codec server: a bearer token is required\n")
    try:
        payloads = json_format.Parse(await request.text(), Payloads())
    except (json_format.ParseError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='body must be {"payloads": [...]} in proto JSON\n') from None
    try:
        converted = await apply(list(payloads.payloads))
    except KeyRingError as err:
        # The message names key ids only, never payload content.
        log.warning("codec_failed", rpc=operation, status=400, error_type=type(err).__name__)
        raise web.HTTPBadRequest(text=f"{err}\n") from None
    log.info("codec_served", rpc=operation, count=len(converted), namespace=namespace)
    body = json_format.MessageToJson(Payloads(payloads=converted))
    return web.Response(text=body, content_type="application/json")
