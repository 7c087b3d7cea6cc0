"""Two nodes over the exchange, each with its own database, over TLS on loopback: a retail
node hands a stop-trade ticket to its contractor and both follow it to the end."""

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from exchange.delivery import LEASE
from node.domain.partner import LinkState
from node.domain.ticket import TicketDraft, Visibility
from tests.conftest import BACKENDS, FakeClock
from tests.exchange_nodes import (
    ChainNode,
    delivered,
    link_state,
    remote_key,
    retail_and_contractor,
    wait_for,
)


@pytest.fixture(params=BACKENDS)
def nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ChainNode, ChainNode, FakeClock]]:
    """A retail node (RET) and its contractor (CON), paired, serving."""
    clock = FakeClock()
    with retail_and_contractor(request, tmp_path, clock) as (retail, contractor):
        yield retail, contractor, clock


def test_a_hand_off_is_accepted_worked_resolved_and_confirmed_end_to_end(
    nodes: tuple[ChainNode, ChainNode, FakeClock],
) -> None:
    retail, contractor, clock = nodes
    r, c = retail.desk, contractor.desk
    key = r.tickets.create(r.actor("anna"), TicketDraft(category="pos-down", title="POS dead")).key
    r.tickets.transition(r.actor("ivan"), key, "start", "")
    handed = retail.exchange.hand_off(r.actor("ivan"), key, contractor.node_id, "register 2")
    assert handed.resolve_by == clock.now() - timedelta(minutes=0) + timedelta(hours=4)

    wait_for("the accept", lambda: link_state(retail, key) is LinkState.ACCEPTED)
    theirs = remote_key(retail, key)
    assert theirs.startswith("CON-")
    ticket = c.tickets.get(c.actor("ivan"), theirs)
    assert (ticket.title, ticket.stop_trade, ticket.status) == ("POS dead", True, "new")
    assert r.tickets.get(r.actor("ivan"), key).status == "waiting_partner"

    clock.advance(timedelta(minutes=20))
    c.tickets.transition(c.actor("olga"), theirs, "start", "")
    c.tickets.comment(c.actor("olga"), theirs, "engineer on the way", Visibility.PUBLIC)
    c.tickets.comment(c.actor("olga"), theirs, "spare board from stock", Visibility.INTERNAL)
    clock.advance(timedelta(hours=1))
    c.tickets.transition(c.actor("olga"), theirs, "resolve", "")

    wait_for("the resolution", lambda: link_state(retail, key) is LinkState.RESOLVED)
    mine = r.tickets.get(r.actor("ivan"), key)
    assert mine.status == "in_progress"
    bodies = [comment.body for comment in r.tickets.comments(r.actor("ivan"), key)]
    assert bodies == ["engineer on the way"], "the internal comment never crosses"

    r.tickets.transition(r.actor("ivan"), key, "resolve", "")
    r.tickets.transition(r.actor("anna"), key, "confirm", "")
    wait_for("the confirmation", lambda: c.tickets.get(c.actor("olga"), theirs).status == "closed")
    wait_for("every receipt", lambda: delivered(retail) and delivered(contractor))

    with retail.desk.db.read() as tx:
        ours = [(e.outbound, e.seq, e.kind, e.digest) for e in tx.links.log_of(handed.link)]
    with contractor.desk.db.read() as tx:
        theirs_log = [(e.outbound, e.seq, e.kind, e.digest) for e in tx.links.log_of(handed.link)]
    assert sorted((not o, s, k, d) for o, s, k, d in theirs_log) == sorted(ours)
    assert [k for o, _, k, _ in sorted(ours) if o] == ["offer", "confirmed"]
    assert [k for o, s, k, _ in sorted(ours, key=lambda e: e[1]) if not o] == [
        "accept",
        "status",
        "comment",
        "resolved",
    ]


def test_an_event_on_a_ticket_being_changed_waits_for_the_change_instead_of_deadlocking(
    nodes: tuple[ChainNode, ChainNode, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    retail, contractor, _ = nodes
    r, c = retail.desk, contractor.desk
    key = r.tickets.create(r.actor("anna"), TicketDraft(category="pos-down", title="POS dead")).key
    r.tickets.transition(r.actor("ivan"), key, "start", "")
    retail.exchange.hand_off(r.actor("ivan"), key, contractor.node_id)
    wait_for("the accept", lambda: link_state(retail, key) is LinkState.ACCEPTED)
    theirs, olga = remote_key(retail, key), c.actor("olga")

    with c.db.write() as tx:  # olga's comment, under way: it holds the ticket
        ticket = c.tickets.for_change(tx, olga, theirs)
        r.tickets.comment(r.actor("ivan"), key, "is it fixed?", Visibility.PUBLIC)
        time.sleep(0.5)  # the comment's event arrives and waits for the ticket
        c.tickets.remark(tx, olga, ticket, "on my way", Visibility.PUBLIC)  # and its link

    wait_for("every receipt", lambda: delivered(retail) and delivered(contractor))
    for node, mine in ((retail, key), (contractor, theirs)):
        comments = node.desk.tickets.comments(node.desk.actor("ivan"), mine)
        assert sorted(comment.body for comment in comments) == ["is it fixed?", "on my way"]
    assert not [r.message for r in caplog.records if "refused" in r.message]


def test_a_lease_left_by_a_killed_process_holds_delivery_up_only_until_it_ends(
    nodes: tuple[ChainNode, ChainNode, FakeClock],
) -> None:
    retail, contractor, clock = nodes
    r = retail.desk
    key = r.tickets.create(r.actor("anna"), TicketDraft(category="pos-down", title="POS dead")).key
    r.tickets.transition(r.actor("ivan"), key, "start", "")
    retail.exchange.hand_off(r.actor("ivan"), key, contractor.node_id)
    wait_for("the accept", lambda: link_state(retail, key) is LinkState.ACCEPTED)
    with r.db.write() as tx:  # a process of the node claimed the partner, then was killed
        assert tx.links.claim(contractor.node_id, "killed", clock.now(), clock.now() + LEASE)

    r.tickets.comment(r.actor("ivan"), key, "still there?", Visibility.PUBLIC)
    time.sleep(0.5)
    assert not delivered(retail), "sent while another process held the lease"
    clock.advance(LEASE)

    wait_for("the comment after the lease", lambda: delivered(retail), timeout=10)
