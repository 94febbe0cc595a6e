"""The codec server: the Temporal UI's and CLI's remote codec protocol over HTTP.

``POST /encode`` and ``POST /decode`` take and return ``{"payloads": [...]}`` in protobuf JSON
(``temporal.api.common.v1.Payloads``). The UI calls ``/decode?preserveStorageRefs=true``, so
routes match the path only.

Who may call: an operator, known by an OpenID Connect token from the partnership's issuer
(``safeshare.codec.oidc``: signature from the issuer's keys, issuer, audience, expiry, and the
operator role). The token comes as ``Authorization: Bearer <token>`` (the CLI's
``--codec-auth``, a UI with its own sign-in passing its access token), or from the session
cookie that ``/login`` sets: ``/login`` runs the OIDC authorization-code login at the issuer
and ``/callback`` keeps the ID token it returns in an HttpOnly cookie, which the Temporal UI
sends when its codec setting "include cross-origin credentials" is on. No token, or one that
fails, gets 401; a valid token without the operator role gets 403.

Every decryption is an access event (``safeshare.access``): one per case decrypted per request
(payloads carry their case ref in authenticated metadata, ``safeshare.codec.aes``), naming the
operator; every refused request is one too, per case the payloads were labelled with.

``trust_ui_origin`` (DEV ONLY, off unless asked for): a browser request whose ``Origin`` is the
UI's decrypts without a token, recorded as an unauthenticated operator. ``Origin`` is not a
secret: any process that can reach the port can claim it.

CORS answers only the configured UI origin.
"""

from __future__ import annotations

import datetime as dt
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from safeshare.access.events import AccessEvent, Action, Channel, Outcome, Purpose
from safeshare.codec.aes import ENCODING, EncryptionCodec, case_ref_of
from safeshare.codec.keys import KeyRingError
from safeshare.codec.oidc import IssuerUnavailable, OidcVerifier, Operator, Refusal, TokenRefused

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = "content-type,x-namespace,authorization,x-safeshare-purpose"
SESSION_COOKIE = "safeshare_codec_session"
STATE_COOKIE = "safeshare_codec_login"
PURPOSE_HEADER = "X-SafeShare-Purpose"
TRUSTED_ORIGIN_USER = "unauthenticated-ui-origin"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Recorder = Callable[[Sequence[AccessEvent]], object]


@dataclass(frozen=True)
class CodecAccess:
    """Who may use the codec server."""

    verifier: OidcVerifier
    """Validates operators' tokens from the partnership's issuer."""
    ui_origin: str | None = None
    """The Temporal UI's origin (scheme://host:port), the only one CORS answers."""
    trust_ui_origin: bool = False
    """DEV ONLY: accept requests from ``ui_origin`` without a token."""
    client_secret: str = ""
    """This server's client secret at the issuer, for ``/login``'s code exchange."""
    public_url: str = ""
    """Where browsers reach this server (for ``/login``'s redirect URI); "" turns it off."""

    def __post_init__(self) -> None:
        if self.trust_ui_origin and not self.ui_origin:
            raise ValueError("trust_ui_origin needs ui_origin")


def create_codec_app(
    codec: EncryptionCodec, access: CodecAccess, record: Recorder | None = None
) -> web.Application:
    """The codec server as an aiohttp application; ``record`` receives its access events."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_cors(access)])

    def recorded(events: Sequence[AccessEvent]) -> None:
        if record is not None and events:
            record(events)

    async def encode(request: web.Request) -> web.Response:
        payloads = await _payloads(request)
        await _operator(request, access, payloads, recorded, "encode")
        return await _convert(codec.encode, payloads, "encode")

    async def decode(request: web.Request) -> web.Response:
        payloads = await _payloads(request)
        operator = await _operator(request, access, payloads, recorded, "decode")
        response = await _convert(codec.decode, payloads, "decode")
        # Only what decrypted counts: a payload that failed raised above, before this.
        cases = sorted({ref for p in payloads if _encrypted(p) and (ref := case_ref_of(p))})
        now = dt.datetime.now(dt.UTC)
        purpose = _purpose(request)
        recorded([_event(now, ref, Outcome.ALLOWED, operator, purpose) for ref in cases])
        return response

    app.router.add_post("/encode", encode)
    app.router.add_post("/decode", decode)
    if access.public_url:
        login = _SignIn(access)
        app.router.add_get("/login", login.start)
        app.router.add_get("/callback", login.finish)
    return app


async def start_codec_server(
    codec: EncryptionCodec,
    access: CodecAccess,
    host: str = "127.0.0.1",
    port: int = 0,
    record: Recorder | None = None,
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the port."""
    if access.trust_ui_origin:
        log.warning(
            "codec_trusts_ui_origin",
            warning="DEV ONLY: requests claiming the UI's origin decrypt without a sign-in",
            ui_origin=access.ui_origin,
        )
    runner = web.AppRunner(create_codec_app(codec, access, record), access_log=None)
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


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        return presented.strip()
    return request.cookies.get(SESSION_COOKIE, "")


