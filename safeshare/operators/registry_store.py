"""Changing the partnership registry file: each change validated, versioned and logged.

Every change bumps ``registry_version`` and appends a ``[[changes]]`` entry (version, when,
who, what) to the file itself, so the file is its own change log. The new text is written
beside the file, validated with the same loader the gate uses, and only then renamed over it:
a reader (the protocol gate re-reads the file when it changes) never sees a half-written or
invalid registry, and picks the change up on its next check without a restart.

Writers take an exclusive lock (``flock`` on a lock file beside the registry) around the whole
read-change-write, so concurrent changes (two operators, a script renewing many agencies at
once) are applied one after another and none is lost. A caller that showed a person one
version may also pass ``expect_version``: the change is refused if the file moved on since
(compare-and-swap on ``registry_version``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from activities.agency import AGENCY_ID_PATTERN
from partnership.errors import RegistryError
from partnership.registry import KINDS, STEPS, URGENCIES, Registry
from partnership.registry_file import load_registry

AGENCY_FIELDS = (
    "id",
    "name",
    "kind",
    "signed_protocol_version",
    "review_date",
    "commissioned_by",
    "commissioned_until",
    "region",
    "closure_days",
    "school_terms",
    "school_day_starts",
    "access_disclosure_delay_days",
    "approvers",
)
CHANGE_FIELDS = ("registry_version", "at", "by", "change")
TOP_FIELDS = ("region", "time_zone", "records_retention_days")
TIMESCALE_FIELDS = ("minutes", "working_hours", "lead_after_period", "operator_after_period")

Data = dict[str, Any]


class RegistryChangeError(RegistryError):
    """A change that cannot be made (unknown agency, duplicate id, missing author...)."""


def read_data(path: Path) -> Data:
    """The registry file's raw tables (validated first)."""
    load_registry(path)
    return tomllib.loads(path.read_text())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the registry's write lock (a lock file beside it: the registry itself is
    replaced by rename, so a lock on it would not outlive the first writer)."""
    lock_path = path.with_name(f".{path.name}.lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def change_registry(
    path: Path,
    by: str,
    change: str,
    mutate: Callable[[Data], None],
    *,
    now: dt.datetime | None = None,
    expect_version: int | None = None,
) -> Registry:
    """Apply ``mutate`` to the registry at ``path``, record who and when, and write it safely.

    Raises:
        RegistryChangeError: no author, the registry is not at ``expect_version``, or the
            change is refused by ``mutate``.
        RegistryError: the result would not be a valid registry (the file is left unchanged).
    """
    if not by.strip():
        raise RegistryChangeError("say who makes the change (--by)")
    with _locked(path):
        data = read_data(path)
        if expect_version is not None and data["registry_version"] != expect_version:
            raise RegistryChangeError(
                f"the registry is at version {data['registry_version']}, not {expect_version}: "
                "someone changed it meanwhile; look again and retry"
            )
        mutate(data)
        data["registry_version"] = int(data["registry_version"]) + 1
        data.setdefault("changes", []).append(
            {
                "registry_version": data["registry_version"],
                "at": (now or dt.datetime.now(dt.UTC)).replace(microsecond=0),
                "by": by.strip(),
                "change": change,
            }
        )
        return _write_validated(path, _header(path) + dump_registry(data))


def _header(path: Path) -> str:
    """The file's leading comment block, kept as the operators wrote it."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines) + "\n\n" if lines else ""


def _write_validated(path: Path, text: str) -> Registry:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".toml"
    )
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        registry = load_registry(Path(temporary))
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return registry


