"""Nodes of a chain in one test process: each its own database, identity, Exchange server
over TLS on a loopback port, and delivery worker, on an event loop thread of its own; and
a data directory whose config lets `hdx` administration commands work on its database.

Beside the nodes, what trust and fault tests need: a raw Exchange client (`Wire`) that
sends whatever envelopes a test crafts, signed by any identity (`forge`); a snapshot of
everything a node stores, to show a refused event left no trace; and `tick`, which moves
the shared fake clock and tells the delivery workers, as a real clock's passing would.
"""

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from hdx.exchange.v1 import exchange_pb2 as pb
from hdx.exchange.v1 import exchange_pb2_grpc
from sqlalchemy import select

from cli import config as configuration
from exchange import identity
from exchange.alerts import AlertPolicy, OutageAlerts
from exchange.delivery import Courier
from exchange.envelope import MAX_MESSAGE_BYTES, digest, seal, timestamp
from exchange.identity import TLS_NAME, Identity
from exchange.server import channel_to, start_exchange_server
from exchange.service import ExchangeService, Invite
from node.domain.partner import LinkState, PartnerRole, Terms
from node.services.admin import AdminService
from node.services.tickets import TicketService
from node.store import migrate, schema
from node.store.database import Database
from tests.conftest import Desk, FakeClock, seed_desk
from tests.postgres import PostgresServer

T = TypeVar("T")
WAIT_S = 20.0
_names = itertools.count()
NOWHERE = "127.0.0.1:9"
"""An endpoint nothing answers on (the discard port, closed on test machines)."""
VOLATILE = frozenset(
    {"failures", "retry_at", "down_since", "last_error", "lease_owner", "lease_until"}
)
"""Columns of partners the delivery worker moves on its own (backoff, lease)."""


@dataclass
class ChainNode:
    """One node of the chain, serving."""

    name: str
    url: str
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

    @property
    def identity(self) -> Identity:
        return self.exchange.identity

    def run(self, coroutine: "asyncio.Future[T] | object") -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT_S)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stops serving and delivering and closes the database, as a process exit would
        (once: a stopped node stays stopped)."""
        if not self.loop.is_running():
            return
        self.loop.call_soon_threadsafe(self.task.cancel)

        async def _stop() -> None:
            await self.server.stop(0)

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(WAIT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.desk.db.dispose()

    def restart(self) -> "ChainNode":
        """The stopped node started again: same database, keys and port."""
        return serve(self.url, self.data_dir, self.name, self.desk.clock, listen=self.endpoint)

    def invite(self, endpoint: str | None = None) -> Invite:
        return self.exchange.invite(endpoint or self.endpoint, self.name)


def start_node(
    url: str,
    data_dir: Path,
    name: str,
    prefix: str,
    clock: FakeClock,
    *,
    alerts: AlertPolicy | None = None,
) -> ChainNode:
    """A new node with the default catalogue, test stores and users, serving on loopback;
    its delivery worker opens alert tickets by alerts, if given."""
    db = Database(url)
    migrate.upgrade(db.engine)
    db.initialise(prefix, name)
    seed_desk(db, clock)
    db.dispose()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = configuration.render(name, prefix, url, "127.0.0.1:0")
    (data_dir / configuration.CONFIG_FILE).write_text(config, encoding="utf-8")
    identity.create(data_dir, f"{name}-node", clock.now())
    return serve(url, data_dir, name, clock, alerts=alerts)


def serve(
    url: str,
    data_dir: Path,
    name: str,
    clock: FakeClock,
    *,
    listen: str = "127.0.0.1:0",
    alerts: AlertPolicy | None = None,
) -> ChainNode:
    """A process of an existing node: its database and keys, its server and courier.

    Two calls over one PostgreSQL database are two processes of one node.
    """
    db = Database(url)
    desk = Desk(db, clock, TicketService(db, clock), AdminService(db, clock))
    me = identity.load(data_dir, f"{name}-node")
    exchange = ExchangeService(desk.tickets, me, identity.own_keys(data_dir))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def _start() -> tuple[grpc.aio.Server, int, Courier, "asyncio.Task[None]"]:
        server, port = await start_exchange_server(exchange, listen, tls=True)
        outages = None if alerts is None else OutageAlerts(exchange, alerts)
        courier = Courier(exchange, channel_to, outages)
        return server, port, courier, asyncio.create_task(courier.run())

    server, port, courier, task = asyncio.run_coroutine_threadsafe(_start(), loop).result(WAIT_S)
    endpoint = f"127.0.0.1:{port}"
    return ChainNode(name, url, data_dir, desk, exchange, endpoint, loop, server, courier, task)


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


def pair(
    client: ChainNode,
    contractor: ChainNode,
    terms: Terms | None = None,
    *,
    via: tuple[str, str] | None = None,
) -> None:
    """Registers each node with the other, as their admins would after comparing fingerprints.

    Args:
        via: the endpoints each reaches the other at (client's of the contractor, the
            contractor's of the client), when not directly (a proxy between them).
    """
    to_contractor, to_client = via or (contractor.endpoint, client.endpoint)
    client.exchange.add_partner(
        contractor.invite(to_contractor), PartnerRole.CONTRACTOR, terms or Terms()
    )
    contractor.exchange.add_partner(client.invite(to_client), PartnerRole.CLIENT, terms or Terms())


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


def tick(clock: FakeClock, nodes: list[ChainNode], delta: timedelta) -> None:
    """Moves the fake clock on by delta and wakes the nodes' couriers, whose sleep a real
    clock's passing would have ended."""
    clock.advance(delta)
    for node in nodes:
        node.courier.wake("")


def delivered(node: ChainNode, to: Iterable[ChainNode] | None = None) -> bool:
    """Nothing of node's waits for a receipt (of the given partners, by default of any)."""
    among = None if to is None else {partner.node_id for partner in to}
    return all(
        waiting == 0
        for partner, _, waiting in node.exchange.partners()
        if among is None or partner.node_id in among
    )


def snapshot(node: ChainNode) -> dict[str, list[tuple[Any, ...]]]:
    """Every row node stores, table by table, but the delivery state its courier keeps."""
    rows = {}
    with node.desk.db.read() as tx:
        for table in schema.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in VOLATILE]
            query = select(*columns).order_by(*table.primary_key.columns or columns)
            rows[table.name] = [tuple(row) for row in tx.conn.execute(query)]
    return rows


