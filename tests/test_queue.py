"""The engineers' queue: order, paging and filters of TicketService.list_tickets."""

from datetime import UTC, datetime, timedelta

import pytest

from node.domain import paging
from node.domain.errors import InvalidArgument
from node.domain.roles import Actor
from node.domain.ticket import (
    FAR_FUTURE,
    Level,
    Priority,
    Ticket,
    TicketDraft,
    TicketPatch,
    TicketQuery,
)
from tests.conftest import Desk


def file(
    desk: Desk,
    category: str,
    *,
    login: str = "boris",
    impact: Level | None = None,
    urgency: Level | None = None,
) -> Ticket:
    draft = TicketDraft(category=category, title=category, impact=impact, urgency=urgency)
    return desk.tickets.create(desk.actor(login), draft)


def queue(desk: Desk, actor: Actor, query: TicketQuery, *, closed: bool = False) -> list[str]:
    tickets, token = desk.tickets.list_tickets(actor, query, include_closed=closed)
    assert token == ""
    return [t.key for t in tickets]


def queue_order(ticket: Ticket) -> tuple[bool, datetime, int, datetime, int]:
    due_at = ticket.due_at or FAR_FUTURE
    return (not ticket.stop_trade, due_at, int(ticket.priority), ticket.created_at, ticket.id)


def test_the_queue_puts_stop_trade_first_then_the_nearest_deadline(desk: Desk) -> None:
    minute = timedelta(minutes=1)
    created = desk.clock.now()  # Monday 09:12 UTC: 12:12 in Moscow, 19:12 in Vladivostok
    network = file(desk, "network-down")  # P2 in Vladivostok, after hours: respond in 1 h
    scales = file(desk, "scales", login="anna")  # P3 in Moscow, open: respond in 4 h
    desk.clock.advance(minute)
    terminal = file(desk, "card-terminal")  # stop-trade: respond in 15 min, round the clock
    desk.clock.advance(minute)
    pos = file(desk, "pos-down")  # stop-trade
    access = file(desk, "access", login="anna")  # P3 in Moscow (a flagship): 4 h
    # lowered by hand: still ahead of every ticket that does not stop trade
    desk.tickets.update(desk.actor("sergey"), terminal.key, TicketPatch(priority=Priority.P3))

    assert network.due_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 10:00 local
    assert scales.due_at == created + timedelta(hours=4)
    assert terminal.due_at == created + minute + timedelta(minutes=15)
    assert access.due_at == created + 2 * minute + timedelta(hours=4)
    expected = [terminal, pos, scales, access, network]
    assert queue(desk, desk.actor("ivan"), TicketQuery()) == [t.key for t in expected]
    assert queue(desk, desk.actor("boris"), TicketQuery()) == [terminal.key, pos.key, network.key]


