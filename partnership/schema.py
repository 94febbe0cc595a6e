"""The partnership registry file's typed schema, and the registry it builds.

Every key is known, every value has the type it must have (a date is a TOML date, never a
quoted string), kinds come from a closed list, and a commissioned or contracted provider names
the signatory that commissions it. ``parse_registry`` refuses tables that break any rule,
naming the agency or the key.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from activities.agency import AGENCY_ID_PATTERN
from partnership.errors import RegistryError
from partnership.registry import (
    DEFAULT_TIMESCALES,
    KINDS,
    PROVIDER_KINDS,
    REGIONS,
    STEPS,
    URGENCIES,
    Agency,
    Registry,
    Timescale,
)

# A delay is bounded: an access history that hides a read for ever is no history.
MAX_DISCLOSURE_DELAY_DAYS = 180
MAX_TIMESCALE_MINUTES = 60 * 24 * 60
"""No step may be given more than sixty days."""
MIN_TIMESCALE_MINUTES = 0.05
"""Nor less than three seconds (a test registry's shortest)."""

_TOP_KEYS = {"registry_version", "protocol_version", "region", "time_zone", "timescales",
             "agencies", "changes", "records_retention_days",
             "childrens_social_care"}  # fmt: skip
_AGENCY_KEYS = {"id", "name", "kind", "signed_protocol_version", "review_date",
                "commissioned_by", "commissioned_until", "region", "closure_days",
                "school_terms", "school_day_starts", "access_disclosure_delay_days",
                "approvers"}  # fmt: skip
_TIMESCALE_KEYS = {"minutes", "working_hours", "lead_after_period", "operator_after_period"}
_CHANGE_KEYS = {"registry_version", "at", "by", "change"}


def _typed(where: str, value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    # bool is an int in Python; a TOML datetime is a date: both must be told apart.
    wrong = not isinstance(value, kind)
    if isinstance(value, bool) and kind is not bool:
        wrong = True
    if kind is dt.date and isinstance(value, dt.datetime):
        wrong = True
    if wrong:
        raise RegistryError(f"{where}: {name} must be {_TYPE_NAMES.get(kind, 'valid')}, "
                            f"not {type(value).__name__} {value!r}")  # fmt: skip
    return value


_TYPE_NAMES: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dt.date: "a date (YYYY-MM-DD, unquoted)",
    dt.time: "a time of day (HH:MM:SS, unquoted)",
    dt.datetime: "a date and time (unquoted)",
    list: "a list",
    dict: "a table",
    (int, float): "a number",
}


def _unknown(where: str, table: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise RegistryError(f"{where}: unknown key {extra[0]!r}")


def _required(where: str, table: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in table:
        raise RegistryError(f"{where}: {key} is required")
    return _typed(where, table[key], kind, key)


def _optional(where: str, table: Mapping[str, Any], key: str, kind: type) -> Any:
    return None if key not in table else _typed(where, table[key], kind, key)


def _agency(entry: Any, index: int, default_region: str) -> Agency:
    where = f"agencies[{index}]"
    _typed(where, entry, dict, "an agency entry")
    agency_id = _required(where, entry, "id", str)
    if not AGENCY_ID_PATTERN.fullmatch(agency_id):
        raise RegistryError(f"{where}: agency id {agency_id!r} is not a valid code")
    where = f"agency {agency_id!r}"
    _unknown(where, entry, _AGENCY_KEYS)
    name = _required(where, entry, "name", str)
    if not name.strip():
        raise RegistryError(f"{where}: name is empty")
    kind = _required(where, entry, "kind", str)
    if kind not in KINDS:
        raise RegistryError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    region = _optional(where, entry, "region", str)
    if region is not None and region not in REGIONS:
        raise RegistryError(f"{where}: region {region!r} is not one of {', '.join(REGIONS)}")
    closures = _optional(where, entry, "closure_days", list) or []
    for day in closures:
        _typed(where, day, dt.date, "each closure day")
    terms = []
    for term in _optional(where, entry, "school_terms", list) or []:
        _typed(where, term, dict, "each school term")
        _unknown(f"{where} school term", term, {"first", "last"})
        first = _required(f"{where} school term", term, "first", dt.date)
        last = _required(f"{where} school term", term, "last", dt.date)
        if last < first:
            raise RegistryError(f"{where}: a school term ends before it starts ({first})")
        terms.append((first, last))
    starts = _optional(where, entry, "school_day_starts", dt.time)
    if terms and starts is None:
        raise RegistryError(f"{where}: school_terms need school_day_starts")
    approvers = _optional(where, entry, "approvers", list) or []
    for approver in approvers:
        _typed(where, approver, str, "each approver (a user id)")
        if not approver.strip():
            raise RegistryError(f"{where}: an approver's user id is empty")
    delay = _optional(where, entry, "access_disclosure_delay_days", int) or 0
    if not 0 <= delay <= MAX_DISCLOSURE_DELAY_DAYS:
        raise RegistryError(
            f"{where}: access_disclosure_delay_days must be 0 to {MAX_DISCLOSURE_DELAY_DAYS}"
        )
    return Agency(
        id=agency_id,
        name=name,
        kind=kind,
        signed_protocol_version=_required(where, entry, "signed_protocol_version", str),
        review_date=_required(where, entry, "review_date", dt.date),
        commissioned_by=_optional(where, entry, "commissioned_by", str),
        commissioned_until=_optional(where, entry, "commissioned_until", dt.date),
        region=region,
        closure_days=tuple(sorted(closures)),
        school_terms=tuple(sorted(terms)),
        school_day_starts=starts,
        access_disclosure_delay_days=delay,
        approvers=tuple(approvers),
    )


def _check_bindings(agencies: Mapping[str, Agency]) -> None:
    for agency in agencies.values():
        try:
            _check_binding(agency, agencies)
        except RegistryError as err:
            raise RegistryError(str(err), agency_id=agency.id, code="binding") from None


def _check_binding(agency: Agency, agencies: Mapping[str, Agency]) -> None:
    where = f"agency {agency.id!r}"
    if agency.kind in PROVIDER_KINDS:
        if not agency.commissioned_by:
            raise RegistryError(f"{where} is a {agency.kind} provider bound to no "
                                "commissioner: set commissioned_by")  # fmt: skip
        commissioner = agencies.get(agency.commissioned_by)
        if commissioner is None:
            raise RegistryError(f"{where} is commissioned by {agency.commissioned_by!r}, "
                                "which is not in the registry")  # fmt: skip
        if commissioner.kind in PROVIDER_KINDS:
            raise RegistryError(f"{where} is commissioned by {commissioner.id!r}, which is "
                                "itself a provider: bind to a signatory")  # fmt: skip
    elif agency.commissioned_by or agency.commissioned_until:
        raise RegistryError(f"{where} is {agency.kind}, so it names no commissioner: "
                            "make it commissioned or contracted")  # fmt: skip


def _timescales(data: Any) -> dict[tuple[str, str], Timescale]:
    if data is None:
        return dict(DEFAULT_TIMESCALES)
    _typed("timescales", data, dict, "timescales")
    _unknown("timescales", data, set(URGENCIES))
    found: dict[tuple[str, str], Timescale] = {}
    for urgency in URGENCIES:
        steps = _required("timescales", data, urgency, dict)
        _unknown(f"timescales.{urgency}", steps, set(STEPS))
        for step in STEPS:
            where = f"timescales.{urgency}.{step}"
            table = _required(f"timescales.{urgency}", steps, step, dict)
            _unknown(where, table, _TIMESCALE_KEYS)
            minutes = _required(where, table, "minutes", (int, float))  # type: ignore[arg-type]
            if not (
                math.isfinite(minutes) and MIN_TIMESCALE_MINUTES <= minutes <= MAX_TIMESCALE_MINUTES
            ):
                raise RegistryError(f"{where}: minutes must be between {MIN_TIMESCALE_MINUTES} "
                                    f"and {MAX_TIMESCALE_MINUTES}")  # fmt: skip
            lead = _optional(where, table, "lead_after_period", (int, float))  # type: ignore[arg-type]
            operator = _optional(where, table, "operator_after_period", (int, float))  # type: ignore[arg-type]
            lead = 0.5 if lead is None else float(lead)
            operator = 1.0 if operator is None else float(operator)
            if not (math.isfinite(lead) and math.isfinite(operator) and 0 < lead < operator <= 10):
                raise RegistryError(f"{where}: escalation needs 0 < lead_after_period < "
                                    "operator_after_period <= 10")  # fmt: skip
            working = _optional(where, table, "working_hours", bool)
            found[(urgency, step)] = Timescale(
                minutes=minutes,
                working_hours=urgency != "RED" if working is None else working,
                lead_after_period=lead,
                operator_after_period=operator,
            )
    return found


def parse_registry(data: Mapping[str, Any]) -> Registry:
    """Validate the registry's tables against the schema and build the registry.

    Raises:
        RegistryError: the first rule broken, naming the agency or the key.
    """
    _unknown("registry", data, _TOP_KEYS)
    version = _required("registry", data, "registry_version", int)
    if version < 1:
        raise RegistryError("registry: registry_version must be 1 or more")
    protocol = _required("registry", data, "protocol_version", str)
    region = _optional("registry", data, "region", str) or "GB-ENG"
    if region not in REGIONS:
        raise RegistryError(f"registry: region {region!r} is not one of {', '.join(REGIONS)}")
    zone = _optional("registry", data, "time_zone", str) or "Europe/London"
    entries = _required("registry", data, "agencies", list)
    agencies: dict[str, Agency] = {}
    for index, entry in enumerate(entries):
        try:
            agency = _agency(entry, index, region)
        except RegistryError as err:
            named = entry.get("id") if isinstance(entry, dict) else None
            agency_id = named if isinstance(named, str) else ""
            if not AGENCY_ID_PATTERN.fullmatch(agency_id):
                agency_id = ""  # only a valid code is safe to log
            raise RegistryError(str(err), agency_id=agency_id) from None
        if agency.id in agencies:
            raise RegistryError(f"agency {agency.id!r} is listed twice", agency_id=agency.id)
        agencies[agency.id] = agency
    _check_bindings(agencies)
    for index, change in enumerate(_optional("registry", data, "changes", list) or []):
        _typed(f"changes[{index}]", change, dict, "a change entry")
        _unknown(f"changes[{index}]", change, _CHANGE_KEYS)
    retention = _optional("registry", data, "records_retention_days", int)
    if retention is not None and retention < 1:
        raise RegistryError("registry: records_retention_days must be 1 or more")
    social_care = _optional("registry", data, "childrens_social_care", str)
    if social_care is not None and social_care not in agencies:
        raise RegistryError("registry: childrens_social_care names no listed agency")
    return Registry(
        childrens_social_care=social_care,
        registry_version=version,
        protocol_version=protocol,
        agencies=agencies,
        region=region,
        time_zone=zone,
        timescales=_timescales(data.get("timescales")),
        records_retention_days=retention,
    )
