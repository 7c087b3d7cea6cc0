"""Hand-offs between nodes: the use cases of the exchange, one transaction each.

Sending. `hand_off` links a ticket of ours to a new one on a contractor node and
writes the offer to the outbox. From then on every change recorded on a linked
ticket (`TicketService.on_record`) that the partner should know becomes an event
on the link, written to the outbox in the same transaction as the change: the
body serialised once, signed, chained to the previous event we sent on the link.
The delivery worker (exchange/delivery.py) sends the outbox and stores receipts.

Receiving. `receive` verifies each event (signature, signer a partner in good
standing, addressed to us, on a link the signer is party to, a kind its side
may send, the next in the signer's chain), applies it to our ticket and signs a
receipt, all in one transaction per event; a duplicate gets its first receipt
again; a gap is refused with the sequence number we wait for.

Never echoed: what a partner's event changed on our ticket is recorded as the
partner's user, and the hook sends nothing back on links to that partner.
Internal comments never cross.
"""

import base64
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
from google.protobuf.message import Message
from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.ahead import AHEAD_MIN, Ahead
from exchange.envelope import (
    Refused,
    deadlines_of,
    digest,
    fitting,
    instant,
    opened,
    seal,
    timestamp,
)
from exchange.identity import Identity, fingerprint, key_id
from exchange.receipts import issue
from exchange.verdict import earliest
from node.domain import validation
from node.domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from node.domain.partner import (
    Delivery,
    Link,
    LinkState,
    Partner,
    PartnerRole,
    PartnerState,
    Side,
    Terms,
)
from node.domain.roles import Actor, Role
from node.domain.sla import POLICY_FIELD, REPLIED, Timer
from node.domain.status import StatusKind
from node.domain.ticket import Change, Store, Ticket, TicketDraft, Tier, User, Visibility
from node.services.tickets import TicketService
from node.store.tx import Tx

log = logging.getLogger("hdx.exchange")

KIND_WIRE = {
    StatusKind.NEW: "ACKNOWLEDGED",
    StatusKind.OPEN: "IN_PROGRESS",
    StatusKind.WAITING: "HELD",
    StatusKind.RESOLVED: "RESOLVED",
    StatusKind.CLOSED: "CLOSED",
    StatusKind.CANCELLED: "CANCELLED",
}
"""The wire status of our statuses by kind, unless the partner's terms say otherwise."""
STATUS_OUT = {"waiting_requester": "PENDING"}
"""Default workflow statuses whose wire status is not their kind's."""
STATUS_IN = {
    PartnerRole.CONTRACTOR: {
        "ACKNOWLEDGED": "waiting_partner",
        "IN_PROGRESS": "waiting_partner",
        "HELD": "waiting_partner",
        "PENDING": "waiting_requester",
        "RESOLVED": "in_progress",
        "CANCELLED": "in_progress",
        "REJECTED": "in_progress",
    },
    PartnerRole.CLIENT: {
        "PENDING": "waiting_requester",
        "IN_PROGRESS": "in_progress",
        "CLOSED": "closed",
        "CANCELLED": "cancelled",
        "REJECTED": "cancelled",
    },
}
"""Our status for what a partner reports (its wire status, or the event's meaning), by the
partner's role, unless its terms map it otherwise. A contractor's resolution comes back to
our engineer (in progress), who resolves for the store."""
SENT_BY = {
    Side.ORIGIN: frozenset(
        {
            "comment",
            "attachment",
            "pause",
            "resume",
            "confirmed",
            "disputed",
            "recall",
            "deadline",
        }
    ),
    Side.PARTNER: frozenset(
        {"accept", "reject", "status", "comment", "attachment", "pause", "resume", "resolved"}
    ),
}
"""What each side of a link may send on it. An offer is not among them: it only opens a link
(seq 1 of a new link, from a client)."""
CLOSED_LINKS = frozenset({LinkState.REJECTED, LinkState.RECALLED, LinkState.CLOSED})
RECEIVE_CHUNK = 100
"""Events applied per transaction: fewer commits, and the writers of the API wait at most
for this many."""
CONTROL_PREFIX = "~"
"""Starts the id of a partner's control link (ours, never one sent on the wire)."""
LINK_ID_MAX = 40
"""The longest link id (the links table's column)."""
PULL_CURSORS = 1000
"""Links per pull request (a request's body stays well within MAX_BODY_BYTES)."""
PULL_LIMIT = 1000
"""Events per answer to a pull, at most."""
PULL_WINDOW = timedelta(minutes=15)
"""How far from our clock a pull request may say it was made: older ones are replays, and
the partners' clocks are kept right (NTP) within this."""


@dataclass(frozen=True, slots=True)
class Invite:
    """What `hdx partner invite` prints and `hdx partner add` reads."""

    node_id: str
    name: str
    endpoint: str
    public_key: bytes
    cert_pem: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.node_id, self.public_key, self.cert_pem.encode())

    def to_text(self) -> str:
        return json.dumps(
            {
                "node_id": self.node_id,
                "name": self.name,
                "endpoint": self.endpoint,
                "public_key": base64.b64encode(self.public_key).decode(),
                "cert_pem": self.cert_pem,
                "fingerprint": self.fingerprint,
            },
            indent=2,
        )

    @classmethod
    def from_text(cls, text: str) -> "Invite":
        """The invite in text.

        Raises:
            InvalidArgument: not an invite, or its fingerprint does not match its content.
        """
        try:
            raw = json.loads(text)
            invite = cls(
                node_id=raw["node_id"],
                name=raw["name"],
                endpoint=raw["endpoint"],
                public_key=base64.b64decode(raw["public_key"], validate=True),
                cert_pem=raw["cert_pem"],
            )
            if invite.fingerprint != raw["fingerprint"]:
                raise InvalidArgument("invite.fingerprint", "does not match the invite's content")
            validation.code("invite.node_id", invite.node_id)
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidArgument("invite", f"not a partner invite ({error})") from None
        return invite


