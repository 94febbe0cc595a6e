"""The gateway's yardstick: a bare grpc.aio server over the same mTLS that answers each call
with a response of the size the client asks for (no protobuf, no Temporal, no checks).

Requests are raw bytes; the first 4 bytes give the response size (big-endian). Run:
``python -m bench.echo_server --port P --tls-ca ... --tls-cert ... --tls-key ...``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc

from safeshare.shutdown import wait_for_stop_signal
from safeshare.tls import TlsFiles, server_credentials

METHOD = "/bench.v1.Echo/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return b"\0" * int.from_bytes(request[:4], "big")


def echo_request(request_size: int, response_size: int) -> bytes:
    """A request of ``request_size`` bytes asking for ``response_size`` bytes back."""
    return response_size.to_bytes(4, "big") + b"\1" * max(0, request_size - 4)


async def _main(port: int, tls: TlsFiles) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_secure_port(f"127.0.0.1:{port}", server_credentials(tls))
    await server.start()
    print("echo-server-ready", flush=True)
    await wait_for_stop_signal()
    await server.stop(1)


def main() -> None:
    """Parse arguments and serve until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-ca", type=Path, required=True)
    parser.add_argument("--tls-cert", type=Path, required=True)
    parser.add_argument("--tls-key", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.port, TlsFiles(args.tls_ca, args.tls_cert, args.tls_key)))


if __name__ == "__main__":
    main()