def test_paging_returns_every_ticket_once_in_queue_order(desk: Desk) -> None:
    levels = [Level.LOW, Level.MEDIUM, Level.HIGH, Level.CRITICAL]
    categories = ["other", "other", "pos-down", "other", "other"]
    for i in range(25):
        if i % 3 == 0:  # runs of tickets share created_at
            desk.clock.advance(timedelta(seconds=1))
        login = "anna" if i % 4 == 0 else "boris"
        impact, urgency = levels[i % 4], levels[(i // 4) % 4]
        file(desk, categories[i % 5], login=login, impact=impact, urgency=urgency)
    ivan = desk.actor("ivan")
    everything, token = desk.tickets.list_tickets(
        ivan, TicketQuery(limit=100), include_closed=False
    )
    assert token == ""
    assert len(everything) == 25
    assert len({t.priority for t in everything}) == 4
    assert len({t.created_at for t in everything}) < 25
    assert [t.id for t in everything] == [t.id for t in sorted(everything, key=queue_order)]

    for size in (4, 5):
        pages: list[list[str]] = []
        query = TicketQuery(limit=size)
        while True:
            page, token = desk.tickets.list_tickets(ivan, query, include_closed=False)
            pages.append([t.key for t in page])
            if not token:
                break
            query = TicketQuery(limit=size, after=paging.decode(token))
            assert len(pages) < 30, "paging does not end"
        assert [k for page in pages for k in page] == [t.key for t in everything]
        assert [len(page) for page in pages] == [size] * (25 // size) + (
            [25 % size] if 25 % size else []
        )


def test_a_page_token_carries_filters_forward(desk: Desk) -> None:
    for _ in range(3):
        file(desk, "scales", login="anna")
        file(desk, "scales")
        file(desk, "pos-down")
    boris = desk.actor("boris")
    first, token = desk.tickets.list_tickets(boris, TicketQuery(limit=2), include_closed=False)
    assert token
    rest, last = desk.tickets.list_tickets(
        boris, TicketQuery(limit=10, after=paging.decode(token)), include_closed=False
    )
    assert last == ""
    seen = first + rest
    assert len(seen) == 6
    assert {t.store for t in seen} == {"vvo-002"}
    assert [t.id for t in seen] == [t.id for t in sorted(seen, key=queue_order)]
    with pytest.raises(InvalidArgument) as refused:
        paging.decode("not-a-token")
    assert refused.value.field == "page_token"


def test_filters_narrow_the_queue(desk: Desk) -> None:
    sergey, ivan = desk.actor("sergey"), desk.actor("ivan")
    pos = file(desk, "pos-down", login="anna")
    fridge = file(desk, "refrigeration")
    scales = file(desk, "scales")
    access = file(desk, "access", login="anna")
    desk.tickets.assign(sergey, fridge.key, "ivan", None, frozenset())
    desk.tickets.assign(sergey, scales.key, "olga", None, frozenset())
    desk.tickets.transition(ivan, fridge.key, "start", "")

    def keys(query: TicketQuery) -> set[str]:
        return set(queue(desk, ivan, query))

    assert keys(TicketQuery(statuses=("in_progress",))) == {fridge.key}
    assert keys(TicketQuery(statuses=("new", "in_progress"))) == {
        pos.key,
        fridge.key,
        scales.key,
        access.key,
    }
    assert keys(TicketQuery(assignee="ivan")) == {fridge.key}
    assert keys(TicketQuery(assignee="olga")) == {scales.key}
    assert keys(TicketQuery(group="facilities")) == {fridge.key, scales.key}
    assert keys(TicketQuery(group="pos")) == {pos.key}
    assert keys(TicketQuery(store="msk-001")) == {pos.key, access.key}
    assert keys(TicketQuery(category="access")) == {access.key}
    assert keys(TicketQuery(priority=Priority.P1)) == {pos.key}
    assert keys(TicketQuery(priority=Priority.P2)) == {fridge.key}
    assert keys(TicketQuery(stop_trade_only=True)) == {pos.key}
    assert keys(TicketQuery(group="facilities", assignee="olga")) == {scales.key}
    assert keys(TicketQuery(store="msk-001", group="facilities")) == set()


def test_closed_and_cancelled_tickets_leave_the_queue(desk: Desk) -> None:
    ivan = desk.actor("ivan")
    open_ = file(desk, "scales")
    done = file(desk, "scales")
    dropped = file(desk, "scales")
    desk.tickets.transition(ivan, done.key, "start", "")
    desk.tickets.transition(ivan, done.key, "resolve", "")
    # a resolved ticket waits for the store's confirmation in the queue
    assert set(queue(desk, ivan, TicketQuery())) == {open_.key, done.key, dropped.key}
    desk.tickets.transition(desk.actor("boris"), done.key, "confirm", "")
    desk.tickets.transition(desk.actor("boris"), dropped.key, "cancel", "duplicate")

    assert queue(desk, ivan, TicketQuery()) == [open_.key]
    assert queue(desk, desk.actor("boris"), TicketQuery()) == [open_.key]
    assert set(queue(desk, ivan, TicketQuery(), closed=True)) == {
        open_.key,
        done.key,
        dropped.key,
    }
    # asking for a final status by name finds it
    assert queue(desk, ivan, TicketQuery(statuses=("closed",))) == [done.key]
    assert queue(desk, ivan, TicketQuery(statuses=("cancelled",))) == [dropped.key]


def test_an_unknown_status_is_refused(desk: Desk) -> None:
    file(desk, "scales")
    for statuses in (("open",), ("new", "bogus")):
        with pytest.raises(InvalidArgument) as refused:
            desk.tickets.list_tickets(
                desk.actor("ivan"), TicketQuery(statuses=statuses), include_closed=False
            )
        assert refused.value.field == "statuses"
        assert statuses[-1] in str(refused.value)
