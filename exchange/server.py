"""The Exchange gRPC service a node offers its partners, and the channels it opens to them.

Partners talk over TLS: a node serves with its own certificate, and a client trusts
only the certificate the partner's invite carried (pinned), whoever signed it.
Plaintext only for a partner explicitly configured so (local use).
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from hdx.exchange.v1 import exchange_pb2 as pb
from hdx.exchange.v1 import exchange_pb2_grpc

from exchange.envelope import MAX_MESSAGE_BYTES, Refused
from exchange.identity import TLS_NAME
from exchange.service import ExchangeService
from node.domain.errors import InvalidArgument, Unavailable
from node.domain.partner import Partner

Context = grpc.aio.ServicerContext[Any, Any]


class ExchangeServicer(exchange_pb2_grpc.ExchangeServicer):
    def __init__(self, exchange: ExchangeService, executor: ThreadPoolExecutor) -> None:
        self.exchange = exchange
        self.executor = executor

    async def Deliver(self, request: pb.DeliverRequest, context: Context) -> pb.DeliverResponse:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self.executor, self.exchange.receive, list(request.events)
            )
        except Unavailable as error:  # nothing stands: the sender sends again
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        return pb.DeliverResponse(results=results)

    async def Pull(self, request: pb.Envelope, context: Context) -> pb.DeliverRequest:
        loop = asyncio.get_running_loop()
        try:
            events = await loop.run_in_executor(self.executor, self.exchange.pulled, request)
        except Refused as refusal:
            await context.abort(grpc.StatusCode[refusal.code], str(refusal))
        return pb.DeliverRequest(events=events)


async def start_exchange_server(
    exchange: ExchangeService, listen: str, *, tls: bool, workers: int = 4
) -> tuple[grpc.aio.Server, int]:
    """Serves the Exchange service on listen (port 0 picks one): over TLS with the node's
    certificate, or in plaintext when tls is False (local use).

    Raises:
        InvalidArgument: it cannot listen there.
    """
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hdx-exchange")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),  # a second node on the port fails instead of sharing it
        ]
    )
    exchange_pb2_grpc.add_ExchangeServicer_to_server(ExchangeServicer(exchange, executor), server)
    identity = exchange.identity
    try:
        if tls:
            credentials = grpc.ssl_server_credentials([(identity.tls_key_pem, identity.cert_pem)])
            port = server.add_secure_port(listen, credentials)
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError:
        executor.shutdown(wait=False)
        raise InvalidArgument(
            "exchange.listen", f"cannot listen on {listen}: the port is in use or the host unknown"
        ) from None
    await server.start()
    return server, port


def channel_to(partner: Partner) -> grpc.aio.Channel:
    """A channel to partner's endpoint trusting only its pinned certificate."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if partner.plaintext:
        return grpc.aio.insecure_channel(partner.endpoint, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=partner.cert_pem.encode())
    return grpc.aio.secure_channel(
        partner.endpoint,
        credentials,
        options=[*options, ("grpc.ssl_target_name_override", TLS_NAME)],
    )
