"""Faults a node must survive: its own process killed mid-write, and its PostgreSQL
going away and coming back while it serves.
"""

import io
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.config import load
from cli.main import main
from cli.wiring import open_node
from node.api.client import ApiError, HelpDeskClient
from node.domain.roles import Role
from node.domain.ticket import TicketDraft, TicketQuery
from node.store import migrate
from node.store.database import Database
from tests.conftest import (
    PREFIX,
    STORES,
    FakeClock,
    ServerThread,
    seed_desk,
)
from tests.node_processes import Server
from tests.postgres import PostgresServer

# -- kill -9 of `hdx serve` while tickets are being filed -----------------------------------


@dataclass
class Round:
    """Creates sent in one life of the server."""

    sent: list[str] = field(default_factory=list)
    """Request ids in the order they were sent, answered or not."""
    acked: dict[str, str] = field(default_factory=dict)
    """Request id → key of the ticket the server answered with."""
    failures: list[str] = field(default_factory=list)


def draft(request_id: str) -> TicketDraft:
    return TicketDraft(
        category="scales", title=f"Scales at till {request_id}", request_id=request_id
    )


def file_until_killed(target: str, token: str, prefix: str, into: Round) -> None:
    """Files tickets one after another until the server stops answering."""
    with HelpDeskClient(target, token, attempts=1) as client:
        for n in range(10_000):
            request_id = f"{prefix}-{n}"
            into.sent.append(request_id)
            try:
                into.acked[request_id] = client.create(draft(request_id)).ticket.key
            except ApiError as error:
                into.failures.append(error.code)
                return


def check_round(target: str, token: str, done: Round) -> None:
    """Re-sends every request id of a round: the acknowledged ones get their ticket back."""
    with HelpDeskClient(target, token, attempts=1) as client:
        for request_id in done.sent:
            key = client.create(draft(request_id)).ticket.key
            if request_id in done.acked:
                assert key == done.acked[request_id], request_id


@pytest.fixture
def node_dir(tmp_path: Path) -> tuple[Path, str]:
    """An initialised SQLite node with two stores and a requester; returns (dir, her token)."""
    data_dir = tmp_path / "node"
    with redirect_stdout(io.StringIO()):
        assert main(["--data-dir", str(data_dir), "init", "--prefix", PREFIX]) == 0
    node = open_node(load(data_dir))
    node.admin.load_catalog(STORES)
    node.admin.add_user("anna", "Anna", Role.REQUESTER, "msk-001")
    token = node.admin.create_token("anna")
    node.db.dispose()
    return data_dir, token


def test_a_killed_server_loses_no_acknowledged_ticket_and_files_none_twice(
    node_dir: tuple[Path, str],
) -> None:
    data_dir, token = node_dir
    rounds: list[Round] = []
    server = Server(data_dir, data_dir / "serve.log")
    try:
        for seed, kill_after in enumerate((2, 9, 23)):
            chance = random.Random(seed)
            this = Round()
            writers = [
                threading.Thread(
                    target=file_until_killed,
                    args=(server.target, token, f"r{seed}w{w}", this),
                    daemon=True,
                )
                for w in range(4)  # writers that share commits
            ]
            for writer in writers:
                writer.start()
            deadline = time.monotonic() + 30
            while len(this.acked) < kill_after and time.monotonic() < deadline:
                time.sleep(0.001)
            assert len(this.acked) >= kill_after, "the server did not answer creates"
            time.sleep(chance.uniform(0, 0.02))
            server.kill()
            for writer in writers:
                writer.join(timeout=40)
                assert not writer.is_alive(), "a create hung on a killed server"
            assert set(this.failures) == {"UNAVAILABLE"}, this.failures
            rounds.append(this)

            server = Server(data_dir, data_dir / "serve.log")
            check_round(server.target, token, this)
    finally:
        server.kill()

    node = open_node(load(data_dir))
    try:
        admin = node.admin.authenticate(node.admin.create_token("admin"))
        tickets, _ = node.tickets.list_tickets(admin, TicketQuery(limit=500), include_closed=True)
        with node.db.read() as tx:
            history = tx.history()
    finally:
        node.db.dispose()

    sent = [request_id for r in rounds for request_id in r.sent]
    assert len(set(sent)) == len(sent)
    titles = Counter(t.title for t in tickets)
    assert sorted(titles) == sorted(draft(request_id).title for request_id in sent)
    assert set(titles.values()) == {1}, "a request id filed two tickets"
    acked = {key for r in rounds for key in r.acked.values()}
    assert acked <= {t.key for t in tickets}
    # nothing half-written: every ticket has its whole creation record, once
    created = Counter((e.ticket_key, e.change.action, e.change.field) for e in history)
    for ticket in tickets:
        assert created[(ticket.key, "created", "status")] == 1, ticket.key
        assert created[(ticket.key, "assigned", "group")] == 1, ticket.key
    assert {e.ticket_key for e in history} == {t.key for t in tickets}


