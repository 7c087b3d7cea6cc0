"""Key rotation in the middle of a conversation, two nodes over TLS on loopback.

The retail node's admin rotates its signing key the way `hdx keys rotate` does: from
another process, with services of its own over the node's database and data
directory, while the node serves on. The contractor learns the new key from an
announcement the old key signed, applies what the new key signs, and the events
the old key signed still verify against the old key it keeps.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hdx.exchange.v1 import exchange_pb2 as pb

from exchange import identity, keys
from exchange.service import CONTROL_PREFIX, ExchangeService
from node.domain.partner import LinkState
from node.domain.ticket import TicketDraft, Visibility
from node.services.tickets import TicketService
from tests.conftest import BACKENDS, Desk, FakeClock
from tests.exchange_nodes import (
    ChainNode,
    delivered,
    link_state,
    remote_key,
    retail_and_contractor,
    wait_for,
)


@pytest.fixture(params=BACKENDS)
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ChainNode, ChainNode]]:
    with retail_and_contractor(request, tmp_path, FakeClock()) as pair:
        yield pair


def handed(retail: ChainNode, title: str) -> tuple[str, str]:
    """A ticket of the retail node handed to the contractor and accepted: (ours, theirs)."""
    r = retail.desk
    partner = retail.exchange.partners()[0][0].node_id
    key = r.tickets.create(r.actor("anna"), TicketDraft(category="pos-down", title=title)).key
    r.tickets.transition(r.actor("ivan"), key, "start", "")
    retail.exchange.hand_off(r.actor("ivan"), key, partner)
    wait_for(f"the accept of {key}", lambda: link_state(retail, key) is LinkState.ACCEPTED)
    return key, remote_key(retail, key)


def comments(desk: Desk, key: str) -> list[str]:
    return [c.body for c in desk.tickets.comments(desk.actor("ivan"), key)]


def test_a_key_rotated_mid_conversation_is_learnt_and_what_the_old_key_signed_still_verifies(
    nodes: tuple[ChainNode, ChainNode], tmp_path: Path
) -> None:
    retail, contractor = nodes
    r, c = retail.desk, contractor.desk
    key, theirs = handed(retail, "POS dead")
    r.tickets.comment(r.actor("ivan"), key, "before the rotation", Visibility.PUBLIC)
    wait_for("the first comment", lambda: comments(c, theirs) == ["before the rotation"])
    old = retail.exchange.identity.key_id

    data_dir = tmp_path / "retail"
    admin = ExchangeService(
        TicketService(r.db, r.clock),
        identity.load(data_dir, retail.node_id),
        identity.own_keys(data_dir),
    )
    rotated = keys.rotate(admin, data_dir)

    assert (rotated.old_key_id, rotated.partners) == (old, 1)
    new = rotated.new_key_id
    assert new != old
    r.tickets.comment(
        r.actor("ivan"), key, "the server still signs with the old key", Visibility.PUBLIC
    )
    assert keys.follow(retail.exchange, data_dir), "the serving node picks the new key up"
    assert retail.exchange.identity.key_id == new
    assert not keys.follow(retail.exchange, data_dir)
    r.tickets.comment(r.actor("ivan"), key, "after the rotation", Visibility.PUBLIC)
    second, second_theirs = handed(retail, "Card terminal declines")
    c.tickets.transition(c.actor("olga"), theirs, "start", "")
    c.tickets.transition(c.actor("olga"), theirs, "resolve", "")

    wait_for("the later comments", lambda: len(comments(c, theirs)) == 3)
    assert comments(c, theirs) == [
        "before the rotation",
        "the server still signs with the old key",
        "after the rotation",
    ]
    assert c.tickets.get(c.actor("olga"), second_theirs).title == "Card terminal declines"
    wait_for("the resolution", lambda: link_state(retail, key) is LinkState.RESOLVED)
    wait_for("every receipt", lambda: delivered(retail) and delivered(contractor))

    # the announcement went out first, signed by the old key; the new key signed what followed
    with r.db.read() as tx:
        sent = [
            e
            for link_id in (CONTROL_PREFIX + contractor.node_id, *links(retail, key, second))
            for e in tx.links.log_of(link_id)
            if e.outbound
        ]
    sent.sort(key=lambda e: e.id)
    by_key = [(e.kind, pb.Envelope.FromString(e.envelope).key_id) for e in sent]
    first_new = [k for _, k in by_key].index(new)
    assert by_key.index(("key", old)) < first_new
    assert all(k == new for _, k in by_key[first_new:])

    # both nodes keep both keys: every event the retail node ever signed still verifies
    for node in (retail, contractor):
        with node.desk.db.read() as tx:
            assert set(tx.links.keys_of(retail.node_id)) == {old, new}
    with c.db.read() as tx:
        inbound = [
            e
            for link_id in links(retail, key, second)
            for e in tx.links.log_of(link_id)
            if not e.outbound
        ]
        assert {pb.Envelope.FromString(e.envelope).key_id for e in inbound} == {old, new}
        for event in inbound:
            envelope = pb.Envelope.FromString(event.envelope)
            signer = tx.links.key(envelope.key_id)
            assert signer is not None and signer[0] == retail.node_id
            assert identity.verify(signer[1], envelope.signature, envelope.body)


def links(node: ChainNode, *ticket_keys: str) -> list[str]:
    """The ids of the links of node's tickets."""
    with node.desk.db.read() as tx:
        return [
            link.id for key in ticket_keys for link in tx.links.links_of(int(key.split("-")[1]))
        ]
