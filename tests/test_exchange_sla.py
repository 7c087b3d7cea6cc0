"""The SLA end to end over real nodes (each its own database, TLS on loopback): deadlines
never later down a chain of hand-offs, a ticket due no later than promised, and
`hdx sla verify` printing the same verdict of a link on both of its nodes."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from node.domain.partner import Link, LinkState, Terms
from node.domain.sla import ClockState, Timer
from node.domain.ticket import Priority, TicketDraft, TicketPatch, TicketQuery
from node.store import schema
from tests.conftest import BACKENDS, START, FakeClock
from tests.exchange_nodes import (
    ChainNode,
    delivered,
    link_state,
    pair,
    remote_key,
    serving,
    start_on_backend,
    wait_for,
)
from tests.node_processes import run


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


def verdicts(node: ChainNode, key: str, *, ok: bool = True) -> dict[str, list[str]]:
    """What `hdx sla verify key` prints on node: each link's lines after its header."""
    result = run("--data-dir", str(node.data_dir), "sla", "verify", key)
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    blocks = result.stdout.split("\nlink ")[1:]
    return {block.split(":")[0]: block.splitlines()[1:] for block in blocks}


def test_deadlines_never_get_later_down_a_chain_and_each_node_prints_the_same_verdicts(
    chain: Chain,
) -> None:
    retail, contractor, service = nodes = chain.retail, chain.contractor, chain.service
    r, c, s = retail.desk, contractor.desk, service.desk

    def later(n: float) -> None:
        """n minutes later, once every event sent so far has its receipt."""
        wait_for("every receipt", lambda: all(delivered(node) for node in nodes))
        chain.clock.advance(minutes(n))

    pair(retail, contractor)
    pair(contractor, service)
    key = r.tickets.create(r.actor("anna"), TicketDraft("scales", "Scales print no labels")).key
    r.tickets.transition(r.actor("ivan"), key, "start", "")
    later(10)
    up = retail.exchange.hand_off(r.actor("ivan"), key, contractor.node_id, "aisle 3")
    mid = wait_for("the contractor's accept", lambda: remote_key(retail, key))
    c.tickets.assign(c.actor("olga"), mid, "olga", None, frozenset())
    later(10)
    down = contractor.exchange.hand_off(c.actor("olga"), mid, service.node_id)
    assert (down.respond_by, down.resolve_by) == (up.respond_by, up.resolve_by), (
        "the contractor's own clocks would give later ones"
    )
    last = wait_for("the service centre's accept", lambda: remote_key(contractor, mid))

    later(1)
    r.tickets.update(r.actor("ivan"), key, TicketPatch(priority=Priority.P1))
    agreed = links(retail, key)[0]
    assert agreed.respond_by == START + minutes(30), "P1: respond within 30 minutes"
    wait_for(
        "the earlier deadlines at the end of the chain",
        lambda: links(service, last)[0].respond_by == agreed.respond_by,
    )
    assert links(service, last)[0].resolve_by == agreed.resolve_by
    assert s.tickets.get(s.actor("olga"), last).due_at == agreed.respond_by

    later(5)
    s.tickets.transition(s.actor("olga"), last, "start", "")
    later(5)
    s.tickets.transition(s.actor("olga"), last, "wait_requester", "")
    wait_for(
        "the pause at the retail",
        lambda: r.tickets.get(r.actor("ivan"), key).status == "waiting_requester",
    )
    later(40)
    s.tickets.transition(s.actor("olga"), last, "resume", "")
    later(30)
    s.tickets.transition(s.actor("olga"), last, "resolve", "")
    later(10)
    c.tickets.transition(c.actor("olga"), mid, "resolve", "")
    later(5)
    r.tickets.transition(r.actor("ivan"), key, "resolve", "")
    r.tickets.transition(r.actor("anna"), key, "confirm", "")
    wait_for("the end", lambda: s.tickets.get(s.actor("olga"), last).status == "closed")
    later(0)

    at_retail, at_contractor = verdicts(retail, key), verdicts(contractor, mid)
    at_service = verdicts(service, last)
    assert at_contractor.keys() == {up.link, down.link}
    assert at_retail[up.link] == at_contractor[up.link]
    assert at_contractor[down.link] == at_service[down.link]
    assert at_service[down.link] == [
        "  verified: 10 events, signatures, chains and receipts",
        "  origin contractor-node, partner service-node: closed",
        "  respond by 2026-11-23 09:42:00Z: met 0h04m00s early, done 2026-11-23 09:38:00Z",
        "  resolve by 2026-11-24 08:52:00Z (+0h40m00s paused): met 21h59m00s early, "
        "done 2026-11-23 10:53:00Z",
        "  paused 2026-11-23 09:43:00Z - 2026-11-23 10:23:00Z (0h40m00s) by service-node: "
        "waiting_requester",
        "  deadlines from 2026-11-23 09:32:00Z, offer by contractor-node: "
        "respond by 2026-11-23 13:12:00Z, resolve by 2026-11-26 09:12:00Z",
        "  deadlines from 2026-11-23 09:32:00Z, accept by service-node: "
        "respond by 2026-11-23 13:12:00Z, resolve by 2026-11-26 09:12:00Z",
        "  deadlines from 2026-11-23 09:33:00Z, deadline by contractor-node: "
        "respond by 2026-11-23 09:42:00Z, resolve by 2026-11-24 08:12:00Z "
        "(deadlines agreed with retail-node changed)",
        "  held by contractor-node from 2026-11-23 09:32:00Z",
        "  held by service-node from 2026-11-23 09:32:00Z",
        "  held by contractor-node from 2026-11-23 10:53:00Z",
    ]
    assert (
        "  paused 2026-11-23 09:43:00Z - 2026-11-23 10:23:00Z (0h40m00s) by contractor-node: "
        "waiting_requester" in at_retail[up.link]
    ), "the pause went up the chain"

    e = schema.link_events.c
    with contractor.desk.db.engine.begin() as conn:
        offer = conn.execute(
            select(e.id, e.envelope).where(e.link == up.link, e.kind == "offer")
        ).one()
        changed = bytearray(offer.envelope)
        changed[10] ^= 1
        conn.execute(
            update(schema.link_events).where(e.id == offer.id).values(envelope=bytes(changed))
        )
    failed = verdicts(contractor, mid, ok=False)
    refusal = run("--data-dir", str(contractor.data_dir), "sla", "verify", mid).stderr
    assert refusal == f"hdx: error: 1 of 2 link(s) of {mid} do not verify\n"
    assert failed[up.link] == [
        "  verification FAILED (11 events):",
        f"    row {offer.id}: signature: does not verify over the body's bytes",
        "    retail-node #1: seq: missing from the chain",
    ]
    assert failed[down.link] == at_contractor[down.link], "the other link still verifies"
    assert verdicts(retail, key) == at_retail, "the retail's own copy is untouched"


def test_sla_verify_names_what_is_wrong_with_the_ticket_asked_for(chain: Chain) -> None:
    r, data_dir = chain.retail.desk, str(chain.retail.data_dir)
    key = r.tickets.create(r.actor("anna"), TicketDraft("scales", "Scales print no labels")).key
    alone = run("--data-dir", data_dir, "sla", "verify", key)
    assert (alone.returncode, alone.stdout) == (0, f"{key}: 0 link(s)\n")
    missing = run("--data-dir", data_dir, "sla", "verify", "RET-999")
    assert (missing.returncode, missing.stderr) == (1, "hdx: error: ticket 'RET-999' not found\n")
    foreign = run("--data-dir", data_dir, "sla", "verify", "CON-1")
    assert foreign.returncode == 1
    assert "key: belongs to another node" in foreign.stderr