# -- PostgreSQL going away under a running node --------------------------------------------


def outage_error(call: Callable[[], object]) -> ApiError:
    """The error a call during the outage fails with; asserts it fails fast."""
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        call()
    assert time.monotonic() - started < 10, "a call hung while the database was down"
    return refused.value


def watch_until_it_ends(client: HelpDeskClient, ended: queue.Queue[BaseException | None]) -> None:
    try:
        for _ in client.watch():
            pass
    except BaseException as error:
        ended.put(error)
    else:
        ended.put(None)


@pytest.mark.parametrize("outage", ["restart", "crash"])
def test_calls_fail_unavailable_while_postgres_is_down_and_work_again_after(
    own_postgres: PostgresServer, outage: str
) -> None:
    url = own_postgres.create_database(f"hdx_{outage}")
    db = Database(url)
    migrate.upgrade(db.engine)
    db.initialise(PREFIX, "retail")
    desk = seed_desk(db, FakeClock())
    server = ServerThread(desk)
    anna = HelpDeskClient(server.target, desk.admin.create_token("anna"), attempts=1)
    ivan = HelpDeskClient(server.target, desk.admin.create_token("ivan"), attempts=1)
    try:
        before = anna.create(TicketDraft(category="other", title="Door sticks")).ticket
        ivan.list_tickets()
        ended: queue.Queue[BaseException | None] = queue.Queue()
        threading.Thread(target=watch_until_it_ends, args=(ivan, ended), daemon=True).start()

        if outage == "restart":
            own_postgres.stop("fast")
        else:
            own_postgres.kill()

        # an open watch ends with UNAVAILABLE, so its client knows to resume it later
        try:
            watch_error = ended.get(timeout=10)
        except queue.Empty:
            pytest.fail("an open watch neither ended nor failed while the database was down")
        assert isinstance(watch_error, ApiError), watch_error
        assert watch_error.code == "UNAVAILABLE", watch_error

        during = draft("during-outage")
        calls: dict[str, Callable[[], object]] = {
            "create": lambda: anna.create(during),
            "get": lambda: anna.get(before.key),
            "list": ivan.list_tickets,
            "comment": lambda: ivan.comment(before.key, "are you there?"),
            "transition": lambda: ivan.transition(before.key, "start"),
        }
        for name, call in calls.items():
            error = outage_error(call)
            assert error.code == "UNAVAILABLE", (name, error)
            assert "database" in error.details, (name, error)

        own_postgres.start()

        # the same server serves again, without a restart; the refused create files once
        assert anna.get(before.key).ticket.status == "new"
        filed = anna.create(during).ticket
        assert anna.create(during).ticket.key == filed.key
        queue_, _ = ivan.list_tickets(TicketQuery(limit=50))
        assert sorted(v.ticket.key for v in queue_) == sorted([before.key, filed.key])
        assert ivan.comment(before.key, "back").body == "back"
        assert ivan.transition(before.key, "start").ticket.status == "in_progress"
        assert [c.body for c in ivan.comments(before.key)] == ["back"]
    finally:
        anna.close()
        ivan.close()
        server.stop()
        db.dispose()
