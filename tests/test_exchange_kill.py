"""Kill -9 of real node processes, and restarts of their PostgreSQL, in the middle of a
stream of hand-offs and updates: once everything is back and both outboxes are empty,
every event crossed once and in order, every chain and receipt verifies, and every change
on one side shows exactly once on the other.

Two `hdx serve` processes, a retail node and its contractor, set up and paired with the
CLI (tests/node_processes.py), serve the module; each test plays a stream of its own on
them. One thread plays the retail desk: anna files tickets; ivan starts each, hands it
to the contractor and comments on it, then resolves what comes back resolved, and anna
confirms. Another plays the contractor's engineer olga: she starts each ticket handed to
her, comments and resolves it. A call that fails because the node (or its database) is
away is tried again as a client would: a create with the same request id, anything else
once the client saw that the failed call did not take effect. Meanwhile the test kills
a node chosen by a seeded RNG at moments it draws and starts it again on the same data
directory and ports, or restarts the nodes' PostgreSQL under them.
"""

import itertools
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from cli.config import load
from cli.wiring import Node, open_node
from node.api.client import ApiError, HelpDeskClient
from node.domain.partner import LinkState, LoggedEvent
from node.domain.ticket import TicketDraft, TicketQuery
from tests.conftest import BACKENDS
from tests.exchange_nodes import wait_for
from tests.node_processes import NodeProcess, init_node, ok, pair
from tests.postgres import PostgresServer

T = TypeVar("T")
TICKETS = 20
"""Tickets each stream hands off at least: it goes on until the last fault has struck."""
STREAM_S = 60.0
"""The longest a stream may take, faults and restarts included."""
RETRY_PAUSE_S = 0.05
POLL_S = 0.05
OUT = ["offer", "comment", "confirmed"]
"""What the retail node sends on each link, in order."""
BACK = ["accept", "status", "comment", "resolved"]
"""What the contractor sends back on each link, in order."""
KILLS = [("sqlite", 1), ("sqlite", 2), ("sqlite", 3), ("postgres", 4)]
"""(backend, seed) of each kill test."""
KILLS_PER_STREAM = 2


# -- the desks ----------------------------------------------------------------------------


class Caller:
    """One user calling one node's API, as a careful client does: a call that fails
    UNAVAILABLE (the node is down, or its database) is tried again on a new connection
    until the node answers, unless `took` then shows that the failed call took effect.

    Args:
        failures: where to note each failed call.
    """

    def __init__(self, node: NodeProcess, login: str, failures: list[str]) -> None:
        self.node = node
        self.login = login
        self.failures = failures
        self._client: HelpDeskClient | None = None

    def call(
        self,
        attempt: Callable[[HelpDeskClient], T],
        took: Callable[[HelpDeskClient], T | None] = lambda _client: None,
    ) -> T:
        """attempt's answer, or took's once an attempt failed and took says it took effect."""
        failed = False
        deadline = time.monotonic() + STREAM_S
        while True:
            client = self._client = self._client or self.node.client(self.login)
            try:
                if failed:
                    done = took(client)
                    if done is not None:
                        return done
                return attempt(client)
            except ApiError as error:
                if error.code != "UNAVAILABLE" or time.monotonic() > deadline:
                    raise
                self.failures.append(f"{self.node.name} {self.login}: {error}")
                self.close()  # a new channel next time, not gRPC's reconnect backoff
                failed = True
                time.sleep(RETRY_PAUSE_S)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def in_status(key: str, *statuses: str) -> Callable[[HelpDeskClient], object | None]:
    """Whether ticket key is in one of statuses: the ticket if it is."""

    def check(client: HelpDeskClient) -> object | None:
        ticket = client.get(key).ticket
        return ticket if ticket.status in statuses else None

    return check


def commented(key: str, body: str) -> Callable[[HelpDeskClient], object | None]:
    """Whether ticket key has a comment body: the comment if it has."""

    def check(client: HelpDeskClient) -> object | None:
        return next((c for c in client.comments(key) if c.body == body), None)

    return check


def handed(key: str) -> Callable[[HelpDeskClient], object | None]:
    """Whether ticket key is handed to a partner: the ticket if it is."""

    def check(client: HelpDeskClient) -> object | None:
        ticket = client.get(key).ticket
        return ticket if ticket.links else None

    return check


