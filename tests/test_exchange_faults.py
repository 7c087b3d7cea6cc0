"""Faults the exchange must ride out, with real nodes over TLS on loopback.

A partner down for hours and back; a node restarted after its partner came back; a partner
that lost events (restored from a backup); a backlog larger than one gRPC message; two
delivery workers of one node over one PostgreSQL; a node taking events from two partners
while its engineers change the same tickets; the same batch in racing calls; a node
stopped mid-call; its database going away and coming back; a network that drops, delays
and cuts connections (a TCP proxy between the nodes). Through all of them every event
arrives once, in order, on each link, and no change to a ticket is applied twice.
"""

import asyncio
import itertools
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hdx.exchange.v1 import exchange_pb2 as pb
from sqlalchemy.engine import make_url

from exchange.delivery import BACKOFF_CAP, BACKOFF_FIRST
from exchange.envelope import MAX_MESSAGE_BYTES
from node.domain.partner import Delivery, LinkState, PartnerRole, Terms
from node.domain.ticket import TicketDraft, Visibility
from node.domain.validation import TEXT_MAX
from tests.conftest import BACKENDS, FakeClock
from tests.exchange_nodes import (
    WAIT_S,
    ChainNode,
    Wire,
    chain,
    comment,
    delivered,
    invite_of,
    make_identity,
    offer,
    pair,
    serve,
    start_node,
    status,
    tick,
    wait_for,
)
from tests.postgres import PostgresServer

_names = itertools.count()
_said = itertools.count()
PAIR = {"retail": "RET", "contractor": "CON"}


@dataclass
class Net:
    """Nodes serving on one fake clock (a test may stop and restart any of them), and how
    to back up and restore a stopped node's database."""

    nodes: dict[str, ChainNode]
    clock: FakeClock
    backup: Callable[[ChainNode], None]
    restore: Callable[[ChainNode], None]

    def __getitem__(self, name: str) -> ChainNode:
        return self.nodes[name]

    def restart(self, name: str) -> ChainNode:
        self.nodes[name] = self.nodes[name].restart()
        return self.nodes[name]

    def settle(self, timeout: float = WAIT_S) -> None:
        """Waits until every node has every receipt it waits for, moving the clock on past
        any backoff the test's faults caused."""
        nodes = list(self.nodes.values())
        deadline = time.monotonic() + timeout
        while not all(delivered(node) for node in nodes):
            assert time.monotonic() < deadline, "timed out waiting for every receipt"
            tick(self.clock, nodes, BACKOFF_CAP)
            time.sleep(0.2)


def start(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, names: dict[str, str]
) -> Net:
    """Nodes on backend, unpaired: their names and key prefixes."""
    clock = FakeClock()
    urls = {}
    server: PostgresServer | None = None
    if backend == "postgres":
        server = request.getfixturevalue("postgres")
    for name in names:
        if server is None:
            urls[name] = f"sqlite:///{tmp_path / name}.db"
        else:
            urls[name] = server.create_database(f"f_{name}_{next(_names)}")

    def files(node: ChainNode, suffix: str) -> list[tuple[Path, Path]]:
        """The node's SQLite files (the database, its WAL if any), each with its copy."""
        db = tmp_path / f"{node.name}.db"
        return [
            (db.with_name(db.name + end), tmp_path / f"{node.name}{suffix}{end}")
            for end in ("", "-wal")
        ]

    def backup(node: ChainNode) -> None:
        if server is None:
            for path, copy in files(node, ".backup"):
                if path.exists():
                    shutil.copy(path, copy)
        else:
            server.create_database(f"{_dbname(node)}_backup", template=_dbname(node))

    def restore(node: ChainNode) -> None:
        if server is None:
            for path, copy in files(node, ".backup"):
                path.unlink(missing_ok=True)
                if copy.exists():
                    shutil.copy(copy, path)
        else:
            server.execute(f"DROP DATABASE {_dbname(node)}")
            server.create_database(_dbname(node), template=f"{_dbname(node)}_backup")

    nodes = {
        name: start_node(urls[name], tmp_path / name, name, prefix, clock)
        for name, prefix in names.items()
    }
    return Net(nodes, clock, backup, restore)


