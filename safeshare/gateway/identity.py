"""Who is calling: the partner agency named by the client certificate, and nothing else.

Identity never comes from metadata or the request body: both are under the caller's control,
while the certificate was issued by the partnership CA and verified in the TLS handshake.
"""

from __future__ import annotations

import grpc

from activities.registry import Registry
from safeshare.gateway.errors import GatewayError
from safeshare.tls import peer_common_name

NOT_A_PARTNER = "caller is not a partner agency"


def caller_agency(context: grpc.aio.ServicerContext, registry: Registry) -> str:
    """The id of the partner agency making this call.

    Raises:
        GatewayError: PERMISSION_DENIED when the certificate names no partner agency.
    """
    common_name = peer_common_name(context)
    if common_name is None or registry.get(common_name) is None:
        raise GatewayError(grpc.StatusCode.PERMISSION_DENIED, NOT_A_PARTNER)
    return common_name
