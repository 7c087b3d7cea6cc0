"""One use case, one transaction: a failure half way leaves nothing behind, and
concurrent changes to one ticket are serialised so that none is lost."""

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from node.domain.errors import FailedPrecondition, InvalidArgument
from node.domain.partner import Partner, PartnerRole, PartnerState, Terms
from node.domain.roles import Role
from node.domain.ticket import (
    Change,
    Level,
    Ticket,
    TicketDraft,
    TicketPatch,
    TicketType,
    User,
    Visibility,
)
from node.services.admin import token_digest
from node.store import schema
from node.store.database import Database
from node.store.tx import Tx
from tests.conftest import Desk


class Boom(Exception):
    """Stands for any failure inside a transaction: a crash, a lost connection."""


def count(db: Database, table: Any) -> int:
    with db.read() as tx:
        return int(tx.conn.scalar(select(func.count()).select_from(table)) or 0)


def fail_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes Tx.add_history raise after the rest of the use case has written its rows."""

    def add_history(self: Tx, ticket_id: int, at: object, actor: str, changes: object) -> None:
        raise Boom(f"history of ticket {ticket_id}")

    monkeypatch.setattr(Tx, "add_history", add_history)


def fail_filing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes filing a ticket raise half way: writing its history raises (on SQLite, a
    statement of its own), and so does Tx.insert_ticket once it has written the ticket and
    its history (on PostgreSQL, one statement)."""
    fail_history(monkeypatch)
    insert_ticket = Tx.insert_ticket

    def insert_then_fail(self: Tx, *args: Any) -> int | None:
        raise Boom(f"after filing ticket {insert_ticket(self, *args)}")

    monkeypatch.setattr(Tx, "insert_ticket", insert_then_fail)


def file(desk: Desk, login: str = "boris", request_id: str = "") -> Ticket:
    draft = TicketDraft(category="scales", title="Scales misweigh", request_id=request_id)
    return desk.tickets.create(desk.actor(login), draft)


