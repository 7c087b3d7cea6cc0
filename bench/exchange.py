"""The exchange between two real nodes, each with its own SQLite database, Exchange server
over TLS on a loopback port and delivery worker (tests/exchange_nodes.py). Both are set
up in this process; while a figure is measured, the partner of the node measured runs in
a process of its own (bench/chain_node.py), as nodes do, so the two never share a GIL.

    handoff_p50_ms, handoff_p99_ms   a stop-trade ticket filed on the retail node and handed
                                     to the contractor, until the contractor's signed accept
                                     is applied on the retail node (its receipt signed),
                                     one hand-off at a time, `APART_S` apart.
    sync_events_per_s                signed status events from the contractor to the retail
                                     node on 50 accepted hand-offs, each applied to its
                                     ticket and receipted, durable on both sides: events per
                                     second from the moment delivery starts on a backlog of
                                     5,000 until the last receipt is stored.
    catchup_100k_s                   seconds to drain a backlog of 100,000 such events (as an
                                     outage leaves one: built while the partner was suspended),
                                     until the last receipt is stored.

Bare limits, measured in the same run with the same TLS and databases of the same kind
(WAL, synchronous=FULL), the receiving side in a process of its own as the partner node
is (bench/bare_exchange.py). Of a hand-off: one gRPC round trip, two Ed25519 signatures,
two verifications and four commits — what any signed, durable, acknowledged offer
needs: the sender commits its outbox row and signs, the receiver verifies and commits
what it applies and commits its own answer and signs it, the sender verifies and
commits the receipt.

Bare limit of the event stream (sync and catch-up): the same event bodies, each signed
by the sender, streamed over one gRPC call on the same TLS, each verified by the
receiver: what a signed stream costs before anything is stored or answered.
"""

import queue
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import grpc
from hdx.exchange.v1 import exchange_pb2 as pb

from bench import bare_exchange
from bench.chain_node import WallClock
from bench.processes import ServerProcess
from bench.report import Goal, Result, Suite
from exchange.identity import TLS_NAME, Identity, verify
from node.domain.partner import PartnerState
from node.domain.roles import Actor
from node.domain.ticket import Change, Ticket, TicketDraft
from node.store.tx import Tx
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
HANDOFFS = 300
WARMUP = 20
APART_S = 0.002
"""The pause between two hand-offs (and two bare offers): each starts on nodes done with
the last one's traffic (the answer to the accept, the contractor storing its receipt), as
a store's tickets, which come minutes apart, do."""


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


def _accepts(node: ChainNode) -> "queue.Queue[str]":
    """The keys of node's tickets, each put once a partner's accept of it has committed."""
    accepted: queue.Queue[str] = queue.Queue()

    def tell(tx: Tx, _actor: Actor, ticket: Ticket, changes: list[Change]) -> None:
        if any(change.field == "link.accept" for change in changes):
            tx.after_commit(lambda: accepted.put(ticket.key))

    node.desk.tickets.on_record.append(tell)
    return accepted


def _handoffs(retail: ChainNode, contractor: ChainNode) -> list[float]:
    """Seconds from filing to the accept applied on the retail node, per hand-off."""
    desk = retail.desk
    anna, ivan = desk.actor("anna"), desk.actor("ivan")
    accepted = _accepts(retail)
    samples = []
    for turn in range(WARMUP + HANDOFFS):
        started = time.perf_counter()
        key = desk.tickets.create(anna, TicketDraft(category="pos-down", title=f"POS {turn}")).key
        retail.exchange.hand_off(ivan, key, contractor.node_id)
        while accepted.get(timeout=30) != key:
            pass
        samples.append(time.perf_counter() - started)
        time.sleep(APART_S)
    return samples[WARMUP:]


@contextmanager
def _bare_channel(partner: Identity, target: str) -> Iterator[grpc.Channel]:
    """A channel to the bare server at target pinning partner's certificate, as nodes do."""
    channel = grpc.secure_channel(
        target,
        grpc.ssl_channel_credentials(root_certificates=partner.cert_pem),
        options=[("grpc.ssl_target_name_override", TLS_NAME)],
    )
    try:
        yield channel
    finally:
        channel.close()


