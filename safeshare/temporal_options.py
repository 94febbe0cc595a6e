"""The command-line options that say how to reach Temporal: one set, shared by every
``safeshare`` command that talks to Temporal (the dev stack's processes, the hub, the gateway,
the adapters, the archiver, operators' ``cases``/``deploy``/``review`` and auditors' ``audit``).

A command takes them all as one parameter, ``temporal: TemporalFlags``, under
:func:`temporal_options`; each flag is an override of the Temporal client configuration
(:func:`safeshare.temporal.load_temporal_settings`): unset, the Temporal profile decides
(``TEMPORAL_CONFIG_FILE``/``TEMPORAL_PROFILE``, the ``TEMPORAL_*`` variables, or the profile the
dev stack writes, ``.safeshare/dev/temporal.toml``), and a command that finds none of them says
which server it used.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from safeshare.codec import KeyRing
from safeshare.temporal import TemporalSettings, load_temporal_settings

_PROFILE = "default: the Temporal profile"

TemporalAddress = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_ADDRESS",
        help=f"Temporal frontend host:port ({_PROFILE}).",
        show_default=False,
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_NAMESPACE",
        help=f"Temporal namespace ({_PROFILE}, else default).",
        show_default=False,
    ),
]
TemporalProfile = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_PROFILE",
        help="The Temporal profile to read from the client configuration file "
        "(default: TEMPORAL_PROFILE, else 'default').",
        show_default=False,
    ),
]
TemporalApiKey = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_API_KEY",
        help=f"API key for Temporal (Temporal Cloud), always sent over TLS ({_PROFILE}'s).",
        show_default=False,
    ),
]
TemporalCa = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_TLS_CA",
        help=f"CA for TLS to Temporal (PEM; {_PROFILE}'s).",
        show_default=False,
    ),
]
TemporalCert = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_TLS_CERT",
        help=f"Client certificate for Temporal ({_PROFILE}'s).",
        show_default=False,
    ),
]
TemporalKey = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_TLS_KEY",
        help=f"Client key for Temporal ({_PROFILE}'s).",
        show_default=False,
    ),
]
KeysFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_KEYS_FILE",
        help="Payload key file (mode 0600, newest key first); or the keys in SAFESHARE_KEYS.",
    ),
]
"""The payload key ring's file: the same option wherever a command reads or writes payloads."""


@dataclass(frozen=True)
class TemporalFlags:
    """What a command was told about Temporal on its command line (None: not told)."""

    address: str | None = None
    namespace: str | None = None
    profile: str | None = None
    api_key: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def settings(
        self,
        *,
        keys: KeyRing | None = None,
        metrics_address: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> TemporalSettings:
        """The Temporal configuration with these flags on top.

        Raises:
            TemporalConfigError: the configuration cannot work (one readable line).
        """
        return load_temporal_settings(
            address=self.address,
            namespace=self.namespace,
            profile=self.profile,
            api_key=self.api_key,
            ca=self.ca,
            cert=self.cert,
            key=self.key,
            keys=keys,
            metrics_address=metrics_address,
            env=env,
        )


NO_FLAGS = TemporalFlags()
"""A command's ``temporal`` default (the decorator always passes the flags given)."""

# The flags as (parameter name, its option type, the TemporalFlags field it fills). The
# parameter names give the flags' names (--temporal-address, --namespace, ...).
_FLAGS: tuple[tuple[str, Any, str], ...] = (
    ("temporal_address", TemporalAddress, "address"),
    ("namespace", Namespace, "namespace"),
    ("temporal_profile", TemporalProfile, "profile"),
    ("temporal_api_key", TemporalApiKey, "api_key"),
    ("temporal_ca", TemporalCa, "ca"),
    ("temporal_cert", TemporalCert, "cert"),
    ("temporal_key", TemporalKey, "key"),
)

R = TypeVar("R")


def temporal_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a typer command the Temporal flags, handed to it as one ``temporal`` parameter.

    The command declares ``temporal: TemporalFlags``; typer sees the flags in its place.
    """
    signature = inspect.signature(command, eval_str=True)
    if "temporal" not in signature.parameters:
        raise TypeError(f"{command.__name__} takes no 'temporal' parameter")
    others = [p for name, p in signature.parameters.items() if name != "temporal"]
    flags = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind, _ in _FLAGS
    ]
    clash = {p.name for p in others} & {p.name for p in flags}
    if clash:
        raise TypeError(f"{command.__name__} already has {sorted(clash)}")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        given = {field: kwargs.pop(name, None) for name, _, field in _FLAGS}
        return command(*args, temporal=TemporalFlags(**given), **kwargs)

    parameters = [
        *(p for p in others if p.kind is not inspect.Parameter.KEYWORD_ONLY),
        *(p for p in others if p.kind is inspect.Parameter.KEYWORD_ONLY),
        *flags,
    ]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    if signature.return_annotation is not inspect.Signature.empty:
        wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper
