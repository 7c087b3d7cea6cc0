"""Assembles a node's gRPC server: HelpDesk, standard health checking and reflection."""

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from hdx.helpdesk.v1 import helpdesk_pb2, helpdesk_pb2_grpc

from node.api.servicer import HandOff, HelpDeskServicer
from node.domain.errors import InvalidArgument
from node.services.admin import AdminService
from node.services.tickets import TicketService

MAX_MESSAGE_BYTES = 1 << 20
SERVICE_NAME = helpdesk_pb2.DESCRIPTOR.services_by_name["HelpDesk"].full_name


async def start_server(
    tickets: TicketService,
    admin: AdminService,
    listen: str,
    *,
    workers: int = 16,
    hand_off: HandOff | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Starts serving on listen (host:port; port 0 picks a free one).

    Args:
        hand_off: hands tickets to partner nodes, when the node serves the exchange.

    Returns:
        The running server and the port it listens on.

    Raises:
        InvalidArgument: it cannot listen there (the port is taken, the host unknown).
    """
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hdx-api")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 4 * MAX_MESSAGE_BYTES),
        ]
    )
    helpdesk_pb2_grpc.add_HelpDeskServicer_to_server(
        HelpDeskServicer(tickets, admin, executor, hand_off), server
    )
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:  # grpc's only word for "in use" and "no such host"
        executor.shutdown(wait=False)
        raise InvalidArgument(
            "listen", f"cannot listen on {listen}: the port is in use or the host is unknown"
        ) from None
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
