"""Nodes of a chain in one test process: each its own database, identity, Exchange server
over TLS on a loopback port, and delivery worker, on an event loop thread of its own; and
a data directory whose config lets `hdx` administration commands work on its database."""

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from cli import config as configuration
from exchange import identity
from exchange.alerts import AlertPolicy, OutageAlerts
from exchange.delivery import Courier
from exchange.server import channel_to, start_exchange_server
from exchange.service import ExchangeService
from node.domain.partner import LinkState, PartnerRole, Terms
from node.store import migrate
from node.store.database import Database
from tests.conftest import Desk, FakeClock, seed_desk
from tests.postgres import PostgresServer

T = TypeVar("T")
WAIT_S = 20.0
_names = itertools.count()


@dataclass
class ChainNode:
    """One node of the chain, serving."""

    name: str
    data_dir: Path
    desk: Desk
    exchange: ExchangeService
    endpoint: str
    loop: asyncio.AbstractEventLoop
    server: grpc.aio.Server
    courier: Courier
    task: "asyncio.Future[None]"

    @property
    def node_id(self) -> str:
        return self.exchange.identity.node_id

    def run(self, coroutine: "asyncio.Future[T] | object") -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT_S)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)

        async def _stop() -> None:
            await self.server.stop(0)

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(WAIT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.desk.db.dispose()


def start_node(
    url: str,
    data_dir: Path,
    name: str,
    prefix: str,
    clock: FakeClock,
    *,
    alerts: AlertPolicy | None = None,
) -> ChainNode:
    """A node with the default catalogue, test stores and users, serving on loopback; its
    delivery worker opens alert tickets by alerts, if given."""
    db = Database(url)
    migrate.upgrade(db.engine)
    db.initialise(prefix, name)
    desk = seed_desk(db, clock)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = configuration.render(name, prefix, url, "127.0.0.1:0")
    (data_dir / configuration.CONFIG_FILE).write_text(config, encoding="utf-8")
    me = identity.create(data_dir, f"{name}-node", clock.now())
    exchange = ExchangeService(desk.tickets, me, identity.own_keys(data_dir))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def _start() -> tuple[grpc.aio.Server, int, Courier, "asyncio.Task[None]"]:
        server, port = await start_exchange_server(exchange, "127.0.0.1:0", tls=True)
        outages = None if alerts is None else OutageAlerts(exchange, alerts)
        courier = Courier(exchange, channel_to, outages)
        return server, port, courier, asyncio.create_task(courier.run())

    server, port, courier, task = asyncio.run_coroutine_threadsafe(_start(), loop).result(WAIT_S)
    endpoint = f"127.0.0.1:{port}"
    return ChainNode(name, data_dir, desk, exchange, endpoint, loop, server, courier, task)


def start_on_backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    name: str,
    prefix: str,
    clock: FakeClock,
    *,
    alerts: AlertPolicy | None = None,
) -> ChainNode:
    """`start_node` on a new database of the backend the test runs on (request.param), with
    its data directory tmp_path / name."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / name}.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"x_{name}_{next(_names)}")
    return start_node(url, tmp_path / name, name, prefix, clock, alerts=alerts)


def pair(client: ChainNode, contractor: ChainNode, terms: Terms | None = None) -> None:
    """Registers each node with the other, as their admins would after comparing fingerprints."""
    client.exchange.add_partner(
        contractor.exchange.invite(contractor.endpoint, contractor.name),
        PartnerRole.CONTRACTOR,
        terms or Terms(),
    )
    contractor.exchange.add_partner(
        client.exchange.invite(client.endpoint, client.name), PartnerRole.CLIENT, terms or Terms()
    )


def wait_for(what: str, check: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """check's first truthy answer, polling."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serving(*nodes: ChainNode) -> Iterator[None]:
    try:
        yield
    finally:
        for node in nodes:
            node.stop()


@contextmanager
def retail_and_contractor(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FakeClock,
    alerts: AlertPolicy | None = None,
) -> Iterator[tuple[ChainNode, ChainNode]]:
    """A retail node (RET, alerting by alerts) and its contractor (CON), paired, serving,
    each on a database of the backend request.param names."""
    retail = start_on_backend(request, tmp_path, "retail", "RET", clock, alerts=alerts)
    contractor = start_on_backend(request, tmp_path, "contractor", "CON", clock)
    pair(retail, contractor)
    with serving(retail, contractor):
        yield retail, contractor


def link_state(node: ChainNode, key: str) -> LinkState | None:
    """The state of the last link of node's ticket key."""
    with node.desk.db.read() as tx:
        links = tx.links.links_of(int(key.split("-")[1]))
        return links[-1].state if links else None


def remote_key(node: ChainNode, key: str) -> str:
    """The partner's key of the ticket node's ticket key was last handed to (or from)."""
    with node.desk.db.read() as tx:
        links = tx.links.links_of(int(key.split("-")[1]))
        return links[-1].remote_ticket if links else ""


def delivered(node: ChainNode) -> bool:
    """Nothing of node's waits for a receipt."""
    return all(waiting == 0 for _, _, waiting in node.exchange.partners())
