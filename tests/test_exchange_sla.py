"""The SLA end to end over real nodes (each its own database, TLS on loopback): a ticket
handed to a node due no later than promised."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from node.domain.partner import Link, LinkState, Terms
from node.domain.sla import ClockState, Timer
from node.domain.ticket import TicketDraft, TicketQuery
from tests.conftest import BACKENDS, START, FakeClock
from tests.exchange_nodes import ChainNode, pair, serving, start_on_backend, wait_for
from tests.test_exchange import link_state, remote_key


@dataclass
class Chain:
    retail: ChainNode
    contractor: ChainNode
    service: ChainNode
    clock: FakeClock


@pytest.fixture(params=BACKENDS)
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chain]:
    """A retail network (RET), its contractor (CON) and a regional service centre (SVC),
    serving, not paired yet."""
    clock = FakeClock()
    retail = start_on_backend(request, tmp_path, "retail", "RET", clock)
    contractor = start_on_backend(request, tmp_path, "contractor", "CON", clock)
    service = start_on_backend(request, tmp_path, "service", "SVC", clock)
    with serving(retail, contractor, service):
        yield Chain(retail, contractor, service, clock)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def links(node: ChainNode, key: str) -> list[Link]:
    with node.desk.db.read() as tx:
        return tx.links.links_of(int(key.split("-")[1]))


def hand_off_late(chain: Chain) -> tuple[str, str]:
    """A P1 ticket of the retail network (respond in 30 min, resolve in 8 business hours)
    handed to the contractor 20 minutes after it was filed, and a ticket of the
    contractor's own filed 10 minutes after it: (the retail key, the hand-off's link)."""
    r, c = chain.retail.desk, chain.contractor.desk
    key = r.tickets.create(r.actor("anna"), TicketDraft("network-down", "Store offline")).key
    chain.clock.advance(minutes(10))
    c.tickets.create(c.actor("anna"), TicketDraft("network-down", "Back office offline"))
    chain.clock.advance(minutes(10))
    handed = chain.retail.exchange.hand_off(r.actor("ivan"), key, chain.contractor.node_id)
    assert handed.respond_by == START + minutes(30)
    return key, handed.link


def test_an_offer_the_contractor_cannot_meet_is_accepted_at_risk_and_due_by_the_offer(
    chain: Chain,
) -> None:
    pair(chain.retail, chain.contractor)
    key, link_id = hand_off_late(chain)
    wait_for("the accept", lambda: link_state(chain.retail, key) is LinkState.ACCEPTED)
    r, c = chain.retail.desk, chain.contractor.desk
    history = [entry.change.after for entry in r.tickets.history(r.actor("ivan"), key)]
    assert any(note.endswith(" at risk") for note in history)

    theirs = c.tickets.get(c.actor("olga"), remote_key(chain.retail, key))
    own = {v.timer: v.due_at for v in theirs.clocks if v.state is ClockState.RUNNING}
    assert own[Timer.FIRST_RESPONSE] == START + minutes(50), "its own clock runs from the offer"
    assert theirs.due_at == START + minutes(30), "due as promised, not by its own clock"
    agreed = links(chain.contractor, theirs.key)[0]
    assert (agreed.id, agreed.respond_by) == (link_id, START + minutes(30))
    assert (theirs.promised_respond_by, theirs.promised_resolve_by) == (
        agreed.respond_by,
        agreed.resolve_by,
    )
    queue = [
        t.key
        for t in c.tickets.list_tickets(c.actor("olga"), TicketQuery(), include_closed=False)[0]
    ]
    assert queue == [theirs.key, "CON-1"], "before the contractor's own ticket due at +40 min"

    chain.clock.advance(minutes(1))
    c.tickets.recompute_sla()
    assert c.tickets.get(c.actor("olga"), theirs.key).due_at == START + minutes(30)


def test_an_offer_the_contractor_cannot_meet_is_rejected_when_its_terms_say_so(
    chain: Chain,
) -> None:
    pair(chain.retail, chain.contractor, Terms(late_offers="reject"))
    key, link_id = hand_off_late(chain)
    wait_for("the rejection", lambda: link_state(chain.retail, key) is LinkState.REJECTED)
    r, c = chain.retail.desk, chain.contractor.desk
    assert r.tickets.get(r.actor("ivan"), key).status == "in_progress", "back with the retail"
    with c.db.read() as tx:
        link = tx.links.link(link_id)
        assert link is not None and link.ticket_id is not None
        theirs = c.tickets.get(c.actor("olga"), tx.key(link.ticket_id))
    assert theirs.status == "cancelled"
    assert theirs.promised_resolve_by is None, "nothing was promised"