async def _operator(
    request: web.Request,
    access: CodecAccess,
    payloads: list[Payload],
    recorded: Callable[[Sequence[AccessEvent]], None],
    operation: str,
) -> Operator:
    """The operator making this request, or a 401/403 recorded against each labelled case."""
    namespace = request.headers.get("X-Namespace", "")
    token = _token(request)
    if not token and access.trust_ui_origin and request.headers.get("Origin") == access.ui_origin:
        return Operator(TRUSTED_ORIGIN_USER, frozenset())
    try:
        return await access.verifier.operator(token)
    except TokenRefused as refused:
        reason, subject = refused.reason, refused.subject
    except IssuerUnavailable as err:
        log.warning("codec_issuer_unavailable", rpc=operation, error=str(err))
        raise web.HTTPServiceUnavailable(
            text="codec server: the sign-in issuer is unreachable\n"
        ) from None
    log.warning(
        "codec_refused", rpc=operation, status=reason.status, reason=reason.value,
        namespace=namespace,
    )  # fmt: skip
    if operation == "decode":
        cases = sorted({case_ref_of(p) for p in payloads if _encrypted(p)}) or [""]
        now = dt.datetime.now(dt.UTC)
        who = Operator(subject, frozenset())
        purpose = _purpose(request)
        recorded([_event(now, ref, Outcome.REFUSED, who, purpose, reason) for ref in cases])
    if reason is Refusal.NOT_OPERATOR:
        raise web.HTTPForbidden(text="codec server: only an operator may decrypt\n")
    raise web.HTTPUnauthorized(
        text=f"codec server: an operator's sign-in is required ({reason.value})\n"
    )


def _event(
    now: dt.datetime,
    case_ref: str,
    outcome: Outcome,
    operator: Operator,
    purpose: Purpose,
    reason: Refusal | None = None,
) -> AccessEvent:
    return AccessEvent(
        time=now,
        case_ref=case_ref,
        channel=Channel.CODEC_SERVER,
        action=Action.DECRYPT,
        outcome=outcome,
        user_id=operator.subject,
        purpose=purpose,
        reason=reason.value if reason else "",
    )


def _purpose(request: web.Request) -> Purpose:
    """The purpose the caller gave (header, or the UI's sign-in choice); operator support by
    default: that is what the UI is for."""
    given = request.headers.get(PURPOSE_HEADER, "")
    try:
        return Purpose.parse(given) if given else Purpose.OPERATOR_SUPPORT
    except ValueError:
        return Purpose.UNSPECIFIED


def _encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


async def _payloads(request: web.Request) -> list[Payload]:
    try:
        return list(json_format.Parse(await request.text(), Payloads()).payloads)
    except (json_format.ParseError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='body must be {"payloads": [...]} in proto JSON\n') from None


async def _convert(
    apply: Callable[[list[Payload]], Awaitable[list[Payload]]],
    payloads: list[Payload],
    operation: str,
) -> web.Response:
    try:
        converted = await apply(payloads)
    except KeyRingError as err:
        # The message names key ids only, never payload content.
        log.warning("codec_failed", rpc=operation, status=400, error_type=type(err).__name__)
        raise web.HTTPBadRequest(text=f"{err}\n") from None
    log.info("codec_served", rpc=operation, count=len(converted))
    body = json_format.MessageToJson(Payloads(payloads=converted))
    return web.Response(text=body, content_type="application/json")


class _SignIn:
    """The OIDC authorization-code login that sets the session cookie (for the Temporal UI)."""

    def __init__(self, access: CodecAccess) -> None:
        self._access = access
        self._redirect_uri = access.public_url.rstrip("/") + "/callback"

    async def start(self, request: web.Request) -> web.Response:
        discovery = await self._discovery()
        state = secrets.token_urlsafe(24)
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self._access.verifier.settings.audience,
                "redirect_uri": self._redirect_uri,
                "scope": "openid",
                "state": state,
            }
        )
        response = web.HTTPFound(f"{discovery['authorization_endpoint']}?{query}")
        response.set_cookie(STATE_COOKIE, state, httponly=True, samesite="Lax", max_age=600)
        raise response

    async def finish(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "")
        expected = request.cookies.get(STATE_COOKIE, "")
        if not state or not secrets.compare_digest(state, expected):
            raise web.HTTPBadRequest(text="sign-in: the login state does not match; start again\n")
        code = request.query.get("code", "")
        if not code:
            raise web.HTTPUnauthorized(text="sign-in: the issuer did not sign you in\n")
        discovery = await self._discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._redirect_uri,
            "client_id": self._access.verifier.settings.audience,
            "client_secret": self._access.client_secret,
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.post(str(discovery["token_endpoint"]), data=form) as answer,
            ):
                tokens = await answer.json(content_type=None) if answer.status == 200 else {}
        except (aiohttp.ClientError, TimeoutError, ValueError):
            tokens = {}
        id_token = str(tokens.get("id_token", "")) if isinstance(tokens, dict) else ""
        try:
            operator = await self._access.verifier.operator(id_token)
        except TokenRefused as refused:
            log.warning("codec_sign_in_refused", reason=refused.reason.value)
            raise web.HTTPForbidden(text=f"sign-in refused: {refused.reason.value}\n") from None
        log.info("codec_signed_in")
        target = self._access.ui_origin or "/"
        response = web.HTTPFound(target)
        response.set_cookie(SESSION_COOKIE, id_token, httponly=True, samesite="Lax", path="/")
        response.del_cookie(STATE_COOKIE)
        response.text = f"signed in as {operator.subject}\n"
        raise response

    async def _discovery(self) -> dict[str, object]:
        try:
            return dict(await self._access.verifier.discovery())
        except IssuerUnavailable:
            raise web.HTTPServiceUnavailable(text="sign-in: the issuer is unreachable\n") from None