@contextmanager
def _bare_partner(partner: ChainNode, sender: Identity, base: Path) -> Iterator[ServerProcess]:
    """The bare limits served by a process of their own with partner's TLS certificate and
    key, for messages signed by sender (bench.bare_exchange)."""
    argv = [sys.executable, "-m", "bench.bare_exchange", str(partner.data_dir), partner.node_id]
    argv += [sender.public_key.hex(), str(base / f"bare-{partner.name}.db")]
    with ServerProcess(f"bare-{partner.name}", argv, base) as bare:
        yield bare


@contextmanager
def _apart(node: ChainNode, base: Path) -> Iterator[ServerProcess]:
    """node, stopped in this process, served by a process of its own at the same endpoint,
    as a partner's node runs (bench.chain_node)."""
    node.stop()
    argv = [sys.executable, "-m", "bench.chain_node", node.url, str(node.data_dir), node.name]
    with ServerProcess(node.name, [*argv, node.endpoint], base) as process:
        yield process


def _bare_handoffs(retail: ChainNode, contractor: ChainNode, base: Path) -> list[float]:
    """Seconds per bare offer: commit+sign, round trip (verify, 2 commits, sign), verify+commit."""
    offer = b"x" * 600
    me, partner = retail.identity, contractor.identity
    samples = []
    with (
        _bare_partner(contractor, me, base) as bare,
        closing(bare_exchange.sqlite(base / "bare-retail.db")) as sender,
        _bare_channel(partner, bare.target) as channel,
    ):
        call = channel.unary_unary(bare_exchange.OFFER, None, None)
        for _ in range(WARMUP + HANDOFFS):
            started = time.perf_counter()
            bare_exchange.commit(sender, offer)
            answer = call(me.sign(offer) + offer, timeout=30)
            assert verify(partner.public_key, answer[:64], answer[64:])
            bare_exchange.commit(sender, answer[:64])
            samples.append(time.perf_counter() - started)
            time.sleep(APART_S)
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


def _bare_stream(sender: ChainNode, receiver: ChainNode, bodies: list[bytes], base: Path) -> float:
    """Seconds to sign bodies, stream them over one gRPC call and verify each."""
    signer = sender.identity
    with (
        _bare_partner(receiver, signer, base) as bare,
        _bare_channel(receiver.identity, bare.target) as channel,
    ):
        stream = channel.stream_unary(bare_exchange.STREAM, None, None)
        started = time.perf_counter()
        answer = stream((signer.sign(body) + body for body in bodies), timeout=600)
        seconds = time.perf_counter() - started
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
        with _two_nodes() as (retail, contractor, base):
            links = _accepted_links(retail, contractor)
            _backlog(contractor, retail, links, count)
            bodies = _bodies(contractor, retail)
            bare = _bare_stream(contractor, retail, bodies, base)
            with _apart(retail, base):
                seconds = _drain(contractor, retail)
        if name == SYNC:
            yield Result(SYNC, count / seconds, "events/s", count / bare, Goal(ratio_min=0.5))
        else:
            yield Result(CATCHUP, seconds, "s", bare, Goal(value_max=60))


def run(selected: Sequence[str]) -> Iterator[Result]:
    if HANDOFF_P50 in selected or HANDOFF_P99 in selected:
        print(f"exchange: {HANDOFFS} hand-offs, retail -> contractor on SQLite", flush=True)
        with _two_nodes() as (retail, contractor, base):
            bare = _bare_handoffs(retail, contractor, base)
            with _apart(contractor, base):
                value = _handoffs(retail, contractor)
        if HANDOFF_P50 in selected:
            yield Result(
                HANDOFF_P50, _percentile(value, 50), "ms", _percentile(bare, 50), Goal(ratio_max=3)
            )
        if HANDOFF_P99 in selected:
            yield Result(HANDOFF_P99, _percentile(value, 99), "ms", _percentile(bare, 99), Goal())
    yield from _streams(selected)


SUITE = Suite(names=(HANDOFF_P50, HANDOFF_P99, SYNC, CATCHUP), run=run)
