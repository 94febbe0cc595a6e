"""The shape every gateway server interceptor shares: each method of one service has its
behaviour wrapped, unary and streaming alike, as grpc's own aio interceptor examples do (the
interceptor rewraps the handler ``continuation`` returns; methods of other services, such as
health and reflection, pass through).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc

Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Stream = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]
Deserializer = Callable[[bytes], Any]


class MethodInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method of ``service``: subclasses say what runs around each call.

    Args:
        service: the full name of the service (``sharing.v1.CaseService``).
    """

    def __init__(self, service: str) -> None:
        self._prefix = f"/{service}/"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = str(handler_call_details.method)
        if handler is None or not method.startswith(self._prefix):
            return handler
        rpc = method.removeprefix(self._prefix)
        deserializer = self.deserializer(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self.unary(rpc, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self.stream(rpc, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def around(
        self, rpc: str, request: Any, context: grpc.aio.ServicerContext, stream: bool
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        """What runs around one call of the method ``rpc`` (the handler runs inside it, a
        stream's handler while it sends); nothing by default."""
        return contextlib.nullcontext()

    def streamed(self, around: Any) -> None:
        """A stream sent one message; ``around`` is what ``around`` entered as."""

    def deserializer(self, inner: Deserializer | None) -> Deserializer | None:
        """The method's request deserializer."""
        return inner

    def unary(self, rpc: str, inner: Unary) -> Unary:
        """The behaviour of the unary method ``rpc``: ``inner`` inside ``around``."""

        async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self.around(rpc, request, context, False):
                return await inner(request, context)

        return behaviour

    def stream(self, rpc: str, inner: Stream) -> Stream:
        """The behaviour of the server-streaming method ``rpc``: ``inner`` inside ``around``."""

        async def behaviour(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            async with (
                self.around(rpc, request, context, True) as around,
                contextlib.aclosing(inner(request, context)) as responses,
            ):
                async for response in responses:
                    yield response
                    self.streamed(around)

        return behaviour