def file_and_hand_off(anna: Caller, ivan: Caller, contractor_id: str, request_id: str) -> str:
    """anna files a ticket, ivan starts it, hands it to the contractor and comments on it;
    returns its key."""
    draft = TicketDraft(category="pos-down", title=f"Till {request_id}", request_id=request_id)
    key = anna.call(lambda c: c.create(draft).ticket.key)
    ivan.call(lambda c: c.transition(key, "start"), in_status(key, "in_progress"))
    ivan.call(lambda c: c.hand_off(key, contractor_id, "till 3"), handed(key))
    note = f"{key}: the till shows error 7"
    ivan.call(lambda c: c.comment(key, note), commented(key, note))
    return key


def close_if_resolved(anna: Caller, ivan: Caller, key: str) -> bool:
    """Once the contractor resolved ticket key (it is back in progress), ivan resolves it
    and anna confirms; whether it is closed."""
    if ivan.call(lambda c: c.get(key).ticket.status) != "in_progress":
        return False
    ivan.call(lambda c: c.transition(key, "resolve"), in_status(key, "resolved"))
    anna.call(lambda c: c.transition(key, "confirm"), in_status(key, "closed"))
    return True


def retail_desk(
    retail: NodeProcess,
    contractor_id: str,
    stream: int,
    faulted: threading.Event,
    failures: list[str],
) -> list[str]:
    """Files tickets one after another, at least TICKETS and until faulted is set, and hands
    each to the contractor, closing those that come back resolved meanwhile; returns their
    keys once all are closed."""
    anna, ivan = Caller(retail, "anna", failures), Caller(retail, "ivan", failures)
    keys: list[str] = []
    closed: set[str] = set()

    def close_resolved() -> None:
        closed.update(k for k in keys if k not in closed and close_if_resolved(anna, ivan, k))

    deadline = time.monotonic() + STREAM_S
    try:
        for n in itertools.count():
            if n >= TICKETS and faulted.is_set():
                break
            keys.append(file_and_hand_off(anna, ivan, contractor_id, f"{stream}-{n}"))
            close_resolved()
        while len(closed) < len(keys):
            assert time.monotonic() < deadline, f"retail closed only {sorted(closed)}"
            time.sleep(POLL_S)
            close_resolved()
    finally:
        anna.close()
        ivan.close()
    return keys


def work_on(olga: Caller, key: str) -> None:
    """olga starts ticket key, comments on it and resolves it."""
    olga.call(lambda c: c.transition(key, "start"), in_status(key, "in_progress"))
    note = f"{key}: a new board is on its way"
    olga.call(lambda c: c.comment(key, note), commented(key, note))
    olga.call(lambda c: c.transition(key, "resolve"), in_status(key, "resolved", "closed"))


def contractor_desk(
    contractor: NodeProcess, retail: Future[list[str]], failures: list[str]
) -> list[str]:
    """Works on each ticket handed to the contractor until the retail desk is done; returns
    their keys."""
    olga = Caller(contractor, "olga", failures)
    new = TicketQuery(statuses=("new",), limit=100)
    resolved: list[str] = []
    deadline = time.monotonic() + STREAM_S
    try:
        while not retail.done():
            assert time.monotonic() < deadline, f"the contractor resolved only {resolved}"
            views, _ = olga.call(lambda c: c.list_tickets(new))
            for view in views:
                work_on(olga, view.ticket.key)
                resolved.append(view.ticket.key)
            if not views:
                time.sleep(POLL_S)
    finally:
        olga.close()
    return resolved