def dump_registry(data: Data) -> str:
    """The registry's tables as TOML (its own typed schema, ``partnership.schema``)."""
    lines = [
        f"registry_version = {int(data['registry_version'])}",
        f"protocol_version = {_value(data['protocol_version'])}",
    ]
    # Every other top-level value too, known or not yet known here: a change never drops a
    # key the loader accepts.
    tables = {"registry_version", "protocol_version", "timescales", "agencies", "changes"}
    rest = [k for k in TOP_FIELDS if k in data]
    rest += sorted(set(data) - tables - set(rest))
    lines += [f"{key} = {_value(data[key])}" for key in rest]
    timescales = data.get("timescales") or {}
    for urgency in URGENCIES:
        for step in STEPS:
            table = timescales.get(urgency, {}).get(step)
            if table is None:
                continue
            lines += ["", f"[timescales.{urgency}.{step}]"]
            keys = [k for k in TIMESCALE_FIELDS if k in table]
            keys += sorted(set(table) - set(keys))  # the loader refuses any unknown key
            lines += [f"{key} = {_value(table[key])}" for key in keys]
    for agency in data.get("agencies", []):
        lines += ["", "[[agencies]]"]
        keys = [k for k in AGENCY_FIELDS if k in agency]
        keys += sorted(set(agency) - set(keys))
        lines += [f"{key} = {_value(agency[key])}" for key in keys]
    for entry in data.get("changes", []):
        lines += ["", "[[changes]]"]
        lines += [f"{key} = {_value(entry[key])}" for key in CHANGE_FIELDS if key in entry]
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _find(data: Data, agency_id: str) -> Data:
    for agency in data.get("agencies", []):
        if agency.get("id") == agency_id:
            return agency
    raise RegistryChangeError(f"agency {agency_id!r} is not in the registry")


def add_agency(
    path: Path,
    by: str,
    *,
    agency_id: str,
    name: str,
    kind: str,
    review_date: dt.date,
    signed_protocol_version: str | None = None,
    commissioned_by: str | None = None,
    expect_version: int | None = None,
) -> Registry:
    """Add a partner agency (a signatory, or a provider bound through ``commissioned_by``)."""
    if not AGENCY_ID_PATTERN.fullmatch(agency_id):
        raise RegistryChangeError(f"agency id {agency_id!r} is not a valid code")
    if kind not in KINDS:
        raise RegistryChangeError(f"kind must be one of {', '.join(KINDS)}")
    if not name.strip():
        raise RegistryChangeError("the agency needs a name")

    def mutate(data: Data) -> None:
        if any(a.get("id") == agency_id for a in data.get("agencies", [])):
            raise RegistryChangeError(f"agency {agency_id!r} is already in the registry")
        entry: Data = {
            "id": agency_id,
            "name": name.strip(),
            "kind": kind,
            "signed_protocol_version": signed_protocol_version or data["protocol_version"],
            "review_date": review_date,
        }
        if commissioned_by:
            entry["commissioned_by"] = commissioned_by
        data.setdefault("agencies", []).append(entry)

    return change_registry(
        path, by, f"add-agency {agency_id}", mutate, expect_version=expect_version
    )


def renew_signature(
    path: Path,
    by: str,
    *,
    agency_id: str,
    review_date: dt.date,
    signed_protocol_version: str | None = None,
    expect_version: int | None = None,
) -> Registry:
    """Record a renewed signature: the protocol version signed and the next review date."""

    def mutate(data: Data) -> None:
        agency = _find(data, agency_id)
        agency["signed_protocol_version"] = signed_protocol_version or data["protocol_version"]
        agency["review_date"] = review_date

    version = signed_protocol_version or "the protocol in force"
    return change_registry(
        path,
        by,
        f"renew {agency_id}: {version}, review {review_date.isoformat()}",
        mutate,
        expect_version=expect_version,
    )


def bind_provider(
    path: Path,
    by: str,
    *,
    provider_id: str,
    commissioner_id: str,
    expect_version: int | None = None,
) -> Registry:
    """Bind a contracted provider to the partner agency that commissions it."""
    if provider_id == commissioner_id:
        raise RegistryChangeError("a provider cannot commission itself")

    def mutate(data: Data) -> None:
        commissioner = _find(data, commissioner_id)
        if commissioner.get("commissioned_by"):
            raise RegistryChangeError(
                f"{commissioner_id!r} is itself a provider: bind to a signatory"
            )
        _find(data, provider_id)["commissioned_by"] = commissioner_id

    return change_registry(
        path,
        by,
        f"bind-provider {provider_id} to {commissioner_id}",
        mutate,
        expect_version=expect_version,
    )
