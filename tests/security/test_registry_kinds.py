"""Registry kinds: a closed list, and a commissioned or contracted provider bound through a
current signatory; the gate names the reason when the binding is missing, lapsed or the
commissioner's own review is overdue, for requests from the provider and to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from activities.protocol_gate import gate_reasons
from partnership.errors import RegistryError
from partnership.registry import KINDS, Agency, Registry
from partnership.schema import parse_registry
from tests.factories import sharing_request

AT = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
PROVIDER = "bright-futures"


def _entry(agency_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": agency_id, "name": agency_id, "kind": "statutory",
            "signed_protocol_version": "2026.1", "review_date": dt.date(2027, 9, 30),
            **fields}  # fmt: skip


def _registry(*extra: dict[str, Any], csc: dict[str, Any] | None = None) -> Registry:
    agencies = [_entry("northshire-csc", **(csc or {})), _entry("oakfield-primary"), *extra]
    return parse_registry({"registry_version": 3, "protocol_version": "2026.1",
                           "agencies": agencies})  # fmt: skip


def test_the_kinds_are_a_closed_list() -> None:
    assert set(KINDS) == {"statutory", "voluntary", "independent", "commissioned", "contracted"}
    for kind in KINDS:
        fields = (
            {"commissioned_by": "northshire-csc"} if kind in {"commissioned", "contracted"} else {}
        )
        assert _registry(_entry(PROVIDER, kind=kind, **fields)).agencies[PROVIDER].kind == kind
    with pytest.raises(RegistryError, match="kind 'charity' is not one of") as refused:
        _registry(_entry(PROVIDER, kind="charity"))
    assert refused.value.agency_id == PROVIDER


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"kind": "contracted"}, "bound to no commissioner"),
        ({"kind": "commissioned", "commissioned_by": "nobody"}, "which is not in the registry"),
        ({"kind": "statutory", "commissioned_by": "northshire-csc"}, "names no commissioner"),
    ],
)
def test_the_loader_refuses_a_provider_without_a_signatory_naming_it(
    fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(RegistryError, match=says) as refused:
        _registry(_entry(PROVIDER, **fields))
    assert refused.value.agency_id == PROVIDER and refused.value.code == "binding"


def test_a_provider_bound_to_another_provider_is_refused() -> None:
    with pytest.raises(RegistryError, match="itself a provider"):
        _registry(
            _entry("sub-provider", kind="contracted", commissioned_by=PROVIDER),
            _entry(PROVIDER, kind="commissioned", commissioned_by="northshire-csc"),
        )


def _gate(registry: Registry, *, provider_holds: bool) -> list[str]:
    if provider_holds:
        request = sharing_request(holding_agency_id=PROVIDER)
    else:
        request = sharing_request()
        request.requesting_agency_id = PROVIDER
    return gate_reasons(registry, request, AT)


@pytest.mark.parametrize("provider_holds", [True, False], ids=["to-provider", "from-provider"])
def test_the_gate_names_why_a_provider_is_not_bound(provider_holds: bool) -> None:
    party = "holder" if provider_holds else "requester"
    bound = _entry(PROVIDER, kind="commissioned", commissioned_by="northshire-csc")
    assert _gate(_registry(bound), provider_holds=provider_holds) == []

    lapsed = {**bound, "commissioned_until": dt.date(2026, 11, 30)}
    assert _gate(_registry(lapsed), provider_holds=provider_holds) == [
        f"{party}_commissioning_lapsed:{PROVIDER}"
    ]
    overdue = _registry(bound, csc={"review_date": dt.date(2026, 6, 30)})
    assert f"{party}_commissioner_signature_review_overdue:{PROVIDER}" in _gate(
        overdue, provider_holds=provider_holds
    )
    # A registry built without the loader (or before it checked bindings) still fails closed.
    registry = _registry()
    registry.agencies[PROVIDER] = Agency(PROVIDER, PROVIDER, "contracted", "2026.1",
                                         dt.date(2027, 9, 30))  # fmt: skip
    assert _gate(registry, provider_holds=provider_holds) == [
        f"{party}_not_bound_to_a_commissioner:{PROVIDER}"
    ]
