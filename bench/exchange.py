"""The exchange between two real nodes in this process, each with its own SQLite database,
Exchange server over TLS on a loopback port and delivery worker (tests/exchange_nodes.py).

    handoff_p50_ms, handoff_p99_ms   a stop-trade ticket filed on the retail node and handed
                                     to the contractor, until the contractor's signed accept
                                     is applied on the retail node (its receipt signed),
                                     one hand-off at a time.

Bare limit of a hand-off, measured in the same run with the same TLS and databases
of the same kind (WAL, synchronous=FULL): one gRPC round trip, two Ed25519 signatures,
two verifications and four commits — what any signed, durable, acknowledged offer
needs: the sender commits its outbox row and signs, the receiver verifies and commits
what it applies and commits its own answer and signs it, the sender verifies and
commits the receipt.
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
from pathlib import Path

import grpc

from bench.report import Goal, Result, Suite
from exchange.identity import TLS_NAME, Identity, verify
from node.domain.partner import LinkState
from node.domain.ticket import TicketDraft
from tests.conftest import FakeClock
from tests.exchange_nodes import ChainNode, pair, start_node

HANDOFF_P50 = "handoff_p50_ms"
HANDOFF_P99 = "handoff_p99_ms"
HANDOFFS = 300
WARMUP = 20
BARE_METHOD = "/hdx.bench.BareExchange/Offer"


@contextmanager
def _two_nodes() -> Iterator[tuple[ChainNode, ChainNode, Path]]:
    base = Path(tempfile.mkdtemp(prefix="hdx-bench-exchange-"))
    clock = FakeClock()
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
    """An event set whenever node commits something a partner sent it."""
    accepted = threading.Event()
    heard = node.exchange.heard

    def tell(partner: str) -> None:
        accepted.set()
        heard(partner)

    node.exchange.heard = tell
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


def _bare_handoffs(retail: Identity, contractor: Identity, base: Path) -> list[float]:
    """Seconds per bare offer: commit+sign, round trip (verify, 2 commits, sign), verify+commit."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    receiver = _sqlite(base / "bare-contractor.db")
    offer = b"x" * 600

    def handle(request: bytes, _context: object) -> bytes:
        assert verify(retail.public_key, request[:64], request[64:])
        _commit(receiver, request)
        _commit(receiver, request[:32])
        return contractor.sign(request[64:]) + request[64:]

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "hdx.bench.BareExchange", {"Offer": grpc.unary_unary_rpc_method_handler(handle)}
                ),
            )
        )
        credentials = grpc.ssl_server_credentials([(contractor.tls_key_pem, contractor.cert_pem)])
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    sender = _sqlite(base / "bare-retail.db")
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(root_certificates=contractor.cert_pem),
        options=[("grpc.ssl_target_name_override", TLS_NAME)],
    )
    call = channel.unary_unary(BARE_METHOD, None, None)
    samples = []
    with closing(sender), closing(receiver):
        for _ in range(WARMUP + HANDOFFS):
            started = time.perf_counter()
            _commit(sender, offer)
            answer = call(retail.sign(offer) + offer, timeout=30)
            assert verify(contractor.public_key, answer[:64], answer[64:])
            _commit(sender, answer[:64])
            samples.append(time.perf_counter() - started)
        channel.close()
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
    return samples[WARMUP:]


def _percentile(samples: Sequence[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


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


SUITE = Suite(names=(HANDOFF_P50, HANDOFF_P99), run=run)
