"""What a node refuses from the wire, over real gRPC calls to real nodes.

Three nodes, each with its own database, over TLS on loopback: a retail network (RET) and
a second client (OTH) both hand tickets to one contractor (CON). Envelopes are crafted by
hand (`Wire`, `forge`) and signed by whatever key each case needs. Each refusal must carry
the right gRPC status and a message naming the field and the rule, leave every row the
receiver stores as it was, and leave the node serving: real events sent after it arrive.
"""

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.ahead import AHEAD_MIN
from exchange.envelope import MAX_BODY_BYTES, MAX_MESSAGE_BYTES, digest
from exchange.identity import Identity
from exchange.service import PULL_WINDOW
from node.domain.partner import LinkState, PartnerRole, PartnerState, Terms
from node.domain.ticket import TicketDraft, Visibility
from tests.conftest import BACKENDS, FakeClock
from tests.exchange_nodes import (
    ChainNode,
    Wire,
    chain,
    chain_of,
    comment,
    delivered,
    forge,
    head,
    invite_of,
    make_identity,
    next_event,
    offer,
    pair,
    pull_request,
    snapshot,
    start_on_backend,
    status,
    wait_for,
)

_said = itertools.count()


@dataclass
class Net:
    """Three nodes serving, a hand-off from each client to the contractor, and a stranger."""

    retail: ChainNode
    contractor: ChainNode
    other: ChainNode
    clock: FakeClock
    link: str
    """retail's hand-off to the contractor."""
    other_link: str
    """other's hand-off to the contractor."""
    stranger: Identity
    """A node no one here knows."""
    tmp: Path

    @property
    def nodes(self) -> list[ChainNode]:
        return [self.retail, self.contractor, self.other]


def hand_off(client: ChainNode, contractor: ChainNode) -> str:
    """A ticket of client's handed to contractor and accepted; its link."""
    desk = client.desk
    key = desk.tickets.create(
        desk.actor("anna"), TicketDraft(category="pos-down", title="POS dead")
    ).key
    desk.tickets.transition(desk.actor("ivan"), key, "start", "")
    link = client.exchange.hand_off(desk.actor("ivan"), key, contractor.node_id).link
    wait_for("the accept", lambda: link_state(client, link) is LinkState.ACCEPTED)
    return link


def link_state(node: ChainNode, link: str) -> LinkState | None:
    with node.desk.db.read() as tx:
        found = tx.links.link(link)
    return None if found is None else found.state


def key_on(node: ChainNode, link: str) -> str:
    """The key of node's ticket on link."""
    with node.desk.db.read() as tx:
        found = tx.links.link(link)
        assert found is not None and found.ticket_id is not None
        return tx.key(found.ticket_id)


def comments(node: ChainNode, link: str) -> list[str]:
    desk = node.desk
    return [c.body for c in desk.tickets.comments(desk.actor("ivan"), key_on(node, link))]


def say(node: ChainNode, link: str) -> str:
    """A public comment of node's engineer on its ticket of link; the text said."""
    text = f"note {next(_said)}"
    node.desk.tickets.comment(node.desk.actor("ivan"), key_on(node, link), text, Visibility.PUBLIC)
    return text


def heard(node: ChainNode, link: str, text: str) -> None:
    wait_for(f"{text!r} on {node.name}", lambda: text in comments(node, link))


def logged(node: ChainNode, link: str, *, outbound: bool) -> list[pb.Envelope]:
    """The envelopes of one direction of node's log of link, in sequence."""
    with node.desk.db.read() as tx:
        events = [e for e in tx.links.log_of(link) if e.outbound is outbound]
    return [pb.Envelope.FromString(e.envelope) for e in sorted(events, key=lambda e: e.seq)]