def _dbname(node: ChainNode) -> str:
    name = make_url(node.url).database
    assert name is not None
    return name


Launch = Callable[[str, dict[str, str]], Net]


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Launch]:
    """Starts nodes on a backend (their names and key prefixes); stops them after the test."""
    started: list[Net] = []

    def _launch(backend: str, names: dict[str, str]) -> Net:
        started.append(start(request, tmp_path, backend, names))
        return started[-1]

    yield _launch
    for net in started:
        for node in net.nodes.values():
            node.stop()


@pytest.fixture(params=BACKENDS)
def net(request: pytest.FixtureRequest, launch: Launch) -> Net:
    """A retail node and its contractor, paired."""
    started = launch(request.param, PAIR)
    pair(started["retail"], started["contractor"])
    return started


def hand_off(client: ChainNode, contractor: ChainNode) -> str:
    """A new ticket of client's handed to contractor; its link."""
    desk = client.desk
    key = desk.tickets.create(
        desk.actor("anna"), TicketDraft(category="pos-down", title="POS dead")
    ).key
    desk.tickets.transition(desk.actor("ivan"), key, "start", "")
    return client.exchange.hand_off(desk.actor("ivan"), key, contractor.node_id).link


def accepted(client: ChainNode, *links: str) -> None:
    wait_for(
        "the accepts", lambda: all(state(client, link) is LinkState.ACCEPTED for link in links)
    )


def state(node: ChainNode, link: str) -> LinkState | None:
    with node.desk.db.read() as tx:
        found = tx.links.link(link)
    return None if found is None else found.state


def key_on(node: ChainNode, link: str) -> str:
    with node.desk.db.read() as tx:
        found = tx.links.link(link)
        assert found is not None and found.ticket_id is not None
        return tx.key(found.ticket_id)


def say(node: ChainNode, link: str, text: str = "") -> str:
    """A public comment of node's engineer on its ticket of link; the text said."""
    text = text or f"note {next(_said)}"
    node.desk.tickets.comment(node.desk.actor("ivan"), key_on(node, link), text, Visibility.PUBLIC)
    return text


def comments(node: ChainNode, link: str, author: str | None = None) -> list[str]:
    """The comments on node's ticket of link (by author only, if given)."""
    desk = node.desk
    found = desk.tickets.comments(desk.actor("ivan"), key_on(node, link))
    return [c.body for c in found if author in (None, c.author)]


def arrives(node: ChainNode, link: str, text: str) -> None:
    wait_for(f"{text!r} on {node.name}", lambda: text in comments(node, link))


def delivery(node: ChainNode, partner: ChainNode) -> tuple[Delivery, int]:
    """Where node's delivery to partner stands, and how many events wait for it."""
    return next((d, n) for p, d, n in node.exchange.partners() if p.node_id == partner.node_id)


def wait_failures(node: ChainNode, partner: ChainNode, count: int) -> None:
    wait_for(f"{count} failed calls", lambda: delivery(node, partner)[0].failures == count)


def chains(node: ChainNode, link: str) -> dict[bool, list[tuple[int, bytes]]]:
    """Each direction of node's log of link (outbound: True) as (seq, digest), as logged."""
    with node.desk.db.read() as tx:
        events = tx.links.log_of(link)
    return {out: [(e.seq, e.digest) for e in events if e.outbound is out] for out in (True, False)}


def assert_same_log(one: ChainNode, other: ChainNode, link: str) -> None:
    """Both nodes logged each event of link once, in order, with the same bytes, and each
    holds the other's engineer's comments once, in the order written."""
    mine, theirs = chains(one, link), chains(other, link)
    assert mine[True] == theirs[False]
    assert mine[False] == theirs[True]
    for direction in mine.values():
        assert [seq for seq, _ in direction] == list(range(1, len(direction) + 1))
    for writer, reader in ((one, other), (other, one)):
        assert comments(writer, link, "ivan") == comments(reader, link, writer.node_id)


