"""What store staff may see: only their own store's tickets, never internal comments.

A requester of another store is told a ticket does not exist, exactly as for a
key that was never issued, so ticket keys of other stores leak nothing.
"""

from collections.abc import Callable

import pytest

from node.domain.errors import NotFound, PermissionDenied
from node.domain.roles import Actor
from node.domain.ticket import Ticket, TicketDraft, TicketQuery, Visibility
from tests.conftest import Desk


def file(desk: Desk, login: str, category: str = "scales", store: str = "") -> Ticket:
    draft = TicketDraft(category=category, title=f"{category} at {login}", store=store)
    return desk.tickets.create(desk.actor(login), draft)


def keys(tickets: list[Ticket]) -> set[str]:
    return {t.key for t in tickets}


def test_a_requester_cannot_reach_another_stores_ticket(desk: Desk) -> None:
    theirs = file(desk, "anna")
    desk.tickets.assign(desk.actor("sergey"), theirs.key, "ivan", None, frozenset())
    desk.tickets.transition(desk.actor("ivan"), theirs.key, "start", "")
    desk.tickets.transition(desk.actor("ivan"), theirs.key, "resolve", "")
    before = desk.tickets.history(desk.actor("ivan"), theirs.key)
    never_issued = "RET-999999"
    boris = desk.actor("boris")
    calls: dict[str, Callable[[Actor, str], object]] = {
        "get": desk.tickets.get,
        "history": desk.tickets.history,
        "comments": desk.tickets.comments,
        "confirm": lambda a, k: desk.tickets.transition(a, k, "confirm", ""),
        "dispute": lambda a, k: desk.tickets.transition(a, k, "dispute", "not fixed"),
        "comment": lambda a, k: desk.tickets.comment(a, k, "hello", Visibility.PUBLIC),
    }
    for name, call in calls.items():
        with pytest.raises(NotFound) as hidden:
            call(boris, theirs.key)
        with pytest.raises(NotFound) as missing:
            call(boris, never_issued)
        # the refusal reads the same as for a ticket that does not exist
        assert str(hidden.value) == str(missing.value).replace(never_issued, theirs.key), name
    # nothing happened to the ticket
    assert desk.tickets.history(desk.actor("ivan"), theirs.key) == before
    assert desk.tickets.comments(desk.actor("ivan"), theirs.key) == []
    assert desk.tickets.get(desk.actor("anna"), theirs.key).status == "resolved"
    # while its own requester reaches it
    confirmed = desk.tickets.transition(desk.actor("anna"), theirs.key, "confirm", "")
    assert confirmed.status == "closed"


def test_staff_and_systems_see_every_store(desk: Desk) -> None:
    msk = file(desk, "anna")
    vvo = file(desk, "boris")
    for login in ("ivan", "sergey", "admin", "pos"):
        actor = desk.actor(login)
        assert desk.tickets.get(actor, msk.key).store == "msk-001"
        assert desk.tickets.get(actor, vvo.key).store == "vvo-002"
        listed, _ = desk.tickets.list_tickets(actor, TicketQuery(), include_closed=False)
        assert keys(listed) == {msk.key, vvo.key}, login


def test_a_requester_lists_only_their_own_store(desk: Desk) -> None:
    msk = {file(desk, "anna").key, file(desk, "ivan", "pos-down", store="msk-001").key}
    vvo = {file(desk, "boris").key, file(desk, "pos", "monitoring", store="vvo-002").key}
    anna, boris = desk.actor("anna"), desk.actor("boris")
    listed, _ = desk.tickets.list_tickets(anna, TicketQuery(), include_closed=True)
    assert keys(listed) == msk  # a ticket filed by staff for the store is the store's too
    listed, _ = desk.tickets.list_tickets(boris, TicketQuery(), include_closed=True)
    assert keys(listed) == vvo
    listed, _ = desk.tickets.list_tickets(boris, TicketQuery(store="vvo-002"), include_closed=True)
    assert keys(listed) == vvo
    # filters that match other stores' tickets still stay within the store
    listed, _ = desk.tickets.list_tickets(
        boris, TicketQuery(stop_trade_only=True), include_closed=True
    )
    assert listed == []
    with pytest.raises(PermissionDenied, match="store"):
        desk.tickets.list_tickets(boris, TicketQuery(store="msk-001"), include_closed=True)


def test_internal_comments_are_hidden_from_store_staff(desk: Desk) -> None:
    ticket = file(desk, "boris")
    ivan, boris = desk.actor("ivan"), desk.actor("boris")
    cursor = desk.tickets.start_cursor(0)
    staff_cursor = desk.tickets.start_cursor(0)
    public = desk.tickets.comment(ivan, ticket.key, "On my way", Visibility.PUBLIC)
    secret = desk.tickets.comment(ivan, ticket.key, "Vendor owes us a part", Visibility.INTERNAL)
    reply = desk.tickets.comment(boris, ticket.key, "Thanks", Visibility.PUBLIC)

    assert [c.id for c in desk.tickets.comments(boris, ticket.key)] == [public.id, reply.id]
    assert [c.id for c in desk.tickets.comments(ivan, ticket.key)] == [
        public.id,
        secret.id,
        reply.id,
    ]
    assert secret.visibility is Visibility.INTERNAL

    seen_by_store = desk.tickets.history(boris, ticket.key)
    seen_by_staff = desk.tickets.history(ivan, ticket.key)
    assert len(seen_by_staff) == len(seen_by_store) + 1
    assert all(not e.change.internal for e in seen_by_store)
    assert all("Vendor" not in e.change.after for e in seen_by_store)
    comments = [e for e in seen_by_staff if e.change.action in ("commented", "replied")]
    assert [e.change.field for e in comments] == [
        "public",
        "internal",
        "public",
    ]

    store_events = desk.tickets.events(boris, cursor)
    staff_events = desk.tickets.events(ivan, staff_cursor)
    assert [e.change.after for e in store_events] == ["On my way", "Thanks"]
    assert [e.change.field for e in staff_events] == ["public", "internal", "public"]


def test_store_staff_may_not_write_internal_comments(desk: Desk) -> None:
    ticket = file(desk, "boris")
    with pytest.raises(PermissionDenied, match="visibility"):
        desk.tickets.comment(desk.actor("boris"), ticket.key, "psst", Visibility.INTERNAL)
    assert desk.tickets.comments(desk.actor("ivan"), ticket.key) == []
    assert len(desk.tickets.history(desk.actor("ivan"), ticket.key)) == 3
