"""`hdx sla verify`: every link of a ticket checked and judged from the node's own log.

A ticket may have been handed to us (its upstream link, on which we are the partner)
and handed on by us (its downstream links, on which we are the origin). For each, the
link's log is verified against every key the node knows (`verdict.verify`) and,
when it verifies, judged (`verdict.verdict`): the same verdict the node at the other
end of the link computes from its copy.
"""

from dataclasses import dataclass

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