def at_once(work: Callable[..., object], arguments: list[tuple[Any, ...]]) -> None:
    """Runs work with each of the arguments in threads of its own, started together; any
    exception of theirs fails the test."""
    ready = threading.Barrier(len(arguments))
    failed: list[BaseException] = []

    def run(*args: Any) -> None:
        ready.wait()
        try:
            work(*args)
        except BaseException as error:
            failed.append(error)

    threads = [threading.Thread(target=run, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []


def counting(node: ChainNode) -> tuple[Counter[tuple[str, int]], list[pb.Result]]:
    """Counts every event node is handed (link, seq) and keeps every refusal it answers,
    around its real `receive`."""
    seen: Counter[tuple[str, int]] = Counter()
    refused: list[pb.Result] = []
    receive = node.exchange.receive

    def counted(envelopes: Sequence[pb.Envelope]) -> list[pb.Result]:
        for envelope in envelopes:
            body = pb.Body.FromString(envelope.body)
            seen[body.link, body.seq] += 1
        results = receive(envelopes)
        refused.extend(result for result in results if result.code)
        return results

    node.exchange.receive = counted  # type: ignore[method-assign]
    return seen, refused


def test_a_partner_down_for_hours_gets_the_backlog_at_once_when_it_is_back(net: Net) -> None:
    retail, clock = net["retail"], net.clock
    first = hand_off(retail, net["contractor"])
    accepted(retail, first)
    net["contractor"].stop()

    backlog = [say(retail, first)]
    wait_failures(retail, net["contractor"], 1)
    went_down = clock.now()
    delays = []
    for failures in range(1, 12):
        now, (down, waiting) = clock.now(), delivery(retail, net["contractor"])
        assert (down.failures, down.down_since, waiting) == (failures, went_down, failures)
        assert down.retry_at is not None
        delays.append(down.retry_at - now)
        backlog.append(say(retail, first))
        tick(clock, [retail], down.retry_at - now)
        wait_failures(retail, net["contractor"], failures + 1)
    assert delays == [min(BACKOFF_FIRST * 2**n, BACKOFF_CAP) for n in range(11)]
    later = [hand_off(retail, net["contractor"]) for _ in range(2)]
    tick(clock, [retail], timedelta(hours=3))
    wait_failures(retail, net["contractor"], 13)
    down, waiting = delivery(retail, net["contractor"])
    assert (down.retry_at, down.down_since, waiting) == (clock.now() + BACKOFF_CAP, went_down, 14)

    back_at = clock.now()
    contractor = net.restart("contractor")

    wait_for("the backlog", lambda: delivered(retail), timeout=10)
    accepted(retail, *later)
    assert clock.now() == back_at
    assert comments(contractor, first) == backlog
    for link in (first, *later):
        assert_same_log(retail, contractor, link)
    up, _ = delivery(retail, contractor)
    assert (up.failures, up.retry_at, up.down_since) == (0, None, None)


def test_a_node_restarted_after_its_partner_came_back_sends_its_backlog_at_once(
    net: Net,
) -> None:
    retail, clock = net["retail"], net.clock
    link = hand_off(retail, net["contractor"])
    accepted(retail, link)
    net["contractor"].stop()
    backlog = [say(retail, link)]
    for failures in range(1, 10):
        wait_failures(retail, net["contractor"], failures)
        tick(clock, [retail], BACKOFF_CAP)
    wait_failures(retail, net["contractor"], 10)
    backlog.append(say(retail, link))
    retail.stop()
    contractor = net.restart("contractor")
    assert delivery(retail, contractor)[0].retry_at == clock.now() + BACKOFF_CAP

    retail = net.restart("retail")

    wait_for("the backlog", lambda: delivered(retail), timeout=10)
    assert comments(contractor, link) == backlog


def test_events_a_partner_lost_are_sent_again_from_the_gap_it_reports(net: Net) -> None:
    retail = net["retail"]
    link = hand_off(retail, net["contractor"])
    accepted(retail, link)
    said = [say(retail, link)]
    wait_for("the first note", lambda: comments(net["contractor"], link) == said)
    net["contractor"].stop()
    net.backup(net["contractor"])
    contractor = net.restart("contractor")
    said += [say(retail, link), say(retail, link)]
    wait_for("the receipts", lambda: delivered(retail))
    assert comments(contractor, link) == said

    retail.stop()
    contractor.stop()
    net.restore(contractor)
    contractor = net.restart("contractor")
    assert comments(contractor, link) == said[:1], "the backup lost two notes"
    retail = net.restart("retail")
    seen, refused = counting(contractor)
    said.append(say(retail, link))

    wait_for("the lost notes", lambda: comments(contractor, link) == said)
    wait_for("the receipts", lambda: delivered(retail))
    assert [(status(r), r.expected_seq) for r in refused] == [("FAILED_PRECONDITION", 3)]
    assert sorted(seen.values()) == [1, 1, 2], "the last note twice: the gap, then in order"
    assert_same_log(retail, contractor, link)
    assert delivery(retail, contractor)[0].failures == 0


@pytest.mark.timeout(300)
def test_a_backlog_larger_than_one_message_is_sent_in_several(net: Net) -> None:
    retail = net["retail"]
    link = hand_off(retail, net["contractor"])
    accepted(retail, link)
    net["contractor"].stop()
    page = "\N{BREAD}" * (TEXT_MAX - 8)
    count = MAX_MESSAGE_BYTES // len(page.encode()) + 10
    said = [say(retail, link, f"{n} {page}") for n in range(count)]

    contractor = net.restart("contractor")

    wait_for("the backlog", lambda: delivered(retail), timeout=240)
    assert comments(contractor, link) == said
    assert_same_log(retail, contractor, link)


class Proxy:
    """A TCP proxy on a loopback port, on an event loop thread of its own. When lossy, it
    drops some connections at once, delays every chunk, and cuts the others after a random
    number of bytes or seconds (mid-call, at times after the call was applied and before
    its answer got back). While it holds, it takes connections and passes nothing on.

    Args:
        target: host:port it forwards to.
        seed: of its choices (one generator per connection, from the seed and its number).
    """

    DROP = 0.15
    CUT_BYTES: tuple[int | None, ...] = (5_000, 50_000, None)
    """A connection is cut after up to one of these many bytes (both ways): soon, after a
    few calls, or never (so that a large batch gets through at times)."""
    LIFE_S = (0.05, 1.0)
    """Whatever its budget, a connection is cut after a while in this range."""
    DELAY_S = 0.01

    def __init__(self, target: str, seed: int = 0, *, lossy: bool = True) -> None:
        host, port = target.rsplit(":", 1)
        self.target = host, int(port)
        self.seed = seed
        self.lossy = lossy
        self.holding = False
        self.opened = self.held = self.cuts = 0
        self._live: set[asyncio.Task[None]] = set()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop
        ).result(WAIT_S)
        self.endpoint = f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        self.opened += 1
        rng = random.Random(self.seed * 1_000_003 + self.opened)
        writers = [client_out]
        task = asyncio.current_task()
        assert task is not None
        self._live.add(task)
        try:
            if self.holding:
                self.held += 1
                while await client_in.read(16_384):
                    pass
                return
            if self.lossy and rng.random() < self.DROP:
                return
            server_in, server_out = await asyncio.open_connection(*self.target)
            writers.append(server_out)
            most = rng.choice(self.CUT_BYTES) if self.lossy else None
            budget = [-1 if most is None else rng.randrange(100, most)]

            async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
                while data := await source.read(16_384):
                    if self.lossy:
                        await asyncio.sleep(rng.uniform(0, self.DELAY_S))
                    if budget[0] >= 0:
                        budget[0] -= len(data)
                        if budget[0] < 0:
                            return
                    sink.write(data)
                    await sink.drain()

            pumps = [
                asyncio.ensure_future(pump(client_in, server_out)),
                asyncio.ensure_future(pump(server_in, client_out)),
            ]
            try:
                life_s = rng.uniform(*self.LIFE_S) if self.lossy else None
                await asyncio.wait(pumps, timeout=life_s, return_when=asyncio.FIRST_COMPLETED)
                self.cuts += budget[0] < 0 or not any(pumping.done() for pumping in pumps)
            finally:
                for pumping in pumps:
                    pumping.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except OSError:
            pass
        finally:
            self._live.discard(task)
            for writer in writers:
                writer.close()

    def hold(self, holding: bool) -> None:
        """Starts holding (every open connection cut, new ones held) or stops."""
        self.holding = holding
        if holding:
            self._run(self._sever())

    async def _sever(self) -> None:
        for task in list(self._live):
            task.cancel()
        await asyncio.gather(*self._live, return_exceptions=True)

    def stop(self) -> None:
        async def _stop() -> None:
            self.server.close()
            await self._sever()
            await self.server.wait_closed()

        self._run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self.loop).result(WAIT_S)