@dataclass(frozen=True, slots=True)
class Handed:
    """A hand-off made: the link and the deadlines the offer carries."""

    link: str
    respond_by: datetime | None
    resolve_by: datetime | None


@dataclass
class _Batch:
    """What receiving a chunk of one call's events keeps from event to event.

    Attributes:
        now: the instant the chunk is received at, which its receipts name.
        ahead: the call's events verified ahead.
        stalled: links an event was refused on, with the sequence number expected there
            (in this call, so far).
        heard: partners an event of this chunk came from (noted once per chunk).
        partners: the senders of this chunk as read (and on PostgreSQL locked) in it.
        received: what the receipts of the events applied name, in order.
        rows: their rows of the log, written with their receipts once all are applied.
        applied: (link id, seq) → (position in received, digest), of the events applied.
        waiting: results that get the receipt at a position in received.
        results: the chunk's results, once applied.
    """

    now: datetime
    ahead: Ahead
    stalled: dict[str, int] = dataclasses.field(default_factory=dict)
    heard: set[str] = dataclasses.field(default_factory=set)
    partners: dict[str, Partner | None] = dataclasses.field(default_factory=dict)
    received: list[pb.Received] = dataclasses.field(default_factory=list)
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    applied: dict[tuple[str, int], tuple[int, bytes]] = dataclasses.field(default_factory=dict)
    waiting: list[tuple[pb.Result, int]] = dataclasses.field(default_factory=list)
    results: list[pb.Result] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Inbound:
    """An event from a partner, verified, being applied."""

    partner: Partner
    link: Link
    ticket: Ticket | None
    body: pb.Body
    kind: str
    actor: Actor
    now: datetime


EFFECTS: dict[str, tuple[LinkState | None, str]] = {
    "accept": (LinkState.ACCEPTED, ""),
    "reject": (LinkState.REJECTED, "REJECTED"),
    "status": (None, ""),
    "resolved": (LinkState.RESOLVED, "RESOLVED"),
    "pause": (None, "PENDING"),
    "resume": (None, "IN_PROGRESS"),
    "confirmed": (LinkState.CLOSED, "CLOSED"),
    "disputed": (LinkState.ACCEPTED, "IN_PROGRESS"),
    "recall": (LinkState.RECALLED, "CANCELLED"),
    "deadline": (None, ""),
    "attachment": (None, ""),
}
"""What a partner's event does to the link, and the wire status whose mapping our ticket
moves to (a status change names its own)."""


def _note(body: pb.Body, kind: str) -> str:
    """What a partner's event says, for our ticket's history."""
    if kind == "accept":
        return f"accepted as {body.accept.ticket}" + (" at risk" if body.accept.at_risk else "")
    if kind == "status":
        return pb.WireStatus.Name(body.status.status)
    if kind == "attachment":
        return f"{body.attachment.name} ({len(body.attachment.content)} bytes)"
    if kind == "confirmed":
        return f"rated {body.confirmed.rating}" if body.confirmed.rating else "confirmed"
    message = getattr(body, kind)
    for field in ("reason", "resolution", "note"):
        if field in message.DESCRIPTOR.fields_by_name:
            return str(getattr(message, field))
    return kind


