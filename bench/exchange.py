"""The exchange between two real nodes in this process, each with its own SQLite database,
Exchange server over TLS on a loopback port and delivery worker (tests/exchange_nodes.py).

    handoff_p50_ms, handoff_p99_ms   a stop-trade ticket filed on the retail node and handed
                                     to the contractor, until the contractor's signed accept
                                     is applied on the retail node (its receipt signed),
                                     one hand-off at a time.
    sync_events_per_s                signed status events from the contractor to the retail
                                     node on 50 accepted hand-offs, each applied to its
                                     ticket and receipted, durable on both sides: events per
                                     second from the moment delivery starts on a backlog of
                                     5,000 until the last receipt is stored.
    catchup_100k_s                   seconds to drain a backlog of 100,000 such events (as an
                                     outage leaves one: built while the partner was suspended),
                                     until the last receipt is stored.

Bare limit of a hand-off, measured in the same run with the same TLS and databases
of the same kind (WAL, synchronous=FULL): one gRPC round trip, two Ed25519 signatures,
two verifications and four commits — what any signed, durable, acknowledged offer
needs: the sender commits its outbox row and signs, the receiver verifies and commits
what it applies and commits its own answer and signs it, the sender verifies and
commits the receipt.

Bare limit of the event stream (sync and catch-up): the same event bodies, each signed
by the sender, streamed over one gRPC call on the same TLS, each verified by the
receiver: what a signed stream costs before anything is stored or answered.
"""

import asyncio
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc
from hdx.exchange.v1 import exchange_pb2 as pb

from bench.report import Goal, Result, Suite
from exchange.identity import TLS_NAME, Identity, verify
from node.domain.partner import LinkState, PartnerState
from node.domain.roles import Actor
from node.domain.ticket import Change, Ticket, TicketDraft
from node.store.tx import Tx
from tests.conftest import FakeClock
from tests.exchange_nodes import ChainNode, pair, start_node

HANDOFF_P50 = "handoff_p50_ms"
HANDOFF_P99 = "handoff_p99_ms"
SYNC = "sync_events_per_s"
CATCHUP = "catchup_100k_s"
SYNC_EVENTS = 5_000
CATCHUP_EVENTS = 100_000
LINKS = 50
BACKLOG_TX = 1_000
"""Backlog events written per transaction while it is built."""
STREAM_METHOD = "/hdx.bench.BareExchange/Stream"
HANDOFFS = 300
WARMUP = 20
BARE_METHOD = "/hdx.bench.BareExchange/Offer"


class WallClock(FakeClock):
    """The real time: a backoff a slow call causes ends, as it does on a real node."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@contextmanager
def _two_nodes() -> Iterator[tuple[ChainNode, ChainNode, Path]]:
    base = Path(tempfile.mkdtemp(prefix="hdx-bench-exchange-"))
    clock = WallClock()
    retail = start_node(f"sqlite:///{base / 'retail.db'}", base / "retail", "retail", "RET", clock)
    contractor = start_node(
        f"sqlite:///{base / 'contractor.db'}", base / "contractor", "contractor", "CON", clock
    )
    try:
        pair(retail, contractor)
        yield retail, contractor, base
    finally:
        retail.stop()
        contractor.stop()
        shutil.rmtree(base, ignore_errors=True)


def _accepted_signal(node: ChainNode) -> threading.Event:
    """An event set whenever a change a partner made to a ticket of node's commits."""
    accepted = threading.Event()
    partners = {partner.login for partner, _, _ in node.exchange.partners()}

    def tell(tx: Tx, actor: Actor, _ticket: Ticket, _changes: list[Change]) -> None:
        if actor.login in partners:
            tx.after_commit(accepted.set)

    node.desk.tickets.on_record.append(tell)
    return accepted


