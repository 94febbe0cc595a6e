"""Who is asking the codec server: an operator named by an OpenID Connect token.

The codec server trusts one issuer. It finds the issuer's keys the way every OIDC client does:
``<issuer>/.well-known/openid-configuration`` names the ``jwks_uri``; the key set is cached,
and fetched again when a token names a key id the cache does not hold, or (for an issuer that
names no key ids) when its signature fails with the cached key: the issuer rotated its keys.
At most once per ``REFRESH_INTERVAL``, so a stream of forged tokens cannot make the server
hammer the issuer.

A token is accepted when its signature verifies with one of the issuer's keys (RS256/ES256
family only: never ``none`` or an HMAC the attacker could compute), its ``iss`` is the issuer,
its ``aud`` names this codec server's client id, it has not expired, and it carries ``sub``.
Roles come from one claim (``roles`` by default, a list or a space-separated string); only a
token holding the operator role may decrypt. Validation is PyJWT's; this module only finds
keys and says which refusal it was.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import jwt
import structlog

log = structlog.get_logger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
REFRESH_INTERVAL = 30.0
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
DEFAULT_ROLES_CLAIM = "roles"
OPERATOR_ROLE = "operator"


class Refusal(StrEnum):
    """Why a caller was refused; the reason code an access event records."""

    NO_TOKEN = "no_token"  # noqa: S105 (a reason code, not a secret)
    BAD_TOKEN = "bad_token"  # noqa: S105
    EXPIRED = "expired"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    UNKNOWN_KEY = "unknown_key"
    NOT_OPERATOR = "not_operator"

    @property
    def status(self) -> int:
        """401 for a caller we cannot authenticate, 403 for one who may not decrypt."""
        return 403 if self is Refusal.NOT_OPERATOR else 401


class TokenRefused(Exception):
    """The token does not authenticate an operator who may decrypt."""

    def __init__(self, reason: Refusal, subject: str = "") -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.subject = subject
        """The token's ``sub`` when its signature verified (a real user without the role)."""


class IssuerUnavailable(Exception):
    """The issuer's discovery document or key set could not be fetched."""


@dataclass(frozen=True)
class Operator:
    """An authenticated caller of the codec server."""

    subject: str
    """The issuer's stable id of the person (``sub``)."""
    roles: frozenset[str]


@dataclass(frozen=True)
class OidcSettings:
    """The issuer the codec server trusts and what it demands of a token."""

    issuer: str
    audience: str
    """This codec server's client id at the issuer: a token minted for another app is refused."""
    roles_claim: str = DEFAULT_ROLES_CLAIM
    operator_role: str = OPERATOR_ROLE
    refresh_interval: float = REFRESH_INTERVAL
    """Seconds between two fetches of the key set at least."""


class OidcVerifier:
    """Validates bearer tokens from one OIDC issuer."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_uri: str | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def operator(self, token: str) -> Operator:
        """The operator this token authenticates, if they hold the operator role.

        Raises:
            TokenRefused: the token is missing, invalid, or lacks the operator role.
            IssuerUnavailable: the issuer's keys could not be fetched.
        """
        if not token:
            raise TokenRefused(Refusal.NO_TOKEN)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused(Refusal.BAD_TOKEN) from None
        kid = header.get("kid")
        key = await self._key_for(kid)
        try:
            try:
                claims = self._decode(token, key)
            except jwt.InvalidSignatureError:
                # 👉 Without key ids, a rotation shows only as a signature that fails.
                if isinstance(kid, str) or not await self._refresh_if_due():
                    raise
                claims = self._decode(token, await self._key_for(kid))
        except jwt.ExpiredSignatureError:
            raise TokenRefused(Refusal.EXPIRED) from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(Refusal.WRONG_AUDIENCE) from None
        except jwt.InvalidIssuerError:
            raise TokenRefused(Refusal.WRONG_ISSUER) from None
        except jwt.PyJWTError:
            raise TokenRefused(Refusal.BAD_TOKEN) from None
        subject = str(claims["sub"])
        roles = _roles(claims, self.settings.roles_claim)
        if self.settings.operator_role not in roles:
            raise TokenRefused(Refusal.NOT_OPERATOR, subject)
        return Operator(subject, roles)

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, object]:
        return jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name] if key.algorithm_name else list(ALGORITHMS),
            audience=self.settings.audience,
            issuer=self.settings.issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )

    async def _refresh_if_due(self) -> bool:
        """Fetch the key set again unless it was fetched less than the interval ago."""
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.settings.refresh_interval:
                return False
            await self._refresh()
            return True

    async def discovery(self) -> Mapping[str, object]:
        """The issuer's discovery document (checked to name this issuer)."""
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await _get_json(url)
        if document.get("issuer") != self.settings.issuer:
            raise IssuerUnavailable("the discovery document names another issuer")
        return document

    async def _key_for(self, kid: object) -> jwt.PyJWK:
        key = self._pick(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._pick(kid)  # another request may have refreshed meanwhile
            if (
                key is None
                and time.monotonic() - self._fetched_at >= self.settings.refresh_interval
            ):
                await self._refresh()
                key = self._pick(kid)
        if key is None:
            raise TokenRefused(Refusal.UNKNOWN_KEY)
        return key

    def _pick(self, kid: object) -> jwt.PyJWK | None:
        if isinstance(kid, str):
            return self._keys.get(kid)
        # Some issuers leave kid out when they publish a single key.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        if self._jwks_uri is None:
            uri = (await self.discovery()).get("jwks_uri")
            if not isinstance(uri, str):
                raise IssuerUnavailable("the discovery document has no jwks_uri")
            self._jwks_uri = uri
        document = await _get_json(self._jwks_uri)
        keys: dict[str, jwt.PyJWK] = {}
        listed = document.get("keys")
        for index, entry in enumerate(listed if isinstance(listed, list) else []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type we do not use (or malformed): others may still serve
            if key.algorithm_name and key.algorithm_name not in ALGORITHMS:
                continue
            keys[str(entry.get("kid", f"#{index}"))] = key
        self._keys = keys
        log.info("oidc_keys_fetched", keys=len(keys))


def _roles(claims: Mapping[str, object], claim: str) -> frozenset[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(role) for role in value)
    return frozenset()


async def _get_json(url: str) -> dict[str, object]:
    try:
        async with (
            aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise IssuerUnavailable(f"{url} answered {response.status}")
            document = json.loads(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise IssuerUnavailable(f"cannot fetch {url}: {type(err).__name__}") from None
    if not isinstance(document, dict):
        raise IssuerUnavailable(f"{url} is not a JSON object")
    return document
