"""The SLA state a node keeps beside each ticket is the one its history derives:
`SlaService.derive` replays the history and must find the stored clocks, on SQLite
and PostgreSQL."""

from collections.abc import Callable
from datetime import timedelta

from node.domain.ticket import Priority, TicketDraft, TicketPatch, Visibility
from tests.conftest import Desk


def test_the_stored_clocks_are_the_ones_the_history_derives(desk: Desk) -> None:
    ivan, anna, sergey = desk.actor("ivan"), desk.actor("anna"), desk.actor("sergey")
    key = desk.tickets.create(anna, TicketDraft(category="scales", title="scales")).key
    steps: list[Callable[[], object]] = [
        lambda: desk.tickets.assign(sergey, key, "ivan", None, frozenset()),
        lambda: desk.tickets.transition(ivan, key, "start", ""),
        lambda: desk.tickets.comment(ivan, key, "on it", Visibility.PUBLIC),
        lambda: desk.tickets.transition(ivan, key, "wait_requester", ""),
        lambda: desk.tickets.comment(anna, key, "tried again", Visibility.PUBLIC),
        lambda: desk.tickets.transition(ivan, key, "resume", ""),
        lambda: desk.tickets.update(ivan, key, TicketPatch(priority=Priority.P2)),
        lambda: desk.tickets.transition(ivan, key, "wait_partner", ""),
        lambda: desk.tickets.transition(ivan, key, "resume", ""),
        lambda: desk.tickets.transition(ivan, key, "resolve", ""),
        lambda: desk.tickets.transition(anna, key, "dispute", "still broken"),
        lambda: desk.tickets.comment(ivan, key, "back on it", Visibility.PUBLIC),
    ]
    for step in steps:
        desk.clock.advance(timedelta(minutes=37))
        step()
        with desk.db.read() as tx:
            ticket = desk.tickets.get(ivan, key)
            derived = desk.tickets.sla.derive(tx, ticket)
        assert (derived.policy, derived.cycle, derived.responded) == (
            ticket.sla.policy,
            ticket.sla.cycle,
            ticket.sla.responded,
        )
        assert [c for c in derived.clocks if c.live] == list(ticket.sla.clocks)
    assert ticket.sla.cycle == 2
