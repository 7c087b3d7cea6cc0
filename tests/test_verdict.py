"""The SLA verdict and the verification of a link's signed log, as pure functions of the log.

The logs here are real: bodies serialised once and signed with Ed25519 keys, receipts
signed by the receiver, kept as each node keeps them (its own events outbound, the
partner's inbound with the receipt it gave).
"""

import itertools
import random
from dataclasses import dataclass, field, replace
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message
from hdx.exchange.v1 import exchange_pb2 as pb
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.envelope import digest, seal, timestamp
from exchange.identity import Identity
from exchange.receipts import issue
from exchange.service import SENT_BY
from exchange.verdict import Outcome, Verdict, describe, verdict, verify
from node.domain.partner import LinkState, LoggedEvent, Side
from tests.conftest import START

LINK = "5f1e0c2d9a7b4c3e8f6a1b2c3d4e5f60"


def node(name: str) -> Identity:
    return Identity(name, Ed25519PrivateKey.generate(), b"", b"")


RETAIL, CONTRACTOR, STRANGER = node("retail-node"), node("contractor-node"), node("stranger")


def keys(*identities: Identity) -> dict[str, tuple[str, bytes]]:
    return {i.key_id: (i.node_id, i.public_key) for i in identities}


KEYS = keys(RETAIL, CONTRACTOR)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def deadlines(respond_min: float | None, resolve_min: float | None) -> pb.Deadlines:
    result = pb.Deadlines()
    if respond_min is not None:
        result.respond_by.CopyFrom(timestamp(START + minutes(respond_min)))
    if resolve_min is not None:
        result.resolve_by.CopyFrom(timestamp(START + minutes(resolve_min)))
    return result


@dataclass
class Conversation:
    """A link's signed log as both its nodes hold it, event by event."""

    origin: Identity = RETAIL
    partner: Identity = CONTRACTOR
    sent: list[tuple[pb.Envelope, pb.Receipt | None]] = field(default_factory=list)
    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def say(
        self,
        by: Identity,
        at_min: float,
        kind: str,
        message: Message,
        *,
        delivered: bool = True,
        **body: object,
    ) -> pb.Envelope:
        """The next event by (signed by it, and its sender unless body says otherwise) on the
        link, received at START + at_min (its receipt's instant)."""
        receiver = self.partner if by is self.origin else self.origin
        seq, prev = self.heads.get(by.node_id, (0, b""))
        fields = {
            "link": LINK,
            "seq": seq + 1,
            "prev": prev,
            "sender": by.node_id,
            "destination": receiver.node_id,
            **body,
        }
        event = pb.Body(occurred_at=timestamp(START + minutes(at_min)), **fields)  # type: ignore[arg-type]
        getattr(event, kind).CopyFrom(message)
        envelope = seal(by, event)
        self.heads[by.node_id] = seq + 1, digest(envelope.body)
        receipt = None
        if delivered:
            received = pb.Received(
                link=LINK, sender=by.node_id, seq=seq + 1, digest=digest(envelope.body)
            )
            [receipt] = issue(receiver, [received], START + minutes(at_min))
        self.sent.append((envelope, receipt))
        return envelope

    def offer(self, respond_min: float | None = 30, resolve_min: float | None = 240) -> None:
        self.say(self.origin, 0, "offer", pb.Offer(deadlines=deadlines(respond_min, resolve_min)))

    def copy(self, holder: Identity) -> list[LoggedEvent]:
        """The log as holder keeps it; an event not delivered is only in its sender's."""
        rows: list[LoggedEvent] = []
        for envelope, receipt in self.sent:
            body = pb.Body.FromString(envelope.body)
            outbound = body.sender == holder.node_id
            if receipt is None and not outbound:
                continue
            rows.append(
                LoggedEvent(
                    id=len(rows) + 1,
                    link=LINK,
                    partner=body.destination if outbound else body.sender,
                    outbound=outbound,
                    seq=body.seq,
                    kind=str(body.WhichOneof("event")),
                    digest=digest(envelope.body),
                    envelope=envelope.SerializeToString(),
                    receipt=None if receipt is None else receipt.SerializeToString(),
                    received_at=None,
                    pending=receipt is None,
                    refused="",
                )
            )
        return rows


