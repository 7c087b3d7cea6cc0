"""`hdx sla verify TICKET`: the end-to-end SLA of a ticket's hand-offs, from the node's log.

Works on the node's database directly, as the other administration commands do.
For each link of the ticket (handed to us, handed on by us) it prints the partner,
whether the link's log verifies (signatures, chains, receipts), and its verdict:
deadlines met or breached and by how much, the pauses, the deadlines agreed, who
held the ticket when. The verdict's lines are the same on the node at the other end
of the link. Exits non-zero when any link's log fails to verify.
"""

import argparse
from collections.abc import Callable

from cli.config import Config
from cli.wiring import open_node
from exchange.audit import LinkAudit, audit
from exchange.verdict import describe
from node.domain.errors import FailedPrecondition
from node.domain.partner import Side


def add_commands(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
    config: Callable[[argparse.Namespace], Config],
) -> None:
    """Adds `hdx sla ...`; config reads the node's configuration from the arguments."""
    sla = commands.add_parser("sla", help="the end-to-end SLA of hand-offs")
    verify = sla.add_subparsers(required=True).add_parser(
        "verify", help="check every signature and chain of a ticket's links, print the verdicts"
    )
    verify.add_argument("ticket", help="the ticket's key, e.g. RET-1042")
    verify.set_defaults(run=lambda args: _verify(config(args), args.ticket))


def _verify(config: Config, key: str) -> None:
    audits = audit(open_node(config).db, key)
    print(f"{key}: {len(audits)} link(s)")
    for link in audits:
        _print(link)
    failed = sum(1 for link in audits if link.problems)
    if failed:
        raise FailedPrecondition(f"{failed} of {len(audits)} link(s) of {key} do not verify")


def _print(audit: LinkAudit) -> None:
    link = audit.link
    whom = f"{audit.partner_name} ({link.partner})"
    way = f"handed to {whom}" if link.side is Side.ORIGIN else f"handed to us by {whom}"
    theirs = f", their ticket {link.remote_ticket}" if link.remote_ticket else ""
    print(f"\nlink {link.id}: {way}{theirs}")
    waiting = f", {audit.waiting} awaiting their receipt" if audit.waiting else ""
    if audit.problems:
        print(f"  verification FAILED ({audit.events} events{waiting}):")
        for problem in audit.problems:
            print(f"    {problem}")
        return
    print(f"  verified: {audit.events} events, signatures, chains and receipts{waiting}")
    if audit.verdict is None:
        print("  no verdict: the offer has not been received")
        return
    for line in describe(audit.verdict):
        print(f"  {line}")