def _handoffs(retail: ChainNode, contractor: ChainNode) -> list[float]:
    """Seconds from filing to the accept applied on the retail node, per hand-off."""
    desk = retail.desk
    anna, ivan = desk.actor("anna"), desk.actor("ivan")
    accepted = _accepted_signal(retail)
    samples = []
    for turn in range(WARMUP + HANDOFFS):
        accepted.clear()
        started = time.perf_counter()
        key = desk.tickets.create(anna, TicketDraft(category="pos-down", title=f"POS {turn}")).key
        link = retail.exchange.hand_off(ivan, key, contractor.node_id).link
        while True:
            accepted.wait(30)
            accepted.clear()
            with desk.db.read() as tx:
                found = tx.links.link(link)
            if found is not None and found.state is LinkState.ACCEPTED:
                break
        samples.append(time.perf_counter() - started)
    return samples[WARMUP:]


def _sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


def _commit(conn: sqlite3.Connection, body: bytes) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO bare (body) VALUES (?)", (body,))
    conn.execute("COMMIT")


async def _bare_server(
    contractor: Identity, handlers: dict[str, "grpc.RpcMethodHandler[bytes, bytes]"]
) -> tuple[grpc.aio.Server, int]:
    """A gRPC server of bare methods on the contractor's TLS certificate."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 1 << 24)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("hdx.bench.BareExchange", handlers),)
    )
    credentials = grpc.ssl_server_credentials([(contractor.tls_key_pem, contractor.cert_pem)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


@contextmanager
def _bare_channel(contractor: Identity, port: int) -> Iterator[grpc.Channel]:
    """A channel to the bare server pinning its certificate, as nodes do."""
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(root_certificates=contractor.cert_pem),
        options=[("grpc.ssl_target_name_override", TLS_NAME)],
    )
    try:
        yield channel
    finally:
        channel.close()


@contextmanager
def _loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running on a thread of its own."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)


def _bare_handoffs(retail: Identity, contractor: Identity, base: Path) -> list[float]:
    """Seconds per bare offer: commit+sign, round trip (verify, 2 commits, sign), verify+commit."""
    receiver = _sqlite(base / "bare-contractor.db")
    sender = _sqlite(base / "bare-retail.db")
    offer = b"x" * 600

    def handle(request: bytes, _context: object) -> bytes:
        assert verify(retail.public_key, request[:64], request[64:])
        _commit(receiver, request)
        _commit(receiver, request[:32])
        return contractor.sign(request[64:]) + request[64:]

    samples = []
    with _loop() as loop, closing(sender), closing(receiver):
        method = {"Offer": grpc.unary_unary_rpc_method_handler(handle)}
        server, port = asyncio.run_coroutine_threadsafe(
            _bare_server(contractor, method), loop
        ).result(30)
        with _bare_channel(contractor, port) as channel:
            call = channel.unary_unary(BARE_METHOD, None, None)
            for _ in range(WARMUP + HANDOFFS):
                started = time.perf_counter()
                _commit(sender, offer)
                answer = call(retail.sign(offer) + offer, timeout=30)
                assert verify(contractor.public_key, answer[:64], answer[64:])
                _commit(sender, answer[:64])
                samples.append(time.perf_counter() - started)
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(30)
    return samples[WARMUP:]


def _accepted_links(retail: ChainNode, contractor: ChainNode) -> list[str]:
    """LINKS hand-offs from retail, accepted by the contractor."""
    desk = retail.desk
    links = [
        retail.exchange.hand_off(
            desk.actor("ivan"),
            desk.tickets.create(
                desk.actor("anna"), TicketDraft(category="pos-down", title="POS")
            ).key,
            contractor.node_id,
        ).link
        for _ in range(LINKS)
    ]
    _drained(retail)
    _drained(contractor)
    return links


def _backlog(contractor: ChainNode, retail: ChainNode, links: list[str], count: int) -> None:
    """count status events of the contractor's on links, held back by suspending the retail
    node as its partner; delivery starts when it is resumed."""
    exchange = contractor.exchange
    exchange.set_state(retail.node_id, PartnerState.SUSPENDED)
    statuses = [pb.WireStatus.IN_PROGRESS, pb.WireStatus.HELD]
    for start in range(0, count, BACKLOG_TX):
        with contractor.desk.db.write() as tx:
            linked = [tx.links.link(link_id) for link_id in links]
            for n in range(start, min(start + BACKLOG_TX, count)):
                link = linked[n % len(linked)]
                assert link is not None
                status = pb.StatusChange(status=statuses[(n // len(linked)) % 2])
                exchange.emit(tx, link, "status", status)


def _drain(contractor: ChainNode, retail: ChainNode) -> float:
    """Seconds from resuming delivery to the last receipt stored."""
    started = time.perf_counter()
    contractor.exchange.set_state(retail.node_id, PartnerState.ACTIVE)
    contractor.courier.wake(retail.node_id)
    _drained(contractor)
    return time.perf_counter() - started


def _drained(node: ChainNode) -> None:
    while any(waiting for _, _, waiting in node.exchange.partners()):
        time.sleep(0.02)


def _bare_stream(retail: Identity, contractor: Identity, bodies: list[bytes]) -> float:
    """Seconds to sign bodies, stream them over one gRPC call and verify each."""

    def handle(requests: Iterator[bytes], _context: object) -> bytes:
        count = 0
        for request in requests:
            assert verify(retail.public_key, request[:64], request[64:])
            count += 1
        return str(count).encode()

    with _loop() as loop:
        method = {"Stream": grpc.stream_unary_rpc_method_handler(handle)}
        server, port = asyncio.run_coroutine_threadsafe(
            _bare_server(contractor, method), loop
        ).result(30)
        with _bare_channel(contractor, port) as channel:
            stream = channel.stream_unary(STREAM_METHOD, None, None)
            started = time.perf_counter()
            answer = stream((retail.sign(body) + body for body in bodies), timeout=600)
            seconds = time.perf_counter() - started
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(30)
    assert int(answer) == len(bodies)
    return seconds


def _bodies(contractor: ChainNode, retail: ChainNode) -> list[bytes]:
    """The bodies of the events waiting in contractor's outbox for retail, as they were sent."""
    with contractor.desk.db.read() as tx:
        waiting = tx.links.outbox(retail.node_id, CATCHUP_EVENTS)
    return [pb.Envelope.FromString(event.envelope).body for event in waiting]