def judged(conversation: Conversation) -> Verdict:
    """The verdict of the conversation, the same from both copies."""
    ours, theirs = verdict(conversation.copy(RETAIL)), verdict(conversation.copy(CONTRACTOR))
    assert ours is not None
    assert ours == theirs
    return ours


# -- the verdict -----------------------------------------------------------------------------


def test_answering_in_time_and_resolving_late_meets_one_deadline_and_breaches_the_other() -> None:
    talk = Conversation()
    talk.offer(respond_min=30, resolve_min=240)
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1", deadlines=deadlines(30, 240)))
    talk.say(CONTRACTOR, 20, "status", pb.StatusChange(status=pb.IN_PROGRESS))
    talk.say(CONTRACTOR, 300, "resolved", pb.Resolved(resolution="board replaced"))
    result = judged(talk)

    assert (result.respond.outcome, result.respond.late_by) == (Outcome.MET, -minutes(10))
    assert (result.resolve.outcome, result.resolve.late_by) == (Outcome.BREACHED, minutes(60))
    assert result.state is LinkState.RESOLVED
    assert [(h.node, h.since) for h in result.holders] == [
        ("retail-node", START),
        ("contractor-node", START + minutes(1)),
        ("retail-node", START + minutes(300)),
    ]
    assert "resolve by 2026-11-23 13:12:00Z: breached by 1h00m00s, done 2026-11-23 14:12:00Z" in (
        describe(result)
    )


def test_a_pause_extends_the_resolve_deadline_by_its_wall_clock_length_not_the_respond_one() -> (
    None
):
    talk = Conversation()
    talk.offer(respond_min=30, resolve_min=240)
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1"))
    talk.say(CONTRACTOR, 45, "pause", pb.SlaPause(reason="waiting_requester"))
    talk.say(RETAIL, 50, "comment", pb.PublicComment(author="anna", body="back at 12"))
    talk.say(CONTRACTOR, 135, "resume", pb.SlaResume())
    talk.say(CONTRACTOR, 300, "resolved", pb.Resolved())
    result = judged(talk)

    assert (result.respond.outcome, result.respond.late_by) == (Outcome.BREACHED, minutes(15))
    assert result.paused == minutes(90)
    assert result.resolve.deadline == START + minutes(240 + 90)
    assert (result.resolve.outcome, result.resolve.late_by) == (Outcome.MET, -minutes(30))
    assert [(p.by, p.start, p.end) for p in result.pauses] == [
        ("contractor-node", START + minutes(45), START + minutes(135))
    ]


def test_a_dispute_hands_the_ticket_back_and_only_the_last_resolution_counts() -> None:
    talk = Conversation()
    talk.offer(resolve_min=240)
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1"))
    talk.say(CONTRACTOR, 120, "resolved", pb.Resolved())
    talk.say(RETAIL, 180, "disputed", pb.Disputed(reason="still dead"))
    talk.say(CONTRACTOR, 360, "resolved", pb.Resolved())
    talk.say(RETAIL, 400, "confirmed", pb.Confirmed(rating=3))
    result = judged(talk)

    assert (result.resolve.done_at, result.resolve.late_by) == (START + minutes(360), minutes(120))
    assert result.state is LinkState.CLOSED
    assert [(h.node, h.since - START) for h in result.holders] == [
        ("retail-node", minutes(0)),
        ("contractor-node", minutes(1)),
        ("retail-node", minutes(120)),
        ("contractor-node", minutes(180)),
        ("retail-node", minutes(360)),
    ]


def test_the_accept_lowers_the_deadlines_and_a_deadline_change_sets_those_it_names() -> None:
    talk = Conversation()
    talk.offer(respond_min=30, resolve_min=240)
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1", deadlines=deadlines(60, 180)))
    talk.say(RETAIL, 10, "deadline", pb.DeadlineChange(deadlines=deadlines(None, 120), note="P1"))
    talk.say(CONTRACTOR, 150, "resolved", pb.Resolved())
    result = judged(talk)

    assert [(d.kind, d.respond_by, d.resolve_by, d.note) for d in result.deadlines] == [
        ("offer", START + minutes(30), START + minutes(240), ""),
        ("accept", START + minutes(30), START + minutes(180), ""),
        ("deadline", START + minutes(30), START + minutes(120), "P1"),
    ]
    assert (result.resolve.outcome, result.resolve.late_by) == (Outcome.BREACHED, minutes(30))


