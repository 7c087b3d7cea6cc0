"""Live events: the gap-proof EventCursor (pure) and TicketService.events on both backends."""

import threading
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.errors import FailedPrecondition, InvalidArgument
from node.domain.ticket import Change, HistoryEntry, Ticket, TicketDraft, TicketPatch, Visibility
from node.services.changes import GAP_GRACE, EventCursor
from tests.conftest import START, Desk


def entry(entry_id: int) -> HistoryEntry:
    return HistoryEntry(
        entry_id, "RET-1", "vvo-002", START, "ivan", Change("updated", "title", "", str(entry_id))
    )


def ids(entries: list[HistoryEntry]) -> list[int]:
    return [e.id for e in entries]


def poll(cursor: EventCursor, committed: set[int], now: datetime, limit: int) -> list[int]:
    """What TicketService.events does: ask for entries past the cursor or among its gaps."""
    pending = set(cursor.pending(now))
    found = sorted(i for i in committed if i > cursor.position or i in pending)[:limit]
    return ids(cursor.advance([entry(i) for i in found], now))


# -- the cursor ---------------------------------------------------------------------


def test_an_entry_committed_late_is_delivered_once() -> None:
    cursor = EventCursor(10)
    # 12 is not committed yet when 11 and 13 are read
    assert ids(cursor.advance([entry(11), entry(13)], START)) == [11, 13]
    assert cursor.position == 13
    assert cursor.pending(START) == [12]
    later = START + timedelta(seconds=2)
    assert ids(cursor.advance([entry(12), entry(14)], later)) == [12, 14]
    assert cursor.pending(later) == []
    # reading the same entries again delivers nothing
    assert ids(cursor.advance([entry(i) for i in range(9, 15)], later)) == []


def test_a_gap_is_asked_for_during_the_grace_period_only() -> None:
    cursor = EventCursor(0)
    cursor.advance([entry(1), entry(4)], START)
    assert cursor.pending(START + GAP_GRACE - timedelta(milliseconds=1)) == [2, 3]
    assert ids(cursor.advance([entry(3)], START + GAP_GRACE / 2)) == [3]
    assert cursor.pending(START + GAP_GRACE) == []  # 2 was a rolled-back transaction
    assert ids(cursor.advance([entry(5)], START + GAP_GRACE)) == [5]
    assert cursor.pending(START + GAP_GRACE) == []


def test_a_cursor_never_goes_back() -> None:
    cursor = EventCursor(7)
    assert ids(cursor.advance([entry(5), entry(7)], START)) == []
    assert cursor.pending(START) == []
    assert ids(cursor.advance([entry(8)], START)) == [8]
    assert cursor.pending(START) == []


@settings(max_examples=150, deadline=None)
@given(
    order=st.permutations(list(range(1, 31))),
    polls=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=15),
    limit=st.integers(min_value=1, max_value=8),
)
def test_every_entry_arrives_exactly_once_whatever_the_commit_order(
    order: list[int], polls: list[int], limit: int
) -> None:
    """Ids are taken in order but committed in any order; the reader polls in between."""
    cursor = EventCursor(0)
    committed: set[int] = set()
    delivered: list[int] = []
    now = START
    steps = sorted(polls)
    for done, entry_id in enumerate(order, start=1):
        committed.add(entry_id)
        while steps and steps[0] <= done:
            steps.pop(0)
            now += timedelta(milliseconds=100)
            delivered += poll(cursor, committed, now, limit)
    for _ in range(40):  # the reader catches up within the grace period
        now += timedelta(milliseconds=100)
        delivered += poll(cursor, committed, now, limit)
    assert sorted(delivered) == list(range(1, 31))


# -- the service --------------------------------------------------------------------


def file(desk: Desk, login: str, category: str = "scales") -> Ticket:
    return desk.tickets.create(desk.actor(login), TicketDraft(category=category, title=category))


def test_a_new_cursor_sees_only_changes_made_after_it(desk: Desk) -> None:
    old = file(desk, "boris")
    ivan = desk.actor("ivan")
    cursor = desk.tickets.start_cursor(0)
    assert desk.tickets.events(ivan, cursor) == []
    desk.tickets.update(ivan, old.key, TicketPatch(title="Renamed"))
    new = file(desk, "anna", "pos-down")
    seen = desk.tickets.events(ivan, cursor)
    assert [(e.ticket_key, e.change.field, e.change.after) for e in seen] == [
        (old.key, "title", "Renamed"),
        (new.key, "status", "new"),
        (new.key, "group", "pos"),
        (new.key, "sla_policy", "stop-trade"),
    ]
    assert seen[0].actor == "ivan" and seen[0].store == "vvo-002"
    assert desk.tickets.events(ivan, cursor) == []
    # a cursor from an event id replays what followed it
    replay = desk.tickets.start_cursor(seen[0].id)
    assert desk.tickets.events(ivan, replay) == seen[1:]
    assert desk.tickets.events(ivan, desk.tickets.start_cursor(1))[-4:] == seen