# -- the stream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """A stream the desks played to its end.

    Attributes:
        keys: the retail tickets it handed off.
        failures: the calls that failed and were tried again.
        logs_from: where each node's serve log stood when the stream began, by name.
    """

    keys: list[str]
    failures: list[str]
    logs_from: dict[str, int]


@dataclass
class Pair:
    """A retail node and its contractor as `hdx serve` processes, paired with the CLI."""

    retail: NodeProcess
    contractor: NodeProcess
    streams: Iterator[int] = field(default_factory=itertools.count)

    @property
    def nodes(self) -> tuple[NodeProcess, NodeProcess]:
        return self.retail, self.contractor

    def stream(self, fault: Callable[[], None], times: int) -> Stream:
        """Runs both desks, calling fault (which draws its moment and does its harm) times
        while they work (fewer if a desk fails first)."""
        failures: list[str] = []
        logs_from = {node.name: node.log_path.stat().st_size for node in self.nodes}
        faulted = threading.Event()
        with ThreadPoolExecutor(max_workers=2) as pool:
            retail = pool.submit(
                retail_desk,
                self.retail,
                self.contractor.node_id,
                next(self.streams),
                faulted,
                failures,
            )
            contractor = pool.submit(contractor_desk, self.contractor, retail, failures)
            try:
                for _ in range(times):
                    if retail.done():
                        break
                    fault()
            finally:
                faulted.set()
            keys, _ = retail.result(), contractor.result()
        return Stream(keys, failures, logs_from)

    def logged(self, stream: Stream) -> str:
        """What both nodes logged since stream began."""
        logs = []
        for node in self.nodes:
            with node.log_path.open() as log:
                log.seek(stream.logs_from[node.name])
                logs.append(log.read())
        return "".join(logs)


def start_serving(*nodes: NodeProcess) -> None:
    """Starts those of nodes that do not serve, side by side."""
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        for started in [pool.submit(node.start) for node in nodes if node.server is None]:
            started.result()


# -- what must hold afterwards ---------------------------------------------------------------


def waiting(node: Node) -> int:
    """How many of node's events wait for a partner's receipt."""
    with node.db.read() as tx:
        return sum(tx.links.outbox_size(p.node_id) for p in tx.links.partners())


def one_way(log: list[LoggedEvent], outbound: bool) -> set[tuple[int, str, bytes, bytes | None]]:
    """The events of a link's log sent (outbound) or received, with their receipts."""
    return {(e.seq, e.kind, e.digest, e.receipt) for e in log if e.outbound is outbound}


def check_links(ours: Node, theirs: Node, keys: list[str]) -> dict[str, str]:
    """Each retail ticket's link and the contractor's copy of it hold the same events, each
    once, with the same signed receipt on both sides; each direction's sequence numbers
    run 1..n in the order logged. Returns the contractor's key of each retail key."""
    remote = {}
    with ours.db.read() as r, theirs.db.read() as c:
        for key in keys:
            [link] = r.links.links_of(int(key.split("-")[1]))
            copy = c.links.link(link.id)
            assert copy is not None, key
            assert (link.state, copy.state) == (LinkState.CLOSED, LinkState.CLOSED), key
            remote[key] = link.remote_ticket
            mine, its = r.links.log_of(link.id), c.links.log_of(link.id)
            for log, sent, got in ((mine, OUT, BACK), (its, BACK, OUT)):
                assert [(e.seq, e.kind) for e in log if e.outbound] == list(enumerate(sent, 1))
                assert [(e.seq, e.kind) for e in log if not e.outbound] == list(
                    enumerate(got, 1)
                ), key
                for event in log:
                    assert event.receipt and not event.pending and not event.refused, event
            assert one_way(mine, True) == one_way(its, False), key
            assert one_way(mine, False) == one_way(its, True), key
    return remote


def check_one_ticket_per_hand_off(ours: Node, theirs: Node) -> None:
    """The contractor filed one ticket per retail ticket (every one was handed off, once),
    and every ticket on either node is closed."""
    every = TicketQuery(limit=10_000)
    remote = []
    with ours.db.read() as r:
        handed = r.list_tickets(every)
        for ticket in handed:
            remote += [link.remote_ticket for link in r.links.links_of(ticket.id)]
    with theirs.db.read() as c:
        filed = c.list_tickets(every)
    assert sorted(remote) == sorted(t.key for t in filed)
    assert {t.status for t in handed + filed} == {"closed"}


def partner_changes(node: Node, token: str, key: str) -> Counter[str]:
    """The history entries of key that a partner's events made, by field, and its comments
    by author."""
    actor = node.admin.authenticate(token)
    made = Counter(
        e.change.field for e in node.tickets.history(actor, key) if e.change.action == "partner"
    )
    made.update(f"comment by {c.author}" for c in node.tickets.comments(actor, key))
    return made