def test_a_link_still_open_is_judged_on_what_its_log_holds() -> None:
    talk = Conversation()
    talk.offer(respond_min=None, resolve_min=240)
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1"))
    talk.say(CONTRACTOR, 30, "pause", pb.SlaPause())
    talk.say(RETAIL, 40, "comment", pb.PublicComment(body="sent"), delivered=False)
    result = judged(talk)

    assert result.respond.outcome is Outcome.NO_DEADLINE
    assert result.respond.done_at == START + minutes(30)
    assert (result.resolve.outcome, result.resolve.deadline) == (Outcome.OPEN, START + minutes(240))
    assert result.pauses[0].end is None
    assert "resolve by 2026-11-23 13:12:00Z: open" in describe(result)


def test_no_verdict_before_the_offer_is_received() -> None:
    talk = Conversation()
    talk.say(RETAIL, 0, "offer", pb.Offer(), delivered=False)
    assert verdict(talk.copy(RETAIL)) is None


# -- verification ----------------------------------------------------------------------------


def finished() -> Conversation:
    talk = Conversation()
    talk.offer()
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1"))
    talk.say(CONTRACTOR, 20, "comment", pb.PublicComment(author="olga", body="on my way"))
    talk.say(CONTRACTOR, 90, "resolved", pb.Resolved())
    talk.say(RETAIL, 100, "confirmed", pb.Confirmed())
    return talk


def problems(log: list[LoggedEvent], known: dict[str, tuple[str, bytes]] = KEYS) -> list[str]:
    return [str(problem) for problem in verify(log, known)]


def test_both_copies_of_an_honest_log_verify_and_an_event_awaiting_its_receipt_is_no_failure() -> (
    None
):
    talk = finished()
    talk.say(RETAIL, 110, "comment", pb.PublicComment(body="thanks"), delivered=False)
    assert problems(talk.copy(RETAIL)) == []
    assert problems(talk.copy(CONTRACTOR)) == []


def test_a_tampered_body_fails_its_signature() -> None:
    log = finished().copy(CONTRACTOR)
    envelope = pb.Envelope.FromString(log[2].envelope)
    envelope.body = envelope.body.replace(b"on my way", b"on my wax")
    log[2] = replace(log[2], envelope=envelope.SerializeToString())
    assert problems(log) == [
        "row 3: signature: does not verify over the body's bytes",
        "contractor-node #2: seq: missing from the chain",
    ]


def test_a_missing_event_breaks_its_senders_chain() -> None:
    log = finished().copy(RETAIL)
    del log[2]
    assert problems(log) == ["contractor-node #2: seq: missing from the chain"]


def test_an_event_chained_to_another_than_its_predecessor_is_named() -> None:
    talk = Conversation()
    talk.offer()
    talk.say(CONTRACTOR, 1, "accept", pb.Accept(ticket="CON-1"))
    talk.say(CONTRACTOR, 2, "resolved", pb.Resolved(), prev=b"\x01" * 32)
    assert problems(talk.copy(RETAIL)) == [
        "contractor-node #2 (resolved): prev: not the digest of event 1"
    ]


def test_a_receipt_must_be_signed_by_the_receiver_and_name_its_own_event() -> None:
    log = finished().copy(RETAIL)  # offer, accept, comment, resolved, confirmed
    log[1], log[2] = (
        replace(log[1], receipt=log[2].receipt),
        replace(log[2], receipt=log[1].receipt),
    )
    receipt = pb.Receipt.FromString(log[3].receipt or b"")
    by_sender = pb.ReceiptBody.FromString(receipt.signed.body)
    by_sender.receiver = CONTRACTOR.node_id
    receipt.signed.CopyFrom(seal(CONTRACTOR, by_sender))
    log[3] = replace(log[3], receipt=receipt.SerializeToString())
    assert problems(log) == [
        "contractor-node #1 (accept): receipt: names another event",
        "contractor-node #2 (comment): receipt: names another event",
        "contractor-node #3 (resolved): receipt: signed by contractor-node, not the receiver "
        "retail-node",
    ]


