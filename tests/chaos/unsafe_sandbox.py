"""The checker's negative control: a sandbox agency whose store forgets idempotent delivery.

``python -m tests.chaos.unsafe_sandbox sandbox-agency ...`` runs ``safeshare`` with
``SandboxStore.receive_delivery`` patched so that a repeated ``delivery_id`` is stored again
(under a suffixed id, since the table's key would refuse the same one). Production code is
untouched; the chaos stack uses this only when ``SAFESHARE_CHAOS_UNSAFE_DELIVERY=1``.
"""

from __future__ import annotations

import itertools
from typing import Any

from agency_adapters.sandbox_agency.store import SandboxStore
from protos.agency.v1 import agency_service_pb2 as agency_pb
from safeshare.cli import main

_original = SandboxStore.receive_delivery
_repeat = itertools.count(2)


def _forgetful_receive(
    self: SandboxStore, request: agency_pb.ReceiveDeliveryRequest, **kwargs: Any
) -> Any:
    receipt, duplicate = _original(self, request, **kwargs)
    if not duplicate:
        return receipt, duplicate
    again = agency_pb.ReceiveDeliveryRequest()
    again.CopyFrom(request)
    again.delivery_id = f"{request.delivery_id}~repeat{next(_repeat)}"
    _original(self, again, **kwargs)
    # Answer as a first receipt would: nothing tells the sender it stored twice.
    receipt.duplicate = False
    return receipt, False


SandboxStore.receive_delivery = _forgetful_receive  # type: ignore[assignment]

if __name__ == "__main__":
    main()
