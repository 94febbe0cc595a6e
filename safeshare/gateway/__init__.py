"""The gateway: the ``sharing.v1.CaseService`` gRPC server that agency systems call.

It translates and delegates: proto in, Temporal call, proto out, and every refusal as a gRPC
status code with rich details. The calling agency is the client certificate's common name.
"""

from __future__ import annotations

from safeshare.gateway.server import create_gateway_server, stop_gateway
from safeshare.gateway.servicer import CaseServiceServicer

__all__ = ["CaseServiceServicer", "create_gateway_server", "stop_gateway"]