def test_a_requester_gets_only_their_stores_public_events(desk: Desk) -> None:
    theirs = file(desk, "anna")
    own = file(desk, "boris")
    boris, ivan = desk.actor("boris"), desk.actor("ivan")
    store_cursor, staff_cursor = desk.tickets.start_cursor(0), desk.tickets.start_cursor(0)
    desk.tickets.comment(ivan, theirs.key, "for msk", Visibility.PUBLIC)
    desk.tickets.comment(ivan, own.key, "for vvo", Visibility.PUBLIC)
    desk.tickets.comment(ivan, own.key, "engineers only", Visibility.INTERNAL)
    desk.tickets.update(ivan, theirs.key, TicketPatch(title="msk renamed"))
    desk.tickets.update(ivan, own.key, TicketPatch(title="vvo renamed"))

    seen = desk.tickets.events(boris, store_cursor)
    assert [(e.ticket_key, e.change.after) for e in seen] == [
        (own.key, "for vvo"),
        (own.key, "vvo renamed"),
    ]
    assert len(desk.tickets.events(ivan, staff_cursor)) == 5
    # the cursor moved past what boris may not see: it is not delivered later either
    desk.tickets.comment(boris, own.key, "thanks", Visibility.PUBLIC)
    assert [e.change.after for e in desk.tickets.events(boris, store_cursor)] == ["thanks"]


def test_events_of_one_ticket(desk: Desk) -> None:
    first, second = file(desk, "boris"), file(desk, "boris")
    ivan = desk.actor("ivan")
    cursor = desk.tickets.start_cursor(0)
    desk.tickets.comment(ivan, first.key, "a", Visibility.PUBLIC)
    desk.tickets.comment(ivan, second.key, "b", Visibility.PUBLIC)
    seen = desk.tickets.events(ivan, cursor, ticket_key=second.key)
    assert [(e.ticket_key, e.change.after) for e in seen] == [(second.key, "b")]


def test_a_negative_cursor_is_refused(desk: Desk) -> None:
    with pytest.raises(InvalidArgument) as refused:
        desk.tickets.start_cursor(-1)
    assert refused.value.field == "after_event_id"


def test_watchers_are_woken_after_each_committed_change(desk: Desk) -> None:
    woken: list[int] = []
    stop = desk.tickets.feed.subscribe(lambda: woken.append(len(woken)))
    ticket = file(desk, "boris")
    assert len(woken) == 1
    desk.tickets.comment(desk.actor("boris"), ticket.key, "hello", Visibility.PUBLIC)
    assert len(woken) == 2
    with pytest.raises(FailedPrecondition):
        desk.tickets.transition(desk.actor("boris"), ticket.key, "confirm", "")
    assert len(woken) == 2
    stop()
    desk.tickets.comment(desk.actor("boris"), ticket.key, "again", Visibility.PUBLIC)
    assert len(woken) == 2


def test_an_entry_committed_after_a_later_one_is_still_delivered(desk: Desk) -> None:
    if desk.db.is_sqlite:
        pytest.skip("SQLite writers take turns: ids always commit in order")
    slow, fast = file(desk, "boris"), file(desk, "boris")
    ivan = desk.actor("ivan")
    cursor = desk.tickets.start_cursor(0)
    written, release = threading.Event(), threading.Event()
    held: list[int] = []

    def slow_transaction() -> None:
        with desk.db.write() as tx:
            change = Change("updated", "title", slow.title, "slow")
            tx.add_history(slow.id, desk.clock.now(), "ivan", [change])
            held.append(tx.last_history_id())
            written.set()
            assert release.wait(timeout=30)

    writer = threading.Thread(target=slow_transaction)
    writer.start()
    assert written.wait(timeout=30)
    desk.tickets.comment(ivan, fast.key, "fast", Visibility.PUBLIC)
    first = desk.tickets.events(ivan, cursor)
    release.set()
    writer.join(timeout=30)
    assert [e.change.after for e in first] == ["fast"]
    assert first[0].id > held[0]
    desk.clock.advance(timedelta(seconds=1))
    second = desk.tickets.events(ivan, cursor)
    assert [(e.id, e.change.after) for e in second] == [(held[0], "slow")]
    assert desk.tickets.events(ivan, cursor) == []