class ExchangeService:
    """The exchange use cases of one node.

    Args:
        tickets: the node's ticket service; the exchange hooks into its changes.
        identity: the node's id and signing key.
        own_keys: every public key the node has had (id → raw key), recorded so that
            its own old events keep verifying.
    """

    def __init__(
        self, tickets: TicketService, identity: Identity, own_keys: dict[str, bytes]
    ) -> None:
        self.tickets = tickets
        self.db = tickets.db
        self.clock = tickets.clock
        self.workflow = tickets.workflow
        self.identity = identity
        self._keys: dict[str, tuple[str, bytes]] = {}
        self._verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hdx-verify")
        self.outbox_ready: Callable[[Tx, str], None] = _unseen
        """Told, in a transaction that wrote events for a partner, as its work ends (once per
        transaction and partner): the delivery worker claims them there."""
        self.heard: Callable[[str], None] = _ignore
        """Told after commit of a partner that just reached us (its backoff is reset)."""
        tickets.on_record.append(self._report)
        with self.db.write() as tx:
            for kid, public in own_keys.items():
                tx.links.add_key(identity.node_id, kid, public, self.clock.now())

    # -- handing off -------------------------------------------------------------

    def hand_off(self, actor: Actor, key: str, partner_id: str, note: str = "") -> Handed:
        """Hands our ticket to a contractor node: links it, writes the signed offer with the
        deadlines that remain to the outbox, and moves the ticket to waiting on the partner.

        Raises:
            PermissionDenied: actor is not an engineer.
            NotFound: no such ticket or partner.
            FailedPrecondition: the partner is not an active contractor, does not take the
                ticket's category, or holds the ticket already; the ticket is closed.
        """
        if not actor.is_staff:
            raise PermissionDenied(f"{actor.role} may not hand tickets to partners")
        now = self.clock.now()
        with self.db.write() as tx:
            ticket = self.tickets.for_change(tx, actor, key)
            partner = self._partner(tx, partner_id)
            if partner.role is not PartnerRole.CONTRACTOR:
                raise FailedPrecondition(f"partner {partner_id} is our client, not a contractor")
            allowed = partner.terms.categories
            if allowed and ticket.category not in allowed:
                raise FailedPrecondition(
                    f"partner {partner_id} takes only categories {', '.join(allowed)}, "
                    f"not {ticket.category}"
                )
            for link in tx.links.links_of(ticket.id):
                if link.partner == partner_id and link.state not in CLOSED_LINKS:
                    raise FailedPrecondition(f"{key} is with {partner_id} already ({link.state})")
            store = tx.store(ticket.store)
            assert store is not None
            respond_by, resolve_by = self._deadlines(ticket, store, now)
            link = Link.new(
                uuid.uuid4().hex,
                partner_id,
                ticket.id,
                side=Side.ORIGIN,
                state=LinkState.OFFERED,
                now=now,
            )
            link.respond_by, link.resolve_by = respond_by, resolve_by
            tx.links.add_link(link)
            self.emit(
                tx,
                link,
                "offer",
                pb.Offer(
                    ticket=ticket.key,
                    title=ticket.title,
                    description=ticket.description,
                    category=ticket.category,
                    priority=int(ticket.priority),
                    stop_trade=ticket.stop_trade,
                    store=pb.StoreRef(
                        code=store.code,
                        name=store.name,
                        region=store.region,
                        timezone=store.timezone,
                        flagship=store.tier is Tier.FLAGSHIP,
                    ),
                    deadlines=_deadlines_pb(respond_by, resolve_by),
                    note=note,
                ),
            )
            changes = [Change("handed", "partner", "", f"{partner.name} ({partner_id})")]
            waiting = self._status_in(partner, "ACKNOWLEDGED")
            if waiting and waiting != ticket.status:
                changes += self.workflow.move(ticket, actor, waiting, now)
            self.tickets.record(tx, actor, ticket, changes)
        return Handed(link.id, respond_by, resolve_by)

    def _deadlines(
        self, ticket: Ticket, store: Store, now: datetime
    ) -> tuple[datetime | None, datetime | None]:
        """When ticket must be responded to (unless it was) and resolved: by its own clocks,
        and never later than promised to the client node that handed it to us (the
        deadlines agreed on that link, which the ticket carries), so that deadlines only
        ever get earlier down a chain of hand-offs."""
        self.tickets.sla.show_live(ticket, store, now)
        due = {view.timer: view.due_at for view in ticket.clocks}
        respond_by = due.get(Timer.FIRST_RESPONSE)
        if not ticket.sla.responded:
            respond_by = earliest(respond_by, ticket.promised_respond_by)
        return respond_by, earliest(due.get(Timer.RESOLUTION), ticket.promised_resolve_by)

    def _deadline_change(
        self, tx: Tx, link: Link, ticket: Ticket, note: str
    ) -> Iterable[tuple[str, Message]]:
        """The deadline change to send on a link we handed ticket on by when the deadlines
        it should carry (see `_deadlines`; unset ones stay as they are) differ from those
        agreed on it, which it sets on the link."""
        store = tx.store(ticket.store)
        assert store is not None
        respond_by, resolve_by = self._deadlines(ticket, store, self.clock.now())
        respond_by, resolve_by = respond_by or link.respond_by, resolve_by or link.resolve_by
        if (respond_by, resolve_by) != (link.respond_by, link.resolve_by):
            link.respond_by, link.resolve_by = respond_by, resolve_by
            yield (
                "deadline",
                pb.DeadlineChange(deadlines=_deadlines_pb(respond_by, resolve_by), note=note),
            )

    def _promise(
        self,
        tx: Tx,
        link: Link,
        ticket: Ticket,
        deadlines: tuple[datetime | None, datetime | None],
        now: datetime,
    ) -> list[Change]:
        """Agrees deadlines on the link a client handed ticket to us by: the ticket is due no
        later, and each link we handed it on by is told of the earlier deadlines it gets.

        Returns:
            The ticket's changes, for its history.
        """
        link.respond_by, link.resolve_by = deadlines
        store = tx.store(ticket.store)
        assert store is not None
        changes = self.tickets.sla.promise(ticket, store, *deadlines, now)
        for downstream in tx.links.links_of(ticket.id):
            if downstream.side is Side.ORIGIN and downstream.state not in CLOSED_LINKS:
                note = f"deadlines agreed with {link.partner} changed"
                for kind, message in self._deadline_change(tx, downstream, ticket, note):
                    self.emit(tx, downstream, kind, message)
        return changes

    # -- reporting our changes -----------------------------------------------------

    def _report(self, tx: Tx, actor: Actor, ticket: Ticket, changes: list[Change]) -> None:
        """Writes to the outbox what the partners linked to ticket should know of changes."""
        for link in tx.links.links_of(ticket.id):
            # what a partner itself changed is never echoed back to it (its user's login
            # is its node id)
            if link.state in CLOSED_LINKS or link.partner == actor.login:
                continue
            partner = tx.links.partner(link.partner)
            if partner is None:
                continue
            for change in changes:
                for field, message in self._events_of(
                    tx, link, partner, ticket, actor=actor, change=change
                ):
                    self.emit(tx, link, field, message)

    def _events_of(
        self, tx: Tx, link: Link, partner: Partner, ticket: Ticket, *, actor: Actor, change: Change
    ) -> Iterable[tuple[str, Message]]:
        if change.field == Visibility.PUBLIC.value and change.action in (REPLIED, "commented"):
            body = tx.last_comment(ticket.id, actor.login)
            yield "comment", pb.PublicComment(author=actor.login, body=body)
            return
        if change.field == POLICY_FIELD and link.side is Side.ORIGIN:
            note = f"SLA policy {change.after or 'none'}"
            yield from self._deadline_change(tx, link, ticket, note)
            return
        if change.field != "status":
            return
        before, after = self._wire(partner, change.before), self._wire(partner, change.after)
        if after == "PENDING" and before != "PENDING":
            yield "pause", pb.SlaPause(reason=change.after)
        elif before == "PENDING" and after != "PENDING":
            yield "resume", pb.SlaResume()
        kind = self.workflow.kind(change.after)
        if link.side is Side.PARTNER:
            if kind is StatusKind.RESOLVED:
                link.state = LinkState.RESOLVED
                yield "resolved", pb.Resolved(resolution=_reason(tx, ticket))
            elif kind is StatusKind.CANCELLED and link.state is LinkState.OFFERED:
                link.state = LinkState.REJECTED
                yield "reject", pb.Reject(reason=_reason(tx, ticket))
            elif after != before:
                yield "status", pb.StatusChange(status=pb.WireStatus.Value(after))
        elif kind is StatusKind.CLOSED and link.state is LinkState.RESOLVED:
            link.state = LinkState.CLOSED
            yield "confirmed", pb.Confirmed()
        elif kind is StatusKind.CANCELLED:
            link.state = LinkState.RECALLED
            yield "recall", pb.Recall(reason=_reason(tx, ticket))
        elif (
            kind is StatusKind.OPEN
            and self.workflow.kind(change.before) is StatusKind.RESOLVED
            and link.state is LinkState.RESOLVED
        ):
            link.state = LinkState.ACCEPTED
            yield "disputed", pb.Disputed(reason=_reason(tx, ticket))

    def _wire(self, partner: Partner, status: str) -> str:
        if not status:
            return ""
        named = partner.terms.status_out.get(status) or STATUS_OUT.get(status)
        return named or KIND_WIRE[self.workflow.kind(status)]

    def _status_in(self, partner: Partner, wire: str) -> str:
        return partner.terms.status_in.get(wire) or STATUS_IN[partner.role].get(wire, "")

    def emit(self, tx: Tx, link: Link, kind: str, event: Message) -> None:
        """Signs the next event of ours on link and writes it to the outbox, in tx: for
        what our tickets' changes report, and for events of the partners' own (keys)."""
        link.out_seq += 1
        body = pb.Body(
            link="" if link.ticket_id is None else link.id,
            seq=link.out_seq,
            prev=link.out_digest,
            sender=self.identity.node_id,
            destination=link.partner,
            occurred_at=timestamp(self.clock.now()),
        )
        getattr(body, kind).CopyFrom(event)
        envelope = seal(self.identity, body)
        link.out_digest = digest(envelope.body)
        tx.links.save_link(link)
        tx.links.log([_log_row(link, envelope, seq=link.out_seq, kind=kind)])
        ready = _Ready(self, tx, link.partner)
        if ready not in tx.committing:
            tx.before_commit(ready)

    # -- receiving ---------------------------------------------------------------

    def receive(self, envelopes: Sequence[pb.Envelope]) -> list[pb.Result]:
        """Verifies and applies events in order, with their receipts: RECEIVE_CHUNK events per
        transaction. A refused event leaves nothing behind and the others stand: a chunk
        is applied at once, and if one of its events fails, applied again with each event
        within a savepoint of its own (a savepoint costs more than the event itself).

        Returns:
            One result per event: its receipt, or the refusal (code, message, and on a gap
            the sequence number expected). After a refusal on a link, the later events of
            that link are refused as gaps; other links go on.

        Raises:
            Unavailable: the database failed; no result stands (the sender sends again).
        """
        results: list[pb.Result] = []
        stalled: dict[str, int] = {}
        ahead = self._ahead(envelopes)
        try:
            for start in range(0, len(envelopes), RECEIVE_CHUNK):
                chunk = envelopes[start : start + RECEIVE_CHUNK]
                try:
                    batch = self._chunk(chunk, _Batch(self.clock.now(), ahead, dict(stalled)))
                except _Isolate:
                    batch = _Batch(self.clock.now(), ahead, dict(stalled))
                    batch = self._chunk(chunk, batch, isolated=True)
                results += batch.results
                stalled = batch.stalled
        finally:
            ahead.cancel()
        return results

    def _ahead(self, envelopes: Sequence[pb.Envelope]) -> Ahead:
        """The events of a call verified ahead, if it has `AHEAD_MIN` of them or more, with
        the keys known as it comes in (see exchange/ahead.py)."""
        if len(envelopes) < AHEAD_MIN:
            return Ahead(self._verifier, [], self._keys.get)
        with self.db.read() as tx:
            known = self._key(tx)
            for kid in {envelope.key_id for envelope in envelopes}:
                known(kid)
        return Ahead(self._verifier, envelopes, self._keys.get)

    def _chunk(
        self, chunk: Sequence[pb.Envelope], batch: "_Batch", *, isolated: bool = False
    ) -> "_Batch":
        """Applies a chunk of events in one transaction, their results kept in batch.

        Raises:
            _Isolate: not isolated, and an event failed; nothing of the chunk stands.
        """
        with self.db.write() as tx:
            batch.results = [self._result(tx, envelope, batch, isolated) for envelope in chunk]
            receipts = issue(self.identity, batch.received, batch.now) if batch.received else []
            for result, index in batch.waiting:
                result.receipt.CopyFrom(receipts[index])
            for row, receipt in zip(batch.rows, receipts, strict=True):
                row["receipt"] = receipt.SerializeToString()
            tx.links.log(batch.rows)
            for sender in batch.heard:
                self._heard_from(tx, sender, batch.now)
        return batch

    def _result(self, tx: Tx, envelope: pb.Envelope, batch: "_Batch", isolated: bool) -> pb.Result:
        """The receipt of one event applied in tx (within a savepoint of its own if
        isolated), or why it is refused."""
        try:
            with tx.savepoint() if isolated else contextlib.nullcontext():
                taken = self._receive(envelope, batch)
        except Unavailable:
            raise
        except Exception as error:
            if not isolated:
                raise _Isolate from error
            return _refusal(error)
        if isinstance(taken, pb.Receipt):
            return pb.Result(receipt=taken)
        result = pb.Result()
        batch.waiting.append((result, taken))
        return result

    def _receive(self, envelope: pb.Envelope, batch: "_Batch") -> pb.Receipt | int:
        found = batch.ahead.opened(envelope)
        if found is None:
            with self.db.read() as tx:
                found = opened(envelope, self._key(tx), pb.Body)
        signer, body = found
        if signer == self.identity.node_id:
            raise Refused("PERMISSION_DENIED", "key_id: signed by this node itself")
        self._check_parties(signer, body.sender, body.destination, "event")
        kind = body.WhichOneof("event")
        if kind is None:
            raise Refused("INVALID_ARGUMENT", "event: none set")
        if not body.link and kind != "key":
            raise Refused("INVALID_ARGUMENT", "link: empty only for key announcements")
        if body.link.startswith(CONTROL_PREFIX):
            raise Refused("INVALID_ARGUMENT", f"link: may not start with {CONTROL_PREFIX!r}")
        if len(body.link) > LINK_ID_MAX:
            raise Refused("INVALID_ARGUMENT", f"link: at most {LINK_ID_MAX} characters")
        link_id = body.link or CONTROL_PREFIX + signer
        stalled = batch.stalled
        if link_id in stalled:
            raise Refused(
                "FAILED_PRECONDITION",
                f"seq: an earlier event on link {body.link} was refused",
                stalled[link_id],
            )
        try:
            taken = self._take(envelope, body, kind, link_id, batch)
        except Exception as error:
            stalled[link_id] = getattr(error, "expected_seq", 0) or body.seq
            raise
        batch.heard.add(signer)
        return taken

    def _take(
        self, envelope: pb.Envelope, body: pb.Body, kind: str, link_id: str, batch: "_Batch"
    ) -> pb.Receipt | int:
        """Checks an event against its link and applies it in the chunk's transaction: the
        receipt given before if it is a duplicate, else where its receipt will be among
        the chunk's (`_Batch.received`)."""
        now = batch.now
        with self.db.write() as tx:
            partner = batch.partners.get(body.sender)
            if partner is None:
                partner = batch.partners[body.sender] = tx.links.partner(
                    body.sender, for_update=True
                )
            if partner is None or partner.state is not PartnerState.ACTIVE:
                state = "unknown" if partner is None else partner.state.value
                raise Refused("PERMISSION_DENIED", f"sender: partner {body.sender} is {state}")
            link, ticket, opened_now = self._link_for(tx, partner, link_id, body, now=now)
            body_digest = digest(envelope.body)
            if body.seq <= link.in_seq:
                return _duplicate(tx, link, body.seq, body_digest, batch)
            if body.seq != link.in_seq + 1:
                raise Refused(
                    "FAILED_PRECONDITION",
                    f"seq: got {body.seq} on link {body.link}, expected {link.in_seq + 1}",
                    link.in_seq + 1,
                )
            if body.prev != link.in_digest:
                raise Refused(
                    "INVALID_ARGUMENT",
                    f"prev: does not chain to event {link.in_seq} on link {body.link}",
                )
            sender_side = Side.ORIGIN if link.side is Side.PARTNER else Side.PARTNER
            if body.link and not opened_now and kind not in SENT_BY[sender_side]:
                raise Refused(
                    "PERMISSION_DENIED",
                    f"event: the {sender_side} side of link {body.link} may not send {kind}",
                )
            actor = Actor(partner.login, Role.SYSTEM)
            self._apply(tx, _Inbound(partner, link, ticket, body, kind, actor, now))
            link.in_seq, link.in_digest = body.seq, body_digest
            tx.links.save_link(link)
            batch.applied[link.id, body.seq] = len(batch.received), body_digest
            batch.rows.append(_log_row(link, envelope, seq=body.seq, kind=kind, received_at=now))
            batch.received.append(
                pb.Received(link=body.link, sender=body.sender, seq=body.seq, digest=body_digest)
            )
            return len(batch.received) - 1

    def _key(self, tx: Tx) -> Callable[[str], tuple[str, bytes] | None]:
        """Looks keys up in tx, remembering those found: a key id names one key for good."""

        def key(kid: str) -> tuple[str, bytes] | None:
            found = self._keys.get(kid)
            if found is None:
                found = tx.links.key(kid)
                if found is not None:
                    self._keys[kid] = found
            return found

        return key

    def _check_parties(self, signer: str, sender: str, destination: str, what: str) -> None:
        """Refuses a message whose sender is not its signer, or addressed to another node (a
        message captured on its way there and replayed to us)."""
        if sender != signer:
            raise Refused("UNAUTHENTICATED", f"sender: {sender!r} did not sign this {what}")
        me = self.identity.node_id
        if destination != me:
            raise Refused(
                "PERMISSION_DENIED", f"destination: addressed to {destination!r}, not {me!r}"
            )

    def reached(self, partner: str) -> None:
        """Notes that a call to partner was answered (a pull): it is up, see `_heard_from`."""
        with self.db.write() as tx:
            self._heard_from(tx, partner, self.clock.now())

    def _heard_from(self, tx: Tx, partner: str, now: datetime) -> None:
        """Notes a message from partner: it is up, so delivery to it stops backing off, and
        if it was backing off, the delivery worker is told once this commits."""
        backing_off = tx.links.delivery(partner).failures > 0
        tx.links.update_partner(
            partner, last_heard_at=now, failures=0, retry_at=None, down_since=None
        )
        if backing_off:
            tx.after_commit(lambda: self.heard(partner))

    def _link_for(
        self, tx: Tx, partner: Partner, link_id: str, body: pb.Body, *, now: datetime
    ) -> tuple[Link, Ticket | None, bool]:
        """The link an event of partner's is on and its ticket, both locked, and whether
        this event opens the link.

        A linked ticket is locked before its link, in the order every local change of the
        ticket takes them (the ticket, then its links as it reports to partners): the other
        order deadlocks on PostgreSQL when an engineer and a partner change it at once. (On
        SQLite the write transaction holds the whole database already.)
        """
        link = tx.links.link(link_id)
        ticket = None
        if link is not None and link.ticket_id is not None:
            ticket = tx.ticket(link.ticket_id, for_update=True)
            if tx.locks_rows:
                link = tx.links.link(link_id, for_update=True)
        if link is not None:
            if link.partner != partner.node_id:
                raise Refused(
                    "PERMISSION_DENIED", f"link: {partner.node_id} is not party to link {body.link}"
                )
            return link, ticket, False
        if not body.link:
            link = Link.new(
                link_id, partner.node_id, None, side=Side.PARTNER, state=LinkState.CONTROL, now=now
            )
        elif body.WhichOneof("event") == "offer" and body.seq == 1:
            if partner.role is not PartnerRole.CLIENT:
                raise Refused(
                    "PERMISSION_DENIED",
                    f"offer: {partner.node_id} is our contractor, not our client",
                )
            link = Link.new(
                link_id, partner.node_id, None, side=Side.PARTNER, state=LinkState.OFFERED, now=now
            )
        else:
            raise Refused("NOT_FOUND", f"link: no link {body.link} with {partner.node_id}")
        tx.links.add_link(link)
        return link, None, True

    def _apply(self, tx: Tx, event: "_Inbound") -> None:
        body, kind, link = event.body, event.kind, event.link
        if kind == "key":
            announced = body.key
            if key_id(announced.public_key) != announced.key_id or len(announced.public_key) != 32:
                raise Refused("INVALID_ARGUMENT", "key: key_id does not name public_key")
            tx.links.add_key(
                event.partner.node_id, announced.key_id, announced.public_key, event.now
            )
            return
        if kind == "offer":
            self._take_offer(tx, event)
            return
        ticket = event.ticket
        assert ticket is not None, "an event on a ticket's link finds the ticket locked"
        if kind == "comment":
            self.tickets.remark(tx, event.actor, ticket, body.comment.body, Visibility.PUBLIC)
            return
        state, wire = EFFECTS[kind]
        if kind == "status":
            wire = pb.WireStatus.Name(body.status.status)
        changes = [Change("partner", f"link.{kind}", "", _note(body, kind))]
        if kind == "accept":
            link.remote_ticket = body.accept.ticket
            respond_by, resolve_by = deadlines_of(body.accept.deadlines)
            link.respond_by = earliest(link.respond_by, respond_by)
            link.resolve_by = earliest(link.resolve_by, resolve_by)
        elif kind == "deadline":
            respond_by, resolve_by = deadlines_of(body.deadline.deadlines)
            agreed = respond_by or link.respond_by, resolve_by or link.resolve_by
            changes += self._promise(tx, link, ticket, agreed, event.now)
        link.state = state or link.state
        target = self._status_in(event.partner, wire) if wire else ""
        if target and target != ticket.status:
            changes += self.workflow.move(ticket, event.actor, target, event.now)
        self.tickets.record(tx, event.actor, ticket, changes)

    def _take_offer(self, tx: Tx, event: "_Inbound") -> None:
        """Files our ticket for a client's offer and accepts it, or rejects it when our own
        deadlines would be later than the offer's and the terms say so."""
        partner, link, offer, actor, now = (
            event.partner,
            event.link,
            event.body.offer,
            event.actor,
            event.now,
        )
        store = Store(
            code=f"{partner.node_id}.{offer.store.code}"[:64],
            name=offer.store.name or offer.store.code,
            region=offer.store.region,
            timezone=offer.store.timezone or "UTC",
            tier=Tier.FLAGSHIP if offer.store.flagship else Tier.STANDARD,
        )
        tx.put_store(store)
        category = offer.category if tx.category(offer.category) else partner.terms.category
        ticket = self.tickets.file(
            tx,
            actor,
            TicketDraft(
                category=category,
                title=offer.title,
                description=offer.description,
                store=store.code,
                request_id=link.id,
                stop_trade=offer.stop_trade,
            ),
        )
        link.ticket_id, link.remote_ticket = ticket.id, offer.ticket
        tx.links.save_link(link)
        own_respond, own_resolve = self._deadlines(ticket, store, now)
        offered_respond, offered_resolve = deadlines_of(offer.deadlines)
        link.respond_by, link.resolve_by = offered_respond, offered_resolve
        respond_by = earliest(own_respond, offered_respond)
        resolve_by = earliest(own_resolve, offered_resolve)
        late = own_resolve is not None and resolve_by != own_resolve  # the offer's is earlier
        history = [Change("partner", "link", "", f"offered by {partner.name} as {offer.ticket}")]
        if late and partner.terms.late_offers == "reject":
            reason = f"our own deadline {own_resolve:%Y-%m-%d %H:%M} is later than the offer's"
            history += self.workflow.move(ticket, actor, self._status_in(partner, "REJECTED"), now)
            history.append(Change("partner", "reason", "", reason))
            link.state = LinkState.REJECTED
            self.emit(tx, link, "reject", pb.Reject(reason=reason))
        else:
            link.state = LinkState.ACCEPTED
            history += self._promise(tx, link, ticket, (respond_by, resolve_by), now)
            self.emit(
                tx,
                link,
                "accept",
                pb.Accept(
                    ticket=ticket.key, deadlines=_deadlines_pb(respond_by, resolve_by), at_risk=late
                ),
            )
        self.tickets.record(tx, actor, ticket, history)

    # -- catching up -------------------------------------------------------------

    def pull_requests(self, partner_id: str) -> list[pb.Envelope]:
        """Signed requests for what partner sent us that we have not taken: one cursor per
        link with it that is still open on our side, and one for its control link, at most
        PULL_CURSORS per request."""
        with self.db.read() as tx:
            links = [
                link for link in tx.links.links_with(partner_id) if link.state not in CLOSED_LINKS
            ]
        cursors = [
            pb.Cursor(link="" if link.ticket_id is None else link.id, seq=link.in_seq)
            for link in links
        ]
        if not any(link.ticket_id is None for link in links):
            cursors.append(pb.Cursor(link="", seq=0))
        return [
            seal(
                self.identity,
                pb.PullBody(
                    sender=self.identity.node_id,
                    destination=partner_id,
                    at=timestamp(self.clock.now()),
                    after=cursors[start : start + PULL_CURSORS],
                ),
            )
            for start in range(0, len(cursors), PULL_CURSORS)
        ]

    def pulled(self, request: pb.Envelope) -> list[pb.Envelope]:
        """What a partner's signed pull request asks for: our events to it on its cursors'
        links after their sequence numbers, oldest first, as many as fit in one message.
        A pull is a message from the partner: it is back, so we stop backing off.

        Raises:
            Refused: the request is not signed by an active partner, not addressed to us,
                or made more than PULL_WINDOW from now (a request captured and replayed).
        """
        now = self.clock.now()
        with self.db.write() as tx:
            signer, body = opened(request, tx.links.key, pb.PullBody)
            self._check_parties(signer, body.sender, body.destination, "request")
            made = instant(body.at)
            if abs(made - now) > PULL_WINDOW:
                raise Refused(
                    "PERMISSION_DENIED",
                    f"at: {made:%Y-%m-%d %H:%M:%S}Z is more than {PULL_WINDOW} from our clock",
                )
            partner = tx.links.partner(signer)
            if partner is None or partner.state is not PartnerState.ACTIVE:
                raise Refused("PERMISSION_DENIED", f"sender: {signer} is not an active partner")
            after = {cursor.link or CONTROL_PREFIX + signer: cursor.seq for cursor in body.after}
            sent = [event.envelope for event in tx.links.sent_after(signer, after, PULL_LIMIT)]
            self._heard_from(tx, signer, now)
        return [pb.Envelope.FromString(envelope) for envelope in sent[: fitting(sent)]]

    # -- partners ----------------------------------------------------------------

    def invite(self, endpoint: str, name: str) -> "Invite":
        """What a partner's admin needs to add this node."""
        me = self.identity
        return Invite(me.node_id, name, endpoint, me.public_key, me.cert_pem.decode())

    def add_partner(
        self, invite: "Invite", role: PartnerRole, terms: Terms, *, plaintext: bool = False
    ) -> Partner:
        """Registers a partner node from its invite (its admin and ours compared the
        fingerprint), with the user that stands for it in our tickets.

        Raises:
            AlreadyExists: the node is a partner already.
            InvalidArgument: the terms name a category, status or wire status we do not have.
        """
        now = self.clock.now()
        partner = Partner(
            node_id=invite.node_id,
            name=invite.name,
            endpoint=invite.endpoint,
            role=role,
            state=PartnerState.ACTIVE,
            login=invite.node_id,
            cert_pem=invite.cert_pem,
            plaintext=plaintext,
            terms=terms,
            added_at=now,
        )
        with self.db.write() as tx:
            if tx.links.partner(invite.node_id) is not None:
                raise AlreadyExists(f"partner: {invite.node_id} is a partner already")
            self._check_terms(tx, role, terms)
            user = User(invite.node_id, f"partner node {invite.name}", Role.SYSTEM)
            if not tx.add_user(user):
                raise AlreadyExists(f"partner: login {invite.node_id} is taken by a user")
            tx.links.add_partner(partner)
            tx.links.add_key(invite.node_id, key_id(invite.public_key), invite.public_key, now)
        return partner

    def announce_key(self, public_key: bytes) -> int:
        """Records a new signing key of ours and writes its announcement, signed by the key
        that signs now, to the outbox of every partner but removed ones (a suspended
        partner's waits with the rest of its outbox), on each partner's control link.

        Returns:
            How many partners it was written for.
        """
        now = self.clock.now()
        kid = key_id(public_key)
        announcement = pb.KeyAnnouncement(key_id=kid, public_key=public_key)
        with self.db.write() as tx:
            tx.links.add_key(self.identity.node_id, kid, public_key, now)
            told = [p for p in tx.links.partners() if p.state is not PartnerState.REMOVED]
            for partner in told:
                link_id = CONTROL_PREFIX + partner.node_id
                link = tx.links.link(link_id, for_update=True)
                if link is None:
                    link = Link.new(
                        link_id,
                        partner.node_id,
                        None,
                        side=Side.ORIGIN,
                        state=LinkState.CONTROL,
                        now=now,
                    )
                    tx.links.add_link(link)
                self.emit(tx, link, "key", announcement)
        return len(told)

    def _check_terms(self, tx: Tx, role: PartnerRole, terms: Terms) -> None:
        """Terms that name only our categories and statuses and the wire's statuses."""
        named = [("terms.categories", c) for c in terms.categories]
        if role is PartnerRole.CLIENT:
            named.append(("terms.category", terms.category))
        for field, code in named:
            if tx.category(code) is None:
                raise InvalidArgument(field, f"no such category {code!r} in our catalogue")
        wire = ("wire status", sorted(set(pb.WireStatus.keys()) - {"WIRE_STATUS_UNSPECIFIED"}))
        ours = ("status of our workflow", sorted(self.workflow.kinds))
        for name, mapping, keys, values in (
            ("status_out", terms.status_out, ours, wire),
            ("status_in", terms.status_in, wire, ours),
        ):
            for key, value in mapping.items():
                for given, (what, allowed) in ((key, keys), (value, values)):
                    if given not in allowed:
                        raise InvalidArgument(
                            f"terms.{name}.{key}",
                            f"{given!r} is not a {what}: one of {', '.join(allowed)}",
                        )

    def set_state(self, node_id: str, state: PartnerState) -> None:
        """Suspends, resumes or removes a partner; its links and log stay."""
        with self.db.write() as tx:
            if tx.links.partner(node_id) is None:
                raise NotFound("partner", node_id)
            tx.links.update_partner(node_id, state=state)

    def partners(self) -> list[tuple[Partner, Delivery, int]]:
        """Every partner with where delivery to it stands and how many events wait for it."""
        with self.db.read() as tx:
            return [
                (p, tx.links.delivery(p.node_id), tx.links.outbox_size(p.node_id))
                for p in tx.links.partners()
            ]

    def _partner(self, tx: Tx, partner_id: str) -> Partner:
        partner = tx.links.partner(partner_id)
        if partner is None:
            raise NotFound("partner", partner_id)
        if partner.state is not PartnerState.ACTIVE:
            raise FailedPrecondition(f"partner {partner_id} is {partner.state}")
        return partner


