"""`hdx sla verify`: every link of a ticket checked and judged from the node's own log.

A ticket may have been handed to us (its upstream link, on which we are the partner)
and handed on by us (its downstream links, on which we are the origin). For each, the
link's log is verified against every key the node knows (`verdict.verify`) and,
when it verifies, judged (`verdict.verdict`): the same verdict the node at the other
end of the link computes from its copy.

`received` reads the same logs the other way: the events partners sent on a ticket's
links, each in a line of words (`summary`), for a timeline of what crossed.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.envelope import deadlines_of
from exchange.verdict import Problem, Verdict, verdict, verify
from node.domain import validation
from node.domain.errors import NotFound
from node.domain.partner import Link, Side
from node.store.database import Database


@dataclass(frozen=True, slots=True)
class LinkAudit:
    """One link of a ticket, verified and judged.

    Attributes:
        partner_name: the name the partner node goes by here.
        events: how many events the link's log holds, both directions.
        waiting: how many of ours still wait for their receipt (they are not judged yet).
        verdict: None when the log does not verify, or its offer has not been received.
    """

    link: Link
    partner_name: str
    events: int
    waiting: int
    problems: tuple[Problem, ...]
    verdict: Verdict | None


def audit(db: Database, key: str) -> list[LinkAudit]:
    """Every link of the ticket with that key, oldest first, verified and judged.

    Raises:
        InvalidArgument: the key is malformed or another node's.
        NotFound: no such ticket.
    """
    with db.read() as tx:
        ticket = tx.ticket(validation.ticket_number(key, tx.key_prefix))
        if ticket is None:
            raise NotFound("ticket", key)
        keys = tx.links.all_keys()
        audits = []
        for link in tx.links.links_of(ticket.id):
            log = tx.links.log_of(link.id)
            partner = tx.links.partner(link.partner)
            problems = verify(log, keys)
            judged = None if problems else verdict(log)
            if judged is not None:
                theirs = judged.partner if link.side is Side.ORIGIN else judged.origin
                if theirs != link.partner:
                    reason = f"the log is with {theirs}, the link with {link.partner}"
                    problems.append(Problem("link", reason))
                    judged = None
            audits.append(
                LinkAudit(
                    link=link,
                    partner_name=link.partner if partner is None else partner.name,
                    events=len(log),
                    waiting=sum(1 for event in log if event.receipt is None),
                    problems=tuple(problems),
                    verdict=judged,
                )
            )
        return audits


@dataclass(frozen=True, slots=True)
class Crossing:
    """An event a partner sent us, as we logged it.

    Attributes:
        id: its row in our log (later rows were logged later).
        sender, receiver: node ids; the receiver is us.
        seq: its number in the sender's chain on the link.
        summary: what it says, in words (`summary`).
        received_at: the instant our signed receipt names.
        respond_by, resolve_by: the deadlines an offer, accept or deadline change carries.
    """

    id: int
    link: str
    sender: str
    receiver: str
    seq: int
    kind: str
    summary: str
    received_at: datetime
    respond_by: datetime | None = None
    resolve_by: datetime | None = None


def received(db: Database, keys: Iterable[str]) -> list[Crossing]:
    """The events partners sent on the links of our tickets with those keys, in the order
    we logged them.

    Raises:
        InvalidArgument: a key is malformed or another node's.
    """
    crossings = []
    with db.read() as tx:
        for key in keys:
            for link in tx.links.links_of(validation.ticket_number(key, tx.key_prefix)):
                for event in tx.links.log_of(link.id):
                    if event.outbound or event.received_at is None:
                        continue
                    body = pb.Body.FromString(pb.Envelope.FromString(event.envelope).body)
                    respond_by, resolve_by = deadlines_of(_carried(body))
                    crossings.append(
                        Crossing(
                            id=event.id,
                            link=link.id,
                            sender=body.sender,
                            receiver=body.destination,
                            seq=body.seq,
                            kind=event.kind,
                            summary=summary(body),
                            received_at=event.received_at,
                            respond_by=respond_by,
                            resolve_by=resolve_by,
                        )
                    )
    return sorted(crossings, key=lambda crossing: crossing.id)


def summary(body: pb.Body) -> str:
    """What an event says, in a line: the offer's ticket and deadlines, the status on the
    wire, the comment, the reason given, and so on (empty when it says nothing more
    than its kind)."""
    kind = body.WhichOneof("event")
    if kind is None:
        return ""
    if kind == "offer":
        offer = body.offer
        flag = ", stop-trade" if offer.stop_trade else ""
        return (
            f"{offer.ticket} {offer.title!r} (P{offer.priority}{flag}); "
            f"{_deadlines(offer.deadlines)}"
        )
    if kind == "accept":
        risk = " (at risk)" if body.accept.at_risk else ""
        return f"as {body.accept.ticket}; {_deadlines(body.accept.deadlines)}{risk}"
    if kind == "status":
        return pb.WireStatus.Name(body.status.status)
    if kind == "comment":
        return f"{body.comment.author}: {body.comment.body!r}"
    if kind == "attachment":
        return f"{body.attachment.name} ({len(body.attachment.content)} bytes)"
    if kind == "deadline":
        return f"{_deadlines(body.deadline.deadlines)} ({body.deadline.note})"
    if kind == "confirmed":
        return f"rated {body.confirmed.rating}" if body.confirmed.rating else ""
    if kind == "key":
        return f"key {body.key.key_id}"
    said = getattr(body, kind)
    for field in ("reason", "resolution"):
        if field in said.DESCRIPTOR.fields_by_name:
            return str(getattr(said, field))
    return ""


def _carried(body: pb.Body) -> pb.Deadlines:
    """The deadlines an event carries (none set for kinds that carry none)."""
    kind = body.WhichOneof("event")
    if kind in ("offer", "accept", "deadline"):
        carried: pb.Deadlines = getattr(body, kind).deadlines
        return carried
    return pb.Deadlines()


def _deadlines(deadlines: pb.Deadlines) -> str:
    respond_by, resolve_by = deadlines_of(deadlines)
    return f"respond by {_time(respond_by)}, resolve by {_time(resolve_by)}"


def _time(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%H:%M:%S}Z"