@pytest.fixture
def proxies() -> Iterator[list["Proxy"]]:
    """Proxies a test starts, stopped after it."""
    started: list[Proxy] = []
    yield started
    for proxy in started:
        proxy.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("backend", "seed"), [(b, s) for b in BACKENDS for s in (1, 2)])
def test_through_a_proxy_that_drops_delays_and_cuts_every_event_arrives_once_in_order(
    launch: Launch, proxies: list[Proxy], backend: str, seed: int
) -> None:
    lossy = launch(backend, PAIR)
    retail, contractor = lossy["retail"], lossy["contractor"]
    proxies += [Proxy(contractor.endpoint, seed), Proxy(retail.endpoint, -seed)]
    pair(retail, contractor, via=(proxies[0].endpoint, proxies[1].endpoint))
    rng = random.Random(seed)
    links = [hand_off(retail, contractor)]
    for step in itertools.count():
        if step >= 60 and sum(proxy.cuts for proxy in proxies) >= 3:
            break
        assert step < 3_000, "the proxies cut fewer than 3 connections while the nodes talked"
        choice, link = rng.random(), rng.choice(links)
        if choice < 0.1:
            links.append(hand_off(retail, contractor))
        elif choice < 0.55:
            say(retail, link, f"retail {step} " + "r" * rng.randrange(3000))
        elif state(contractor, link) is not None:
            say(contractor, link, f"contractor {step} " + "c" * rng.randrange(3000))
        if step % 10 == 0:
            tick(lossy.clock, [retail, contractor], BACKOFF_CAP)
    lossy.settle(timeout=240)

    for link in links:
        assert_same_log(retail, contractor, link)