@dataclass(frozen=True, slots=True)
class _Ready:
    """Tells the delivery worker, in a transaction that wrote events for a partner as its
    work ends, that they wait: once per transaction and partner, however many it wrote."""

    exchange: ExchangeService
    tx: Tx
    partner: str

    def __call__(self) -> None:
        self.exchange.outbox_ready(self.tx, self.partner)


class _Isolate(Exception):
    """An event of a chunk applied at once failed: the chunk is applied again, isolated."""


def _refusal(error: Exception) -> pb.Result:
    """The result of an event that failed with error."""
    if isinstance(error, Refused):
        return pb.Result(
            code=_code(error.code), message=str(error), expected_seq=error.expected_seq
        )
    if isinstance(error, DomainError):
        return pb.Result(code=_code(error.code), message=str(error))
    log.error("applying an event failed", exc_info=error)
    return pb.Result(code=grpc.StatusCode.INTERNAL.value[0], message="internal error; see the log")


def _unseen(_tx: Tx, _partner: str) -> None:
    """What a service no delivery worker listens to does when events are written."""


def _ignore(_partner: str) -> None:
    """What a service no delivery worker listens to does when a partner reaches it."""


def _reason(tx: Tx, ticket: Ticket) -> str:
    """The reason given with the ticket's last transition, if any."""
    return tx.last_change(ticket.id, "reason")