def check_changes_shown_once(both: Pair, nodes: tuple[Node, Node], remote: dict[str, str]) -> None:
    """Each change of one side shows once on the other: each partner event once in the
    ticket's history, each comment once."""
    (retail, contractor), (ours, theirs) = both.nodes, nodes
    for key, their_key in remote.items():
        assert partner_changes(ours, retail.tokens["ivan"], key) == Counter(
            {
                "link.accept": 1,
                "link.status": 1,
                "link.resolved": 1,
                "comment by ivan": 1,
                f"comment by {contractor.node_id}": 1,
            }
        ), key
        assert partner_changes(theirs, contractor.tokens["olga"], their_key) == Counter(
            {
                "link": 1,
                "link.confirmed": 1,
                "comment by olga": 1,
                f"comment by {retail.node_id}": 1,
            }
        ), their_key


def check_verified(node: NodeProcess, keys: Iterable[str]) -> None:
    """`hdx sla verify` passes on node for every ticket."""
    for key in keys:
        out = ok(node.admin("sla", "verify", key))
        assert re.search(r"verified: 7 events, signatures, chains and receipts\n", out), out


def check_settled(both: Pair, stream: Stream) -> None:
    """Everything that must hold once both outboxes are empty after a stream; the nodes
    logged no error meanwhile."""
    nodes = open_node(load(both.retail.data_dir)), open_node(load(both.contractor.data_dir))
    try:
        wait_for("both outboxes to drain", lambda: not any(waiting(n) for n in nodes), STREAM_S)
        remote = check_links(*nodes, stream.keys)
        check_one_ticket_per_hand_off(*nodes)
        check_changes_shown_once(both, nodes, remote)
    finally:
        for node in nodes:
            node.db.dispose()
    check_verified(both.retail, stream.keys)
    check_verified(both.contractor, remote.values())
    logged = both.logged(stream)
    for sign in ("Traceback", " ERROR ", "deadlock"):
        assert sign not in logged, logged


# -- the nodes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Pair]]:
    """The serving pair of nodes on a backend, made at first use; both must stop cleanly
    at the end of the module."""
    made: dict[str, Pair] = {}

    def on(backend: str) -> Pair:
        if backend not in made:
            urls = ("", "")
            if backend == "postgres":
                server: PostgresServer = request.getfixturevalue("own_postgres")
                urls = (server.create_database("retail"), server.create_database("contractor"))
            base = tmp_path_factory.mktemp(backend)
            made[backend] = Pair(
                init_node(base, "retail", "RET", urls[0]),
                init_node(base, "contractor", "CON", urls[1]),
            )
            start_serving(*made[backend].nodes)
            pair(*made[backend].nodes)
        start_serving(*made[backend].nodes)  # again, if a test failed with one of them down
        return made[backend]

    try:
        yield on
    finally:
        for node in itertools.chain.from_iterable(p.nodes for p in made.values()):
            if node.server is not None:
                assert node.stop() == 0, node.log_path.read_text()


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "seed"),
    [pytest.param(b, s, id=f"{b}-seed{s}") for b, s in KILLS if b in BACKENDS],
)
def test_nodes_killed_during_a_stream_of_hand_offs_lose_nothing_and_double_nothing(
    pairs: Callable[[str], Pair], backend: str, seed: int
) -> None:
    both = pairs(backend)
    chance = random.Random(seed)

    def kill_one() -> None:
        time.sleep(chance.uniform(0.2, 1.0))
        victim = chance.choice(both.nodes)
        victim.kill()
        time.sleep(chance.uniform(0.0, 0.5))
        victim.start()

    stream = both.stream(kill_one, KILLS_PER_STREAM)

    assert stream.failures, "no call found its node down"
    assert not [f for f in stream.failures if "database" in f], stream.failures
    check_settled(both, stream)
    assert "refused event" not in both.logged(stream), "a kill is no reason to refuse one"


def test_postgres_stopped_and_crashed_during_a_stream_of_hand_offs_loses_nothing(
    pairs: Callable[[str], Pair], own_postgres: PostgresServer
) -> None:
    both = pairs("postgres")
    chance = random.Random(5)
    outages = iter([lambda: own_postgres.stop("fast"), own_postgres.kill])

    def take_postgres_away() -> None:
        time.sleep(chance.uniform(0.2, 1.0))
        next(outages)()
        time.sleep(chance.uniform(0.5, 1.5))
        own_postgres.start()

    stream = both.stream(take_postgres_away, 2)

    assert [f for f in stream.failures if "UNAVAILABLE: database" in f], stream.failures
    check_settled(both, stream)
