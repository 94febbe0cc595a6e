"""Who is calling: the partner agency named by the client certificate, and nothing else.

Identity never comes from metadata or the request body: both are under the caller's control,
while the certificate was issued by the partnership CA and verified in the TLS handshake.
"""

from __future__ import annotations

import grpc

from partnership.registry import Registry
from safeshare.gateway.admission import certificate_agency, peer_certificate
from safeshare.gateway.errors import GatewayError

NOT_A_PARTNER = "caller is not a partner agency"


def caller_agency(context: grpc.aio.ServicerContext, registry: Registry) -> str:
    """The id of the partner agency making this call.

    Raises:
        GatewayError: PERMISSION_DENIED when the certificate names no partner agency.
    """
    cert = peer_certificate(context)
    # One agency only: a SAN URI urn:safeshare:agency:<id>, else the one CN (admission).
    agency = certificate_agency(cert) if cert is not None else None
    if agency is None or registry.get(agency) is None:
        raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, NOT_A_PARTNER)
    return agency