def _deadlines_pb(respond_by: datetime | None, resolve_by: datetime | None) -> pb.Deadlines:
    deadlines = pb.Deadlines()
    if respond_by is not None:
        deadlines.respond_by.CopyFrom(timestamp(respond_by))
    if resolve_by is not None:
        deadlines.resolve_by.CopyFrom(timestamp(resolve_by))
    return deadlines


def _duplicate(tx: Tx, link: Link, seq: int, body_digest: bytes, batch: _Batch) -> pb.Receipt | int:
    """The receipt of an event received before, if this is the same event again: from
    the log, or where it will be among the chunk's if the chunk applied it."""
    found: pb.Receipt | int
    in_chunk = batch.applied.get((link.id, seq))
    if in_chunk is not None:
        found, earlier_digest = in_chunk
    else:
        earlier = tx.links.inbound(link.id, seq)
        if earlier is None or earlier.receipt is None:
            raise Refused("FAILED_PRECONDITION", f"seq: {seq} on link {link.id} is not in the log")
        found, earlier_digest = pb.Receipt.FromString(earlier.receipt), earlier.digest
    if earlier_digest != body_digest:
        raise Refused(
            "ALREADY_EXISTS", f"seq: {seq} on link {link.id} was another event (a replay?)"
        )
    return found


def _log_row(
    link: Link,
    envelope: pb.Envelope,
    *,
    seq: int,
    kind: str,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """A row of the link's log: ours waiting in the outbox (no receipt yet), or one of the
    partner's we received at received_at (its receipt set before it is written)."""
    return {
        "link": link.id,
        "partner": link.partner,
        "outbound": received_at is None,
        "seq": seq,
        "kind": kind,
        "digest": digest(envelope.body),
        "envelope": envelope.SerializeToString(),
        "receipt": None,
        "received_at": received_at,
        "pending": received_at is None,
    }


def _code(name: str) -> int:
    code: int = grpc.StatusCode[name].value[0]
    return code