@pytest.fixture(scope="module", params=BACKENDS)
def net(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    tmp = tmp_path_factory.mktemp(f"trust-{request.param}")
    clock = FakeClock()

    retail = start_on_backend(request, tmp, "retail", "RET", clock)
    contractor = start_on_backend(request, tmp, "contractor", "CON", clock)
    other = start_on_backend(request, tmp, "other", "OTH", clock)
    try:
        pair(retail, contractor)
        pair(other, contractor)
        link, other_link = hand_off(retail, contractor), hand_off(other, contractor)
        heard(contractor, link, say(retail, link))
        heard(retail, link, say(contractor, link))
        heard(other, other_link, say(contractor, other_link))
        stranger = make_identity(tmp / "stranger", "stranger-node", clock)
        yield Net(retail, contractor, other, clock, link, other_link, stranger, tmp)
    finally:
        for node in (retail, contractor, other):
            node.stop()


def quiet(net: Net) -> None:
    """Waits until every node has every receipt it waits for (delivered to real nodes)."""
    wait_for("every receipt", lambda: all(delivered(node, net.nodes) for node in net.nodes))


def without_trace(node: ChainNode, *envelopes: pb.Envelope) -> list[pb.Result]:
    """The results of delivering envelopes to node, which must change nothing it stores."""
    before = snapshot(node)
    wire = Wire(node)
    try:
        results = wire.deliver(*envelopes)
    finally:
        wire.close()
    assert snapshot(node) == before
    return results


def exchange_goes_on(net: Net) -> None:
    """Real events still flow to each node after what was refused."""
    heard(net.contractor, net.link, say(net.retail, net.link))
    heard(net.retail, net.link, say(net.contractor, net.link))
    heard(net.other, net.other_link, say(net.contractor, net.other_link))
    quiet(net)


@pytest.fixture
def trio(net: Net) -> Iterator[Net]:
    """The net, quiet before the test, shown still working after it."""
    quiet(net)
    yield net
    exchange_goes_on(net)


def test_tampered_body_bytes_are_refused_as_not_signed(trio: Net) -> None:
    sent = logged(trio.retail, trio.link, outbound=True)[-1]
    flipped = bytes([sent.body[0] ^ 1]) + sent.body[1:]
    tampered = pb.Envelope(body=flipped, signature=sent.signature, key_id=sent.key_id)

    [result] = without_trace(trio.contractor, tampered)

    assert status(result) == "UNAUTHENTICATED"
    assert result.message == "signature: does not verify over the body's bytes"


def test_a_key_the_node_does_not_know_is_refused(trio: Net) -> None:
    as_itself = next_event(trio.contractor, trio.stranger, trio.link, "comment", comment("hi"))
    seq, prev = head(trio.contractor, trio.link)
    as_retail = forge(
        trio.stranger,
        link=trio.link,
        seq=seq + 1,
        prev=prev,
        destination=trio.contractor.node_id,
        kind="comment",
        event=comment("hi"),
        sender=trio.retail.node_id,
    )

    results = without_trace(trio.contractor, as_itself, as_retail)

    unknown = f"key_id: no partner key '{trio.stranger.key_id}'"
    assert [(status(r), r.message) for r in results] == [("UNAUTHENTICATED", unknown)] * 2


def test_a_partner_cannot_sign_an_event_of_another_node(trio: Net) -> None:
    seq, prev = head(trio.contractor, trio.link)
    forged = forge(
        trio.other.identity,
        link=trio.link,
        seq=seq + 1,
        prev=prev,
        destination=trio.contractor.node_id,
        kind="comment",
        event=comment("the retail network says so"),
        sender=trio.retail.node_id,
    )

    [result] = without_trace(trio.contractor, forged)

    assert status(result) == "UNAUTHENTICATED"
    assert result.message == "sender: 'retail-node' did not sign this event"


def test_an_exact_duplicate_gets_its_first_receipt_and_is_applied_once(trio: Net) -> None:
    first = logged(trio.retail, trio.link, outbound=True)[-1]
    seen = comments(trio.contractor, trio.link)
    with trio.contractor.desk.db.read() as tx:
        taken = tx.links.inbound(trio.link, pb.Body.FromString(first.body).seq)
    assert taken is not None

    [result] = without_trace(trio.contractor, first)

    assert (status(result), result.receipt.SerializeToString()) == ("OK", taken.receipt)
    assert comments(trio.contractor, trio.link) == seen


def test_a_replay_with_other_content_under_a_used_seq_is_refused(trio: Net) -> None:
    first = pb.Body.FromString(logged(trio.retail, trio.link, outbound=True)[-1].body)
    replay = forge(
        trio.retail.identity,
        link=trio.link,
        seq=first.seq,
        prev=first.prev,
        destination=trio.contractor.node_id,
        kind="comment",
        event=comment("something else entirely"),
    )

    [result] = without_trace(trio.contractor, replay)

    assert status(result) == "ALREADY_EXISTS"
    assert result.message == f"seq: {first.seq} on link {trio.link} was another event (a replay?)"


def test_an_event_on_a_link_the_sender_is_not_party_to_is_refused(trio: Net) -> None:
    seq, prev = head(trio.contractor, trio.link)
    intruding = forge(
        trio.other.identity,
        link=trio.link,
        seq=seq + 1,
        prev=prev,
        destination=trio.contractor.node_id,
        kind="comment",
        event=comment("not mine to say"),
    )

    [result] = without_trace(trio.contractor, intruding)

    assert status(result) == "PERMISSION_DENIED"
    assert result.message == f"link: other-node is not party to link {trio.link}"


def test_an_event_addressed_to_another_node_is_refused(trio: Net) -> None:
    captured = logged(trio.contractor, trio.link, outbound=True)[-1]
    assert pb.Body.FromString(captured.body).destination == trio.retail.node_id

    [result] = without_trace(trio.other, captured)

    assert status(result) == "PERMISSION_DENIED"
    assert result.message == "destination: addressed to 'retail-node', not 'other-node'"


def test_a_gap_is_refused_with_the_sequence_expected(trio: Net) -> None:
    seq, prev = head(trio.contractor, trio.link)
    ahead = forge(
        trio.retail.identity,
        link=trio.link,
        seq=seq + 2,
        prev=prev,
        destination=trio.contractor.node_id,
        kind="comment",
        event=comment("from the future"),
    )

    [result] = without_trace(trio.contractor, ahead)

    assert (status(result), result.expected_seq) == ("FAILED_PRECONDITION", seq + 1)
    assert result.message == f"seq: got {seq + 2} on link {trio.link}, expected {seq + 1}"


def test_an_event_off_the_chain_is_refused(trio: Net) -> None:
    seq, _prev = head(trio.contractor, trio.link)
    off_chain = forge(
        trio.retail.identity,
        link=trio.link,
        seq=seq + 1,
        prev=digest(b"another history"),
        destination=trio.contractor.node_id,
        kind="comment",
        event=comment("rewritten"),
    )

    [result] = without_trace(trio.contractor, off_chain)

    assert status(result) == "INVALID_ARGUMENT"
    assert result.message == f"prev: does not chain to event {seq} on link {trio.link}"


def test_kinds_a_side_may_not_send_are_refused(trio: Net) -> None:
    contractor_offers = next_event(
        trio.retail, trio.contractor.identity, trio.link, "offer", offer("mine now", "CON-1")
    )
    client_resolves = next_event(
        trio.contractor, trio.retail.identity, trio.link, "resolved", pb.Resolved()
    )
    first_offer = pb.Body.FromString(logged(trio.retail, trio.link, outbound=True)[0].body).offer
    client_offers_again = next_event(
        trio.contractor, trio.retail.identity, trio.link, "offer", first_offer
    )
    contractor_opens = forge(
        trio.contractor.identity,
        link="a" * 32,
        seq=1,
        prev=b"",
        destination=trio.retail.node_id,
        kind="offer",
        event=offer("work for me", "CON-1"),
    )

    [offered] = without_trace(trio.retail, contractor_offers)
    [resolved] = without_trace(trio.contractor, client_resolves)
    [again] = without_trace(trio.contractor, client_offers_again)
    [opened] = without_trace(trio.retail, contractor_opens)

    assert [(status(r), r.message) for r in (offered, resolved, again, opened)] == [
        ("PERMISSION_DENIED", f"event: the partner side of link {trio.link} may not send offer"),
        ("PERMISSION_DENIED", f"event: the origin side of link {trio.link} may not send resolved"),
        ("PERMISSION_DENIED", f"event: the origin side of link {trio.link} may not send offer"),
        ("PERMISSION_DENIED", "offer: contractor-node is our contractor, not our client"),
    ]


def test_a_suspended_or_removed_partner_is_refused(trio: Net) -> None:
    contractor = trio.contractor.exchange
    contractor.set_state(trio.retail.node_id, PartnerState.SUSPENDED)
    try:
        event = next_event(
            trio.contractor, trio.retail.identity, trio.link, "comment", comment("hello?")
        )
        [result] = without_trace(trio.contractor, event)
        wire = Wire(trio.contractor)
        with pytest.raises(grpc.RpcError) as pulled:
            wire.pull(
                pull_request(
                    trio.retail.identity,
                    trio.contractor.node_id,
                    {trio.link: 0},
                    at=trio.clock.now(),
                )
            )
        wire.close()
    finally:
        contractor.set_state(trio.retail.node_id, PartnerState.ACTIVE)
    assert (status(result), result.message) == (
        "PERMISSION_DENIED",
        "sender: partner retail-node is suspended",
    )
    assert pulled.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert pulled.value.details() == "sender: retail-node is not an active partner"

    former = make_identity(trio.tmp / "former", "former-node", trio.clock)
    contractor.add_partner(invite_of(former), PartnerRole.CLIENT, Terms())
    contractor.set_state(former.node_id, PartnerState.REMOVED)
    [removed] = without_trace(
        trio.contractor,
        forge(
            former,
            link="b" * 32,
            seq=1,
            prev=b"",
            destination=trio.contractor.node_id,
            kind="offer",
            event=offer("still there?", "FOR-1"),
        ),
    )
    assert (status(removed), removed.message) == (
        "PERMISSION_DENIED",
        "sender: partner former-node is removed",
    )


def test_an_oversized_body_is_refused(trio: Net) -> None:
    huge = next_event(
        trio.contractor, trio.retail.identity, trio.link, "comment", comment("x" * MAX_BODY_BYTES)
    )

    [result] = without_trace(trio.contractor, huge)

    assert status(result) == "RESOURCE_EXHAUSTED"
    assert result.message == f"body: {len(huge.body)} bytes, at most {MAX_BODY_BYTES}"


def test_an_oversized_message_fails_the_call_only(trio: Net) -> None:
    event = next_event(
        trio.contractor, trio.retail.identity, trio.link, "comment", comment("x" * 250_000)
    )
    count = MAX_MESSAGE_BYTES // len(event.body) + 1
    before = snapshot(trio.contractor)
    wire = Wire(trio.contractor, max_send_bytes=2 * MAX_MESSAGE_BYTES)
    with pytest.raises(grpc.RpcError) as failed:
        wire.deliver(*[event] * count)
    wire.close()

    assert failed.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert snapshot(trio.contractor) == before


def test_pull_gives_a_partner_only_what_was_sent_to_it_and_only_once_made(trio: Net) -> None:
    wire, now = Wire(trio.contractor), trio.clock.now()
    try:
        mine = wire.pull(
            pull_request(trio.retail.identity, trio.contractor.node_id, {trio.link: 0}, at=now)
        )
        not_mine = wire.pull(
            pull_request(trio.other.identity, trio.contractor.node_id, {trio.link: 0}, at=now)
        )
        refusals = []
        before = snapshot(trio.contractor)
        for request in (
            pull_request(trio.stranger, trio.contractor.node_id, {trio.link: 0}, at=now),
            pull_request(trio.retail.identity, trio.other.node_id, {trio.link: 0}, at=now),
            pull_request(
                trio.other.identity,
                trio.contractor.node_id,
                {trio.link: 0},
                at=now,
                sender=trio.retail.node_id,
            ),
            pull_request(
                trio.retail.identity,
                trio.contractor.node_id,
                {trio.link: 0},
                at=now - PULL_WINDOW - timedelta(seconds=1),
            ),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                wire.pull(request)
            refusals.append((refused.value.code().name, refused.value.details()))
        assert snapshot(trio.contractor) == before
    finally:
        wire.close()

    assert mine == logged(trio.contractor, trio.link, outbound=True)
    assert not_mine == []
    assert refusals == [
        ("UNAUTHENTICATED", f"key_id: no partner key '{trio.stranger.key_id}'"),
        ("PERMISSION_DENIED", "destination: addressed to 'other-node', not 'contractor-node'"),
        ("UNAUTHENTICATED", "sender: 'retail-node' did not sign this request"),
        (
            "PERMISSION_DENIED",
            f"at: {now - PULL_WINDOW - timedelta(seconds=1):%Y-%m-%d %H:%M:%S}Z is more than "
            "0:15:00 from our clock",
        ),
    ]


def test_one_bad_event_fails_only_itself_and_its_link_heals_in_order(trio: Net) -> None:
    client = make_identity(trio.tmp / "client", "client-node", trio.clock)
    trio.contractor.exchange.add_partner(invite_of(client), PartnerRole.CLIENT, Terms())
    me = trio.contractor.node_id
    x1, x2, x3 = chain(
        client,
        "x" * 32,
        me,
        [("offer", offer("X", "CLI-1")), ("comment", comment("x2")), ("comment", comment("x3"))],
    )
    y1, y2, y3 = chain(
        client,
        "y" * 32,
        me,
        [("offer", offer("Y", "CLI-2")), ("comment", comment("y2")), ("comment", comment("y3"))],
    )
    wire = Wire(trio.contractor)
    try:
        mixed = wire.deliver(x1, y1, x3, y2, x2, y3)
        x_before_fix = comments(trio.contractor, "x" * 32)
        fixed = wire.deliver(x2, x3)
    finally:
        wire.close()

    assert [(status(r), r.expected_seq) for r in mixed] == [
        ("OK", 0),
        ("OK", 0),
        ("FAILED_PRECONDITION", 2),
        ("OK", 0),
        ("FAILED_PRECONDITION", 2),
        ("OK", 0),
    ]
    assert comments(trio.contractor, "y" * 32) == ["y2", "y3"]
    assert x_before_fix == []
    assert [status(r) for r in fixed] == ["OK", "OK"]
    assert comments(trio.contractor, "x" * 32) == ["x2", "x3"]


def test_a_long_call_verified_ahead_takes_a_key_announced_in_it_and_refuses_a_forgery(
    trio: Net,
) -> None:
    """Enough events in one call to be verified ahead of applying them (exchange/ahead.py):
    events signed by a key the same call announces, and a tampered one, come out as they
    do one by one."""
    client = make_identity(trio.tmp / "rotating", "rotating-node", trio.clock)
    trio.contractor.exchange.add_partner(invite_of(client), PartnerRole.CLIENT, Terms())
    rotated = dataclasses.replace(client, signing_key=Ed25519PrivateKey.generate())
    me = trio.contractor.node_id
    announced = pb.KeyAnnouncement(key_id=rotated.key_id, public_key=rotated.public_key)
    [announcement] = chain_of("", me, [(client, "key", announced)])
    x = chain_of(
        "r" * 32,
        me,
        [(client, "offer", offer("X", "ROT-1"))]
        + [(client, "comment", comment(f"x{n}")) for n in range(2, 8)]
        + [(rotated, "comment", comment(f"x{n}")) for n in range(8, 14)],
    )
    y1, y2, y3, y4 = chain_of(
        "s" * 32,
        me,
        [(client, "offer", offer("Y", "ROT-2"))]
        + [(rotated, "comment", comment(f"y{n}")) for n in range(2, 5)],
    )
    forged = pb.Envelope(
        body=y3.body.replace(b"y3", b"Y3"), signature=y3.signature, key_id=y3.key_id
    )
    call = [*x[:7], announcement, *x[7:], y1, y2, forged, y4]
    assert len(call) >= AHEAD_MIN

    wire = Wire(trio.contractor)
    try:
        results = wire.deliver(*call)
    finally:
        wire.close()

    assert [(status(r), r.expected_seq, r.message) for r in results[:-2]] == [("OK", 0, "")] * (
        len(call) - 2
    )
    assert (status(results[-2]), results[-2].message) == (
        "UNAUTHENTICATED",
        "signature: does not verify over the body's bytes",
    )
    assert (status(results[-1]), results[-1].expected_seq) == ("FAILED_PRECONDITION", 3)
    assert comments(trio.contractor, "r" * 32) == [f"x{n}" for n in range(2, 14)]
    assert comments(trio.contractor, "s" * 32) == ["y2"]


@pytest.mark.parametrize(
    ("link", "rule"),
    [
        ("~retail-node", "link: may not start with '~'"),
        ("l" * 41, "link: at most 40 characters"),
    ],
)
def test_a_malformed_link_id_is_refused(trio: Net, link: str, rule: str) -> None:
    client = make_identity(trio.tmp / f"bad-{len(link)}", f"bad{len(link)}-node", trio.clock)
    trio.contractor.exchange.add_partner(invite_of(client), PartnerRole.CLIENT, Terms())
    [opening] = chain(client, link, trio.contractor.node_id, [("offer", offer("T", "B-1"))])

    [result] = without_trace(trio.contractor, opening)

    assert (status(result), result.message) == ("INVALID_ARGUMENT", rule)