def run_together(calls: list[Callable[[], object]]) -> list[BaseException | None]:
    """Runs calls in threads started at once; returns each one's error or None."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            calls[i]()
        except BaseException as error:
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a call hangs"
    return outcomes


def test_a_create_that_fails_half_way_files_nothing(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        fail_filing(patch)
        with pytest.raises(Boom):
            file(desk, request_id="r-1")
    assert count(desk.db, schema.tickets) == 0
    assert count(desk.db, schema.history) == 0
    # the request id was not used up: the retry files the ticket
    ticket = file(desk, request_id="r-1")
    assert count(desk.db, schema.tickets) == 1
    assert len(desk.tickets.history(desk.actor("ivan"), ticket.key)) == 3


def test_changes_that_fail_half_way_change_nothing(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = file(desk)
    sergey, ivan = desk.actor("sergey"), desk.actor("ivan")
    desk.tickets.assign(sergey, ticket.key, "ivan", None, frozenset())
    before = desk.tickets.get(ivan, ticket.key)
    history = desk.tickets.history(ivan, ticket.key)
    calls: dict[str, Callable[[], object]] = {
        "update": lambda: desk.tickets.update(
            sergey, ticket.key, TicketPatch(title="Renamed", impact=Level.CRITICAL)
        ),
        "assign": lambda: desk.tickets.assign(
            sergey, ticket.key, "olga", "it", frozenset({"ivan"})
        ),
        "transition": lambda: desk.tickets.transition(ivan, ticket.key, "start", ""),
        "comment": lambda: desk.tickets.comment(ivan, ticket.key, "note", Visibility.PUBLIC),
    }
    with monkeypatch.context() as patch:
        fail_history(patch)
        for name, call in calls.items():
            desk.clock.advance(desk.tickets.confirm_window / 100)
            with pytest.raises(Boom):
                call()
            assert desk.tickets.get(ivan, ticket.key) == before, name
    assert desk.tickets.history(ivan, ticket.key) == history
    assert count(desk.db, schema.comments) == 0
    assert count(desk.db, schema.co_assignees) == 0
    # and each goes through once the failure is gone
    for call in calls.values():
        call()
    after = desk.tickets.get(ivan, ticket.key)
    assert (after.title, after.assignee, after.status) == ("Renamed", "olga", "in_progress")


def test_work_asked_for_before_commit_runs_last_inside_the_transaction(db: Database) -> None:
    late = "written after the callbacks were asked for"
    seen: list[str | None] = []
    with db.write() as tx:
        tx.before_commit(lambda: seen.append(tx.setting("late")))
        with db.write() as joined:  # a use case inside another: its work waits for the outer
            joined.before_commit(lambda: joined.put_setting("from-callback", "yes"))
        tx.put_setting("late", late)
    assert seen == [late]
    with db.read() as tx:
        assert tx.setting("from-callback") == "yes"

    def fail() -> None:
        raise Boom("before commit")

    with pytest.raises(Boom), db.write() as tx:
        tx.put_setting("doomed", "x")
        tx.before_commit(fail)
    with pytest.raises(Boom), db.write() as tx:
        tx.before_commit(lambda: seen.append("never"))
        raise Boom("the work itself")
    with db.read() as tx:
        assert tx.setting("doomed") is None, "a failing callback fails the transaction"
    assert seen == [late], "the work failed, so its callbacks did not run"


def test_a_refused_assignment_leaves_the_ticket_as_it_was(desk: Desk) -> None:
    ticket = file(desk)
    sergey = desk.actor("sergey")
    history = desk.tickets.history(sergey, ticket.key)
    for co in (frozenset({"boris"}), frozenset({"olga", "nobody"})):
        with pytest.raises(InvalidArgument):
            desk.tickets.assign(sergey, ticket.key, "ivan", "it", co)
    stored = desk.tickets.get(sergey, ticket.key)
    assert (stored.assignee, stored.group, stored.co_assignees) == (None, "facilities", frozenset())
    assert desk.tickets.history(sergey, ticket.key) == history
    assert count(desk.db, schema.co_assignees) == 0


def test_a_refused_transition_records_nothing(desk: Desk) -> None:
    ticket = file(desk)
    ivan = desk.actor("ivan")
    history = desk.tickets.history(ivan, ticket.key)
    with pytest.raises(FailedPrecondition):
        desk.tickets.transition(ivan, ticket.key, "confirm", "")
    with pytest.raises(InvalidArgument):
        desk.tickets.transition(desk.actor("boris"), ticket.key, "cancel", "")
    assert desk.tickets.history(ivan, ticket.key) == history
    assert desk.tickets.get(ivan, ticket.key).status == "new"


def test_concurrent_changes_to_one_ticket_lose_nothing(desk: Desk) -> None:
    ticket = file(desk)
    sergey, ivan, olga, boris = (desk.actor(n) for n in ("sergey", "ivan", "olga", "boris"))
    desk.tickets.assign(sergey, ticket.key, "ivan", None, frozenset())
    desk.tickets.transition(ivan, ticket.key, "start", "")
    before = len(desk.tickets.history(ivan, ticket.key))
    key = ticket.key
    calls: list[Callable[[], object]] = [
        lambda: desk.tickets.update(sergey, key, TicketPatch(title="New title")),
        lambda: desk.tickets.update(ivan, key, TicketPatch(description="New description")),
        lambda: desk.tickets.update(olga, key, TicketPatch(ticket_type=TicketType.ALERT)),
        lambda: desk.tickets.assign(sergey, key, "ivan", None, frozenset({"olga"})),
        lambda: desk.tickets.comment(boris, key, "one", Visibility.PUBLIC),
        lambda: desk.tickets.comment(ivan, key, "two", Visibility.INTERNAL),
        lambda: desk.tickets.comment(olga, key, "three", Visibility.PUBLIC),
        lambda: desk.tickets.comment(boris, key, "four", Visibility.PUBLIC),
    ]
    assert run_together(calls) == [None] * len(calls)
    after = desk.tickets.get(ivan, key)
    assert after.title == "New title"
    assert after.description == "New description"
    assert after.ticket_type is TicketType.ALERT
    assert after.co_assignees == frozenset({"olga"})
    assert after.status == "in_progress"
    assert len(desk.tickets.comments(ivan, key)) == 4
    assert len(desk.tickets.history(ivan, key)) == before + len(calls)


def test_concurrent_transitions_are_serialised(desk: Desk) -> None:
    ticket = file(desk)
    sergey = desk.actor("sergey")
    desk.tickets.assign(sergey, ticket.key, "ivan", None, frozenset({"olga"}))
    desk.tickets.transition(desk.actor("ivan"), ticket.key, "start", "")
    history = desk.tickets.history(sergey, ticket.key)
    moves = ["wait_partner", "resume", "wait_requester", "resume", "wait_partner", "resume"]
    actors = [desk.actor(n) for n in ("ivan", "olga", "sergey")]
    calls: list[Callable[[], object]] = []
    for i in range(12):
        actor, move = actors[i % 3], moves[i % len(moves)]
        calls.append(partial(desk.tickets.transition, actor, ticket.key, move, ""))
    outcomes = run_together(calls)
    unexpected = [o for o in outcomes if o is not None and not isinstance(o, FailedPrecondition)]
    assert unexpected == []
    succeeded = sum(o is None for o in outcomes)
    assert succeeded >= 1

    new = desk.tickets.history(sergey, ticket.key)[len(history) :]
    statuses = [e.change for e in new if e.change.field == "status"]
    assert len(new) == len(statuses) == succeeded
    # each move starts where the one before it ended: no two moves left the same state
    chain = ["in_progress", *(c.after for c in statuses)]
    assert [c.before for c in statuses] == chain[:-1]
    assert desk.tickets.get(sergey, ticket.key).status == chain[-1]


def test_concurrent_resolves_resolve_once(desk: Desk) -> None:
    ticket = file(desk)
    desk.tickets.assign(desk.actor("sergey"), ticket.key, "ivan", None, frozenset({"olga"}))
    desk.tickets.transition(desk.actor("ivan"), ticket.key, "start", "")
    calls: list[Callable[[], object]] = [
        partial(desk.tickets.transition, desk.actor(login), ticket.key, "resolve", "")
        for login in ("ivan", "olga") * 3
    ]
    outcomes = run_together(calls)
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, FailedPrecondition) for o in outcomes if o is not None)
    resolutions = [
        e
        for e in desk.tickets.history(desk.actor("ivan"), ticket.key)
        if e.change == Change("transition", "status", "in_progress", "resolved")
    ]
    assert len(resolutions) == 1


def test_the_catalogue_read_with_a_token_is_what_a_lookup_finds_until_it_changes(
    desk: Desk,
) -> None:
    token = desk.admin.create_token("anna")
    with desk.db.write() as tx:
        actor = tx.actor_for_token(token_digest(token), "scales", "")
        assert actor is not None and actor.store == "msk-001"
        category, store = tx.category_and_store("scales", "msk-001")  # read with the actor
        assert category == tx.category("scales") and category is not None
        assert store == tx.store("msk-001") and store is not None
        assert tx.actor_for_token(token_digest(token), "teleport", "zzz-9") == actor
        assert tx.category_and_store("teleport", "zzz-9") == (None, None)
        tx.put_store(replace(store, name="Bakery, renamed"))
        renamed = tx.category_and_store("scales", "msk-001")[1]
        assert renamed is not None and renamed.name == "Bakery, renamed"


def test_a_transaction_reads_back_the_partners_it_changed(db: Database) -> None:
    contractor = Partner(
        node_id="contractor-1",
        name="Contractor",
        endpoint="127.0.0.1:1",
        role=PartnerRole.CONTRACTOR,
        state=PartnerState.ACTIVE,
        login="contractor-1",
        cert_pem="",
        plaintext=True,
        terms=Terms(),
        added_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    )
    with db.write() as tx:
        assert tx.links.partner(contractor.node_id) is None
        tx.add_user(User(contractor.login, "partner node Contractor", Role.SYSTEM))
        tx.links.add_partner(contractor)
        assert tx.links.partner(contractor.node_id) == contractor
        tx.links.update_partner(contractor.node_id, failures=3)  # its delivery state only
        assert tx.links.delivery(contractor.node_id).failures == 3
        tx.links.update_partner(contractor.node_id, state=PartnerState.SUSPENDED)
        suspended = tx.links.partner(contractor.node_id)
        assert suspended is not None and suspended.state is PartnerState.SUSPENDED
        assert tx.links.partners() == [suspended]


def _commit_level(tx: Tx) -> str:
    """How the transaction's commit waits for the disk: SQLite's synchronous level of the
    connection, or PostgreSQL's synchronous_commit."""
    if tx.conn.dialect.name == "sqlite":
        return {1: "NORMAL", 2: "FULL"}[tx.raw("PRAGMA synchronous", {}).fetchone()[0]]
    return {"off": "NORMAL", "on": "FULL"}[tx.raw("SHOW synchronous_commit", {}).fetchone()[0]]


