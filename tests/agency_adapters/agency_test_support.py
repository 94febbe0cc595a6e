"""Helpers for the agency adapter tests: fresh agency ids, running sandboxes, subjects."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from agency_adapters.sandbox_agency.faults import FaultInjector
from agency_adapters.sandbox_agency.rows import Child
from agency_adapters.sandbox_agency.seed import DEMO_CHILDREN
from agency_adapters.sandbox_agency.store import SandboxStore
from protos.agency.v1.sandbox_control_pb2 import Faults
from protos.sharing.v1 import case_pb2 as pb

CHILDREN = {child.key: child for child in DEMO_CHILDREN}


def unique_agency_id(kind: str) -> str:
    """A fresh agency id of ``kind`` (e.g. "gp"), so task queues and files never collide."""
    return f"test-{kind}-{secrets.token_hex(4)}"


def child_subject(key: str, *, by_nhs: bool = True) -> pb.Subject:
    """The SUBJECT_ROLE_CHILD subject for demo child ``key``, with or without NHS number."""
    child: Child = CHILDREN[key]
    return pb.Subject(
        role=pb.SUBJECT_ROLE_CHILD,
        given_name=child.given_name,
        family_name=child.family_name,
        date_of_birth=child.date_of_birth,
        nhs_number=child.nhs_number if by_nhs else "",
    )


UNKNOWN_CHILD = pb.Subject(
    role=pb.SUBJECT_ROLE_CHILD,
    given_name="Unknown",
    family_name="Nobody-Test",
    date_of_birth="2019-02-02",
    nhs_number="9990000999",
)


@dataclass
class Sandbox:
    """A running sandbox agency."""

    agency_id: str
    server: grpc.aio.Server
    port: int
    store: SandboxStore
    faults: FaultInjector

    @property
    def target(self) -> str:
        """Where to reach it."""
        return f"127.0.0.1:{self.port}"

    def set_faults(self, **toggles: Any) -> None:
        """Replace its fault toggles, e.g. ``set_faults(fail_next=2)``; none clears them."""
        self.faults.set(Faults(**toggles))


class StartSandbox(Protocol):
    """Starts a sandbox agency with the given id (the ``start_sandbox`` fixture)."""

    def __call__(self, agency_id: str, *, faults: Faults | None = None) -> Awaitable[Sandbox]: ...