def _percentile(samples: Sequence[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


def _streams(selected: Sequence[str]) -> Iterator[Result]:
    for name, count in ((SYNC, SYNC_EVENTS), (CATCHUP, CATCHUP_EVENTS)):
        if name not in selected:
            continue
        print(f"exchange: a backlog of {count} status events, contractor -> retail", flush=True)
        with _two_nodes() as (retail, contractor, _base):
            links = _accepted_links(retail, contractor)
            _backlog(contractor, retail, links, count)
            bodies = _bodies(contractor, retail)
            bare = _bare_stream(contractor.exchange.identity, retail.exchange.identity, bodies)
            seconds = _drain(contractor, retail)
        if name == SYNC:
            yield Result(SYNC, count / seconds, "events/s", count / bare, Goal(ratio_min=0.5))
        else:
            yield Result(CATCHUP, seconds, "s", bare, Goal(value_max=60))


def run(selected: Sequence[str]) -> Iterator[Result]:
    if HANDOFF_P50 in selected or HANDOFF_P99 in selected:
        print(f"exchange: {HANDOFFS} hand-offs, retail -> contractor on SQLite", flush=True)
        with _two_nodes() as (retail, contractor, base):
            bare = _bare_handoffs(retail.exchange.identity, contractor.exchange.identity, base)
            value = _handoffs(retail, contractor)
        if HANDOFF_P50 in selected:
            yield Result(
                HANDOFF_P50, _percentile(value, 50), "ms", _percentile(bare, 50), Goal(ratio_max=3)
            )
        if HANDOFF_P99 in selected:
            yield Result(HANDOFF_P99, _percentile(value, 99), "ms", _percentile(bare, 99), Goal())
    yield from _streams(selected)


SUITE = Suite(names=(HANDOFF_P50, HANDOFF_P99, SYNC, CATCHUP), run=run)