def test_only_soft_state_commits_without_waiting_for_the_disk(db: Database) -> None:
    """Durable transactions commit as the node is set up to (SQLite: FULL; the test
    PostgreSQL server runs with synchronous_commit off), the others do not wait."""
    with db.read() as tx:
        configured = _commit_level(tx)
    assert configured == "FULL" or not db.is_sqlite
    writes = (True, False, False, True, False, True)
    levels = []
    for durable in writes:
        with db.write(durable=durable) as tx:
            levels.append(_commit_level(tx))
            with db.write() as joined:
                assert _commit_level(joined) == levels[-1], "a joined write keeps its own"
        with db.read() as tx:
            levels.append(_commit_level(tx))
    expected = [[configured if durable else "NORMAL", configured] for durable in writes]
    assert levels == [level for pair in expected for level in pair]


OFFSETS = [UTC, timezone(timedelta(hours=10)), timezone(-timedelta(hours=3, minutes=30))]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1), timezones=st.sampled_from(OFFSETS)))
def test_an_instant_bound_by_a_raw_statement_reads_back_the_same(
    db: Database, at: datetime
) -> None:
    with db.write() as tx:
        stored = tx.raw("SELECT :at", {"at": tx.bind_instant(at)}).fetchone()[0]
        assert tx.read_instant(stored) == at
