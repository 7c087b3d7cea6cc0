"""What crossed between the demo's nodes, read from their signed logs.

Both ends of a link log every event on it: the sender when it writes it to its outbox,
the receiver with the receipt it signs. So the wire is read from the receivers' logs
(`exchange.audit.received`), on the links of one chain of tickets: the ticket a story
starts with, the tickets it was handed on as, and so on down the chain.

`Wire.settle` waits until the nodes are quiet: no event waits in any outbox for its
receipt, and nothing was logged since the last look. An event received applies its
change and writes what it causes for the next node in one transaction, before its
receipt goes back; so once every outbox is empty and stays so, everything a step
caused has arrived everywhere.
"""

import time
from collections.abc import Sequence
from datetime import datetime

from demo.nodes import POLL_S, WAIT_S, DemoFailed, Node
from exchange.audit import Crossing, received
from node.domain import validation
from node.domain.partner import Side


class Wire:
    """A tap on the logs of nodes, following the chain of tickets from one ticket.

    Args:
        nodes: the nodes, each read through a database handle of its own.
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = {node.node_id: node for node in nodes}
        self.databases = {node.node_id: node.database() for node in nodes}
        self.start: tuple[str, str] | None = None
        self.shown: set[tuple[str, int]] = set()

    def follow(self, node: Node, key: str) -> None:
        """Follows the chain that starts with node's ticket key."""
        self.start = (node.node_id, key)

    def name(self, node_id: str) -> str:
        """The demo's short name of a node (its key prefix)."""
        node = self.nodes.get(node_id)
        return node.prefix if node else node_id

    def chain(self) -> list[tuple[str, str]]:
        """(node id, ticket key) of each ticket of the chain followed, from its start on."""
        found = [] if self.start is None else [self.start]
        for node_id, key in found:
            database = self.databases[node_id]
            with database.read() as tx:
                links = tx.links.links_of(validation.ticket_number(key, tx.key_prefix))
            for link in links:
                onward = (link.partner, link.remote_ticket)
                if link.side is Side.ORIGIN and link.remote_ticket and onward not in found:
                    found.append(onward)
        return found

    def settle(self, timeout_s: float = WAIT_S) -> list[Crossing]:
        """Waits until the nodes are quiet; returns what crossed since the last call, in the
        order of its receipts.

        Raises:
            DemoFailed: events still wait for their receipts after timeout_s (why is named).
        """
        deadline = time.monotonic() + timeout_s
        before: set[tuple[str, int]] | None = None
        while True:
            waiting = self._waiting()
            crossings = self._crossings()
            now = {(c.receiver, c.id) for c in crossings}
            if not waiting and now == before:
                break
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"events still wait for their receipts after {timeout_s:g} s: "
                    + "; ".join(waiting)
                )
            before = now
            time.sleep(POLL_S)
        new = [c for c in crossings if (c.receiver, c.id) not in self.shown]
        self.shown |= {(c.receiver, c.id) for c in new}
        return sorted(new, key=lambda crossing: crossing.received_at)

    def _crossings(self) -> list[Crossing]:
        crossings: list[Crossing] = []
        for node_id, key in self.chain():
            crossings += received(self.databases[node_id], [key])
        return crossings

    def _waiting(self) -> list[str]:
        """What waits in each node's outbox, a line per partner (why, if it was refused)."""
        waiting = []
        for node_id, database in self.databases.items():
            with database.read() as tx:
                for partner in tx.links.partners():
                    events = tx.links.outbox(partner.node_id, limit=100)
                    if events:
                        refused = [e.refused for e in events if e.refused]
                        why = f" (refused: {refused[0]})" if refused else ""
                        waiting.append(
                            f"{len(events)} from {self.name(node_id)} to "
                            f"{self.name(partner.node_id)}{why}"
                        )
        return waiting

    def close(self) -> None:
        for database in self.databases.values():
            database.dispose()


def at(instant: datetime) -> str:
    """An instant as the timeline prints it (UTC, to the tenth of a second)."""
    return f"{instant:%H:%M:%S}.{instant.microsecond // 100_000}"