def test_a_node_stopped_mid_call_gives_back_its_lease_to_the_next_process(
    launch: Launch, proxies: list[Proxy]
) -> None:
    stalled = launch(BACKENDS[0], PAIR)
    retail, contractor = stalled["retail"], stalled["contractor"]
    proxies.append(Proxy(contractor.endpoint, lossy=False))
    pair(retail, contractor, via=(proxies[0].endpoint, retail.endpoint))
    link = hand_off(retail, contractor)
    accepted(retail, link)
    proxies[0].hold(True)
    said = say(retail, link)
    wait_for("a call in flight", lambda: proxies[0].held > 0)
    retail.stop()
    proxies[0].hold(False)

    stalled.restart("retail")

    arrives(contractor, link, said)


@pytest.mark.skipif("postgres" not in BACKENDS, reason="several processes need PostgreSQL")
def test_two_delivery_workers_of_one_node_over_postgres_send_each_event_once(
    launch: Launch,
) -> None:
    two = launch("postgres", PAIR)
    first, contractor = two["retail"], two["contractor"]
    second = two.nodes["retail, again"] = serve(first.url, first.data_dir, first.name, two.clock)
    pair(first, contractor)
    seen, refused = counting(contractor)
    links = [hand_off(process, contractor) for process in (first, second) * 3]
    accepted(first, *links)

    def chatter(process: ChainNode) -> None:
        for n in range(15):
            say(process, links[n % len(links)])

    at_once(chatter, [(first,), (second,)])
    wait_for("every receipt", lambda: delivered(first) and delivered(second))
    for process in (second, first, second):
        arrives(contractor, links[0], say(process, links[0]))

    assert refused == []
    assert set(seen.values()) == {1}, "an event was sent twice"
    assert len(seen) == len(links) + 30 + 3
    for link in links:
        assert_same_log(first, contractor, link)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_node_takes_events_from_two_partners_while_its_engineers_change_the_same_tickets(
    launch: Launch, backend: str
) -> None:
    three = launch(backend, {**PAIR, "other": "OTH"})
    retail, contractor, other = three["retail"], three["contractor"], three["other"]
    pair(retail, contractor)
    pair(other, contractor)
    links = {
        name: [hand_off(three[name], contractor) for _ in range(2)] for name in ("retail", "other")
    }
    for name, handed in links.items():
        accepted(three[name], *handed)
    refusals = [counting(node)[1] for node in three.nodes.values()]

    def chatter(node: ChainNode, on: list[str]) -> None:
        for n in range(30):
            say(node, on[n % len(on)])

    at_once(
        chatter,
        [
            (retail, links["retail"]),
            (other, links["other"]),
            (contractor, links["retail"] + links["other"]),
        ],
    )
    wait_for("every receipt", lambda: all(delivered(node) for node in three.nodes.values()))

    assert refusals == [[], [], []]
    for name, handed in links.items():
        for link in handed:
            assert_same_log(three[name], contractor, link)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_batch_in_racing_calls_is_applied_once_with_one_receipt_per_event(
    launch: Launch, tmp_path: Path, backend: str
) -> None:
    alone = launch(backend, {"contractor": "CON"})
    contractor = alone["contractor"]
    client = make_identity(tmp_path / "client", "client-node", alone.clock)
    contractor.exchange.add_partner(invite_of(client), PartnerRole.CLIENT, Terms())
    notes = [f"c{n}" for n in range(20)]
    batch = chain(
        client,
        "r" * 32,
        contractor.node_id,
        [("offer", offer("Racing", "CLI-1")), *[("comment", comment(n)) for n in notes]],
    )
    wires = [Wire(contractor) for _ in range(4)]
    answers: list[list[pb.Result]] = []
    at_once(lambda wire: answers.append(wire.deliver(*batch)), [(wire,) for wire in wires])
    for wire in wires:
        wire.close()

    assert [[status(r) for r in answer] for answer in answers] == [["OK"] * len(batch)] * 4
    receipts = {tuple(r.receipt.SerializeToString() for r in answer) for answer in answers}
    assert len(receipts) == 1
    assert comments(contractor, "r" * 32) == notes


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test alone, since it stops it."""
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL tests are switched off (HDX_TEST_DB)")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.destroy()


def test_delivery_goes_on_after_the_database_went_away_and_came_back(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    clock = FakeClock()
    retail, contractor = (
        start_node(own_postgres.create_database(name), tmp_path / name, name, prefix, clock)
        for name, prefix in PAIR.items()
    )
    try:
        pair(retail, contractor)
        link = hand_off(retail, contractor)
        accepted(retail, link)

        own_postgres.stop()
        tick(clock, [retail, contractor], BACKOFF_FIRST)
        time.sleep(1)
        own_postgres.start()

        arrives(contractor, link, say(retail, link))
        arrives(retail, link, say(contractor, link))
    finally:
        retail.stop()
        contractor.stop()
