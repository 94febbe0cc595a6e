"""A real OpenID Connect provider for tests (the ``oidc-provider-mock`` package) and a helper
that mints tokens from it the way a browser's sign-in would: the authorization-code flow."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
from oidc_provider_mock import User, run_server_in_thread

AUDIENCE = "safeshare-codec"
OPERATOR = "operator-ana"
CLERK = "clerk-bo"  # signs in, but holds no operator role
EXPIRED_OPERATOR = "operator-expired"
USERS = (
    User(sub=OPERATOR, claims={"roles": ["operator"]}),
    User(sub=CLERK, claims={"roles": ["viewer"]}),
    # The provider lets a user's claims override the ones it sets: this user's ID tokens are
    # signed by the provider like any other, with an expiry in the past.
    User(sub=EXPIRED_OPERATOR, claims={"roles": ["operator"], "exp": 1_000_000_000}),
)


@dataclass(frozen=True)
class Provider:
    """A running provider: its issuer URL."""

    issuer: str

    async def token(self, subject: str, client_id: str = AUDIENCE) -> str:
        """An ID token for ``subject``, issued to ``client_id`` (its audience)."""
        redirect = "http://127.0.0.1:1/callback"
        params = {
            "client_id": client_id,
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": "openid",
            "state": "test",
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.issuer}/oauth2/authorize",
                params=params,
                data={"sub": subject},
                allow_redirects=False,
            ) as answer:
                assert answer.status == 302, await answer.text()
                location = answer.headers["Location"]
            [code] = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"]
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "client_id": client_id,
                "client_secret": "any",
            }
            async with session.post(f"{self.issuer}/oauth2/token", data=form) as answer:
                assert answer.status == 200, await answer.text()
                return str((await answer.json())["id_token"])

    def token_sync(self, subject: str, client_id: str = AUDIENCE) -> str:
        """``token`` for synchronous code."""
        return asyncio.run(self.token(subject, client_id))


@contextmanager
def oidc_provider(port: int = 0) -> Iterator[Provider]:
    """The provider on a free loopback port (or ``port``), stopped afterwards. Each start
    makes a new signing key."""
    with run_server_in_thread(port, user_claims=USERS) as server:
        yield Provider(f"http://localhost:{server.server_port}")
