"""Builds a node from its configuration and runs it: the one place that sees every layer."""

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from cli.config import Config
from node.api.server import start_server
from node.domain.errors import DomainError
from node.domain.workflow import DEFAULT_WORKFLOW, Workflow
from node.services.admin import AdminService
from node.services.clock import Clock, SystemClock
from node.services.tickets import TicketService
from node.store import migrate
from node.store.database import Database

log = logging.getLogger("hdx")
HOUSEKEEPING_MAX_SLEEP_S = 60.0
"""The longest the auto-close timer sleeps, so it notices what other processes resolved."""


@dataclass(frozen=True, slots=True)
class Node:
    db: Database
    tickets: TicketService
    admin: AdminService


def open_node(config: Config, clock: Clock | None = None) -> Node:
    """Opens the node's database and builds its services.

    Raises:
        InvalidArgument: the config's workflow is malformed.
    """
    clock = clock or SystemClock()
    db = Database(config.database_url, pool_size=config.workers)
    workflow = Workflow.from_config(config.workflow) if config.workflow else DEFAULT_WORKFLOW
    tickets = TicketService(
        db,
        clock,
        workflow=workflow,
        confirm_window=timedelta(hours=config.confirm_window_hours),
    )
    return Node(db, tickets, AdminService(db, clock))


def schema_problem(db: Database) -> str | None:
    """Why the database cannot be served as it is, or None."""
    current, head = migrate.current(db.engine), migrate.head()
    if current is None:
        return "the database has no schema: run `hdx init`"
    if current != head:
        return f"the database schema is at {current}, this hdx needs {head}: run `hdx migrate`"
    return None


async def serve(node: Node, listen: str, workers: int, on_ready: Callable[[int], None]) -> None:
    """Serves the API and runs the node's timers until SIGINT or SIGTERM."""
    server, port = await start_server(node.tickets, node.admin, listen, workers=workers)
    on_ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    timers = asyncio.create_task(_auto_close(node.tickets))
    await stop.wait()
    timers.cancel()
    await server.stop(grace=5)
    node.db.dispose()


async def _auto_close(tickets: TicketService) -> None:
    """Closes resolved tickets whose confirmation window ran out, at the instant it does."""
    while True:
        try:
            closed = await asyncio.to_thread(tickets.close_confirmed)
            if closed:
                log.info("closed %d resolved tickets nobody confirmed in time", closed)
            due = await asyncio.to_thread(tickets.next_auto_close)
        except DomainError as error:
            log.warning("auto-close: %s", error)
            due = None
        delay = HOUSEKEEPING_MAX_SLEEP_S
        if due is not None:
            delay = min(delay, max((due - tickets.clock.now()).total_seconds(), 0.0))
        await asyncio.sleep(delay)