def test_events_signed_by_a_key_the_node_does_not_know_fail_and_old_keys_keep_verifying() -> None:
    talk = Conversation()
    talk.offer()
    old = CONTRACTOR
    new = node("contractor-node")
    talk.say(old, 1, "accept", pb.Accept(ticket="CON-1"))
    talk.partner = new
    talk.say(new, 20, "resolved", pb.Resolved())
    log = talk.copy(RETAIL)
    assert problems(log, {**KEYS, **keys(new)}) == []
    assert problems(log) == [f"row 3: key_id: no partner key {new.key_id!r}"]


def test_an_event_signed_by_a_stranger_in_the_senders_name_fails() -> None:
    talk = finished()
    talk.say(STRANGER, 120, "status", pb.StatusChange(), sender="contractor-node", seq=4)
    assert problems(talk.copy(RETAIL), {**KEYS, **keys(STRANGER)})[:1] == [
        "contractor-node #4 (status): key_id: a key of stranger, not of the sender contractor-node"
    ]


# -- properties over random logs ---------------------------------------------------------------

KINDS = {side: sorted(SENT_BY[side] - {"offer"}) for side in Side}


def message(kind: str, rng: random.Random) -> Message:
    """A message of kind with random content where the verdict reads content."""
    if kind in ("accept", "deadline"):
        chosen = deadlines(rng.choice([None, 20, 45]), rng.choice([None, 180, 300]))
        if kind == "accept":
            return pb.Accept(ticket="CON-1", deadlines=chosen, at_risk=rng.random() < 0.5)
        return pb.DeadlineChange(deadlines=chosen, note=rng.choice(["", "P1"]))
    if kind == "pause":
        return pb.SlaPause(reason=rng.choice(["", "waiting_requester"]))
    empty: Message = type(getattr(pb.Body(), kind))()
    return empty


@st.composite
def conversations(draw: st.DrawFn) -> Conversation:
    """A link's log: an offer, then events of either side received at random instants
    (ties, and receipts stamped earlier than the event before, as skewed clocks do)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    talk = Conversation()
    talk.offer(draw(st.sampled_from([None, 30])), draw(st.sampled_from([None, 240])))
    at = 0.0
    for _ in range(draw(st.integers(0, 25))):
        side = draw(st.sampled_from(list(Side)))
        kind = draw(st.sampled_from(KINDS[side]))
        at += draw(st.sampled_from([-3, 0, 0, 1, 7, 45, 200]))
        sender = talk.origin if side is Side.ORIGIN else talk.partner
        talk.say(sender, at, kind, message(kind, rng))
    return talk


@settings(max_examples=150, deadline=None)
@given(talk=conversations(), order=st.randoms(use_true_random=False))
def test_the_verdict_is_the_same_from_either_copy_in_any_order(
    talk: Conversation, order: random.Random
) -> None:
    ours, theirs = talk.copy(RETAIL), talk.copy(CONTRACTOR)
    order.shuffle(ours)
    order.shuffle(theirs)
    assert verify(ours, KEYS) == [] and verify(theirs, KEYS) == []
    result = verdict(ours)
    assert result is not None and result == verdict(theirs) == verdict(talk.copy(RETAIL))
    assert describe(result) == describe(verdict(theirs) or result)
    holders = [holding.node for holding in result.holders]
    assert all(a != b for a, b in itertools.pairwise(holders)), "handed over each time"
    assert result.paused >= timedelta(0)


@settings(max_examples=100, deadline=None)
@given(talk=conversations(), where=st.randoms(use_true_random=False))
def test_any_byte_changed_in_a_stored_event_or_receipt_fails_verification(
    talk: Conversation, where: random.Random
) -> None:
    log = talk.copy(where.choice([RETAIL, CONTRACTOR]))
    index = where.randrange(len(log))
    row = log[index]

    def flipped(stored: bytes) -> bytes:
        changed = bytearray(stored)
        changed[where.randrange(len(changed))] ^= 1 << where.randrange(8)
        return bytes(changed)

    if row.receipt and where.random() < 0.5:
        log[index] = replace(row, receipt=flipped(row.receipt))
    else:
        log[index] = replace(row, envelope=flipped(row.envelope))
    assert verify(log, KEYS) != []