# -- speaking the protocol by hand -------------------------------------------------------


def forge(
    signer: Identity,
    *,
    link: str,
    seq: int,
    prev: bytes,
    destination: str,
    kind: str,
    event: Message,
    sender: str | None = None,
) -> pb.Envelope:
    """An event signed by signer's key with whatever fields a test wants (sender: signer's
    node id unless given)."""
    body = pb.Body(
        link=link,
        seq=seq,
        prev=prev,
        sender=signer.node_id if sender is None else sender,
        destination=destination,
    )
    getattr(body, kind).CopyFrom(event)
    return seal(signer, body)


def chain(
    signer: Identity, link: str, destination: str, events: list[tuple[str, Message]]
) -> list[pb.Envelope]:
    """events (kind, message) as signer's chain on a new link, from seq 1."""
    return chain_of(link, destination, [(signer, kind, event) for kind, event in events])


def chain_of(
    link: str, destination: str, events: Sequence[tuple[Identity, str, Message]]
) -> list[pb.Envelope]:
    """events (signer, kind, message) as one chain on a new link, from seq 1, each signed
    by its own signer."""
    sealed: list[pb.Envelope] = []
    for seq, (signer, kind, event) in enumerate(events, start=1):
        prev = digest(sealed[-1].body) if sealed else b""
        sealed.append(
            forge(
                signer,
                link=link,
                seq=seq,
                prev=prev,
                destination=destination,
                kind=kind,
                event=event,
            )
        )
    return sealed


def head(receiver: ChainNode, link: str) -> tuple[int, bytes]:
    """The sequence number and digest of the last event receiver took on link."""
    with receiver.desk.db.read() as tx:
        found = tx.links.link(link)
    return (0, b"") if found is None else (found.in_seq, found.in_digest)


def next_event(
    receiver: ChainNode, signer: Identity, link: str, kind: str, event: Message
) -> pb.Envelope:
    """The event of signer that receiver waits for next on link."""
    seq, prev = head(receiver, link)
    return forge(
        signer,
        link=link,
        seq=seq + 1,
        prev=prev,
        destination=receiver.node_id,
        kind=kind,
        event=event,
    )


def pull_request(
    signer: Identity,
    destination: str,
    after: dict[str, int],
    *,
    at: datetime,
    sender: str | None = None,
) -> pb.Envelope:
    body = pb.PullBody(
        sender=signer.node_id if sender is None else sender,
        destination=destination,
        at=timestamp(at),
        after=[pb.Cursor(link=link, seq=seq) for link, seq in after.items()],
    )
    return seal(signer, body)


def make_identity(data_dir: Path, node_id: str, clock: FakeClock) -> Identity:
    """A node identity of its own (a node that never serves: a forger, a stranger)."""
    return identity.create(data_dir, node_id, clock.now())


def invite_of(who: Identity, endpoint: str = NOWHERE) -> Invite:
    return Invite(who.node_id, who.node_id, endpoint, who.public_key, who.cert_pem.decode())


def offer(title: str, ticket: str) -> pb.Offer:
    return pb.Offer(
        ticket=ticket,
        title=title,
        category="pos-down",
        store=pb.StoreRef(code="s1", name="Store 1", timezone="Europe/Moscow"),
        deadlines=pb.Deadlines(),
    )


def comment(body: str, author: str = "someone") -> pb.PublicComment:
    return pb.PublicComment(author=author, body=body)


class Wire:
    """A raw Exchange client of a node: sends what a test crafts, as any identity.

    Args:
        max_send_bytes: the largest message this client sends (a node takes at most
            MAX_MESSAGE_BYTES).
    """

    def __init__(self, node: ChainNode, *, max_send_bytes: int = MAX_MESSAGE_BYTES) -> None:
        credentials = grpc.ssl_channel_credentials(root_certificates=node.identity.cert_pem)
        self.channel = grpc.secure_channel(
            node.endpoint,
            credentials,
            options=[
                ("grpc.ssl_target_name_override", TLS_NAME),
                ("grpc.max_send_message_length", max_send_bytes),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.stub = exchange_pb2_grpc.ExchangeStub(self.channel)

    def deliver(self, *envelopes: pb.Envelope) -> list[pb.Result]:
        response: pb.DeliverResponse = self.stub.Deliver(
            pb.DeliverRequest(events=envelopes), timeout=WAIT_S
        )
        return list(response.results)

    def pull(self, request: pb.Envelope) -> list[pb.Envelope]:
        response: pb.DeliverRequest = self.stub.Pull(request, timeout=WAIT_S)
        return list(response.events)

    def close(self) -> None:
        self.channel.close()


def status(result: pb.Result) -> str:
    """The name of a result's gRPC status code ('OK' when applied)."""
    return next(code.name for code in grpc.StatusCode if code.value[0] == result.code)
