"""The end-to-end story of DESIGN.md, played by the people of three nodes over their APIs.

A bakery chain (RET), the contractor that services its cash registers (CON) and a
regional service centre (SVC), each its own node. The store's register dies; the
bakery's engineer hands the ticket to the contractor, which hands a sub-task on to
the service centre; what each does flows back up the chain, mapped to each node's
workflow on each hop; the store confirms, and the confirmation flows down. Every
person acts through the gRPC API of their own node (`HelpDeskClient`), as the web
portal or an engineer's console would; the nodes talk only over the exchange.

The timeline prints who did what on which node, then every event that crossed (read
from the receivers' signed logs, `demo.wire`), then where each node's ticket stands.
The story checks the rules as it goes and fails on the first broken one: the
stop-trade SLA, the queue order, that only the assignee resolves and only an
administrator reopens, the statuses each hop maps to, deadlines that never get later
down the chain, the accept within the agreed time, internal comments that never
leave their node.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from demo.nodes import DemoFailed, Node
from demo.wire import Wire, at
from exchange.audit import Crossing
from node.api.client import ApiError, HelpDeskClient, TicketView
from node.domain.partner import LinkState, Side, TicketLink
from node.domain.sla import Timer
from node.domain.ticket import HistoryEntry, Priority, TicketDraft, Visibility

ACCEPT_WITHIN = timedelta(minutes=5)
"""The time to accept the bakery agreed with its contractor (`--accept-minutes`)."""


@dataclass
class Chain:
    """The three nodes, serving and paired: the bakery's contractor is CON, CON's is SVC."""

    retail: Node
    contractor: Node
    service: Node

    @property
    def nodes(self) -> tuple[Node, Node, Node]:
        return self.retail, self.contractor, self.service


def expect(condition: bool, what: str) -> None:
    """Fails the demo unless condition holds; what says the rule."""
    if not condition:
        raise DemoFailed(what)


def refused(call: Callable[[], object], code: str) -> str:
    """Runs call, which the node must refuse with code; returns the node's message."""
    try:
        call()
    except ApiError as error:
        expect(error.code == code, f"expected {code}, got {error}")
        return error.details
    raise DemoFailed(f"the node allowed what it must refuse with {code}")


def due(view: TicketView, timer: Timer) -> datetime:
    """When the ticket's running clock of timer runs out."""
    for clock in view.ticket.clocks:
        if clock.timer is timer and clock.due_at is not None:
            return clock.due_at
    raise DemoFailed(f"{view.ticket.key} has no running {timer} clock")


def handed_on(view: TicketView) -> TicketLink:
    """The link the ticket was handed on by (to a contractor)."""
    onward = [link for link in view.ticket.links if link.side is Side.ORIGIN]
    expect(len(onward) == 1, f"{view.ticket.key} was handed on once, not {len(onward)} times")
    return onward[0]


def one(crossings: Sequence[Crossing], kind: str) -> Crossing:
    """The only event of kind that crossed."""
    found = [crossing for crossing in crossings if crossing.kind == kind]
    expect(len(found) == 1, f"expected one {kind} on the wire, saw {len(found)}")
    return found[0]


def no_later(inner: Crossing, outer: Crossing) -> bool:
    """Whether inner's deadlines are no later than outer's (where both set one)."""
    return all(
        mine is None or theirs is None or mine <= theirs
        for mine, theirs in (
            (inner.respond_by, outer.respond_by),
            (inner.resolve_by, outer.resolve_by),
        )
    )


@dataclass(frozen=True, slots=True)
class Line:
    """A line of the timeline: when, who (a person, a node, or the wire), on which node or
    between which nodes, what."""

    at: datetime
    who: str
    where: str
    what: str


class Story:
    """The people of the chain's nodes, each with a client of their own node's API."""

    def __init__(self, chain: Chain, wire: Wire) -> None:
        self.chain, self.wire = chain, wire
        retail, contractor, service = chain.nodes

        def client(node: Node, login: str) -> HelpDeskClient:
            return HelpDeskClient(node.api, node.tokens[login])

        self.anna, self.ivan = client(retail, "anna"), client(retail, "ivan")
        self.olga, self.admin = client(retail, "olga"), client(retail, "admin")
        self.petr, self.sara = client(contractor, "petr"), client(service, "sara")
        self.keys: dict[str, str] = {}
        """Each node's ticket of the chain, by node prefix."""
        self.seen_by_store: list[HistoryEntry] = []
        self.agreed: Crossing | None = None
        """The contractor's accept: the deadlines it agreed with the bakery."""
        self.scales = ""
        """The store's other ticket, which no partner sees."""
        self.said: list[Line] = []
        """What people did and nodes answered, not printed yet."""

    # -- the timeline ----------------------------------------------------------------

    def say(self, who: str, node: Node, what: str) -> None:
        """Notes what who does (said before doing it) or what the node answered, now."""
        self.said.append(Line(datetime.now(UTC), who, node.prefix, what))

    def flush(self, crossings: Sequence[Crossing] = ()) -> None:
        """Prints what was said and what crossed since the last time, in time order."""
        lines = self.said + [
            Line(
                c.received_at,
                "wire",
                f"{self.wire.name(c.sender)}->{self.wire.name(c.receiver)}",
                f"{c.kind} #{c.seq}" + (f": {c.summary}" if c.summary else ""),
            )
            for c in crossings
        ]
        for line in sorted(lines, key=lambda line: line.at):
            print(f"  {at(line.at)}  {line.who:<6} {line.where:<8} {line.what}")
        self.said.clear()

    def crossed(self) -> list[Crossing]:
        """Waits until the nodes are quiet and prints what crossed since the last call."""
        crossings = self.wire.settle()
        self.flush(crossings)
        return crossings

    def stand(self, **expected: str) -> None:
        """Prints where each node's ticket of the chain stands, and checks it stands as
        expected (a status by node prefix): how each hop mapped what crossed."""
        clients = {"RET": self.ivan, "CON": self.petr, "SVC": self.sara}
        shown = []
        for prefix, status in expected.items():
            key = self.keys[prefix]
            actual = clients[prefix].get(key).ticket.status
            expect(actual == status, f"{key} should be {status}, is {actual}")
            shown.append(f"{key} {actual}")
        self.flush()
        print(f"  {at(datetime.now(UTC))}  {'':6} {'':8} now: {' | '.join(shown)}")

    def chapter(self, title: str) -> None:
        self.flush()
        print(f"\n{title}")

    # -- the story -------------------------------------------------------------------

    def play(self) -> None:
        watcher = threading.Thread(
            target=lambda: self.seen_by_store.extend(self.anna.watch()), daemon=True
        )
        watcher.start()
        try:
            print(f"  {'UTC':10}  {'who':<6} {'node':<8} what")
            key = self.file()
            self.assign(key)
            con_key = self.hand_to_contractor(key)
            self.sub_task(con_key)
            self.work_and_pause()
            self.resolve_and_confirm(key, con_key)
            self.rules_of_the_field()
            self.flush()
        finally:
            for client in (self.anna, self.ivan, self.olga, self.admin, self.petr, self.sara):
                client.close()
            watcher.join(timeout=5)
        self.nothing_internal_crossed()

    def file(self) -> str:
        self.chapter("1. 09:12 in the story (now, in this run): the register of store msk-001 dies")
        retail = self.chain.retail
        self.say("anna", retail, "files 'POS does not work' from the catalogue")
        view = self.anna.create(
            TicketDraft(
                category="pos-down",
                title="POS does not work",
                description="Register 2 shows a black screen.",
            )
        )
        t = view.ticket
        self.keys["RET"] = t.key
        self.wire.follow(retail, t.key)
        respond_by, resolve_by = due(view, Timer.FIRST_RESPONSE), due(view, Timer.RESOLUTION)
        expect(t.stop_trade and t.priority is Priority.P1, "a dead register is stop-trade, P1")
        expect(
            (respond_by - t.created_at, resolve_by - t.created_at)
            == (timedelta(minutes=15), timedelta(hours=4)),
            "stop-trade: respond in 15 min, resolve in 4 h, round the clock",
        )
        self.say(
            "node",
            retail,
            f"{t.key}: stop-trade, P1, SLA {t.sla.policy} (24/7): respond by {at(respond_by)}, "
            f"resolve by {at(resolve_by)}; routed to queue {t.group!r}",
        )
        self.say("anna", retail, "files 'Scales print no labels'")
        scales = self.anna.create(TicketDraft(category="scales", title="Scales print no labels"))
        self.scales = scales.ticket.key
        self.say("node", retail, f"{self.scales}: {scales.ticket.priority.name}")
        return t.key

    def assign(self, key: str) -> None:
        self.chapter("2. Routing put it in the POS queue; the engineer on duty takes it")
        retail = self.chain.retail
        self.say("ivan", retail, "opens his queue")
        queue, _ = self.ivan.list_tickets()
        order = ", ".join(
            f"{v.ticket.key} {v.ticket.priority.name}{' STOP' if v.ticket.stop_trade else ''}"
            for v in queue
        )
        self.say("node", retail, f"queue order: {order}")
        expect(queue[0].ticket.key == key, "stop-trade leads the queue")
        self.say("ivan", retail, f"starts {key}")
        started = self.ivan.transition(key, "start").ticket
        expect(started.assignee == "ivan", "who starts a ticket is its assignee")
        self.say("node", retail, f"{key}: {started.status}, assigned to {started.assignee}")
        self.say("ivan", retail, "notes internally: PSU dead, FixIt services our registers")
        self.ivan.comment(
            key, "PSU of register 2 is dead; FixIt services our registers.", Visibility.INTERNAL
        )
        self.say("olga", retail, f"tries to resolve {key}, which is not hers")
        why = refused(lambda: self.olga.transition(key, "resolve"), "FAILED_PRECONDITION")
        self.say("node", retail, f"refuses: {why}")

    def hand_to_contractor(self, key: str) -> str:
        self.chapter("3. The engineer hands it to the contractor; the contractor's node accepts")
        retail, contractor = self.chain.retail, self.chain.contractor
        self.say("ivan", retail, f"hands {key} to {contractor.node_id} (HandOffTicket)")
        self.ivan.hand_off(key, contractor.node_id, "Register 2, black screen.")
        crossings = self.crossed()
        offer, accept = one(crossings, "offer"), one(crossings, "accept")
        link = handed_on(self.ivan.get(key))
        expect(link.state is LinkState.ACCEPTED, f"the contractor accepts {key}")
        con_key = self.keys["CON"] = link.remote_ticket
        expect(no_later(accept, offer), "the contractor's deadlines are no later than offered")
        took = accept.received_at - offer.received_at
        expect(took <= ACCEPT_WITHIN, f"the contractor accepts within {ACCEPT_WITHIN}")
        self.say(
            "node",
            contractor,
            f"filed {con_key} and accepted {took.total_seconds():.1f} s after its signed receipt "
            f"of the offer (agreed: within {ACCEPT_WITHIN.seconds // 60} min), due by its own "
            "SLA where that is earlier",
        )
        self.agreed = accept
        self.stand(RET="waiting_partner", CON="new")
        return con_key

    def sub_task(self, con_key: str) -> None:
        self.chapter("4. The contractor starts, needs a part, and hands a sub-task on")
        contractor, service = self.chain.contractor, self.chain.service
        self.say("petr", contractor, f"starts {con_key}, tells the client an engineer is coming")
        self.petr.transition(con_key, "start")
        self.petr.comment(con_key, "An engineer is on the way, ETA 40 minutes.")
        self.say("petr", contractor, "notes internally: no PSU in stock")
        self.petr.comment(
            con_key, "PSU model 7 not in stock; ask the service centre.", Visibility.INTERNAL
        )
        self.crossed()
        self.stand(RET="waiting_partner", CON="in_progress")
        self.say("petr", contractor, f"hands {con_key} to {service.node_id} (HandOffTicket)")
        self.petr.hand_off(con_key, service.node_id, "Replacement PSU for register 2.")
        crossings = self.crossed()
        offer, accept = one(crossings, "offer"), one(crossings, "accept")
        expect(
            self.agreed is not None and no_later(offer, self.agreed),
            "the sub-task is due no later than the contractor agreed with the bakery",
        )
        expect(no_later(accept, offer), "the service centre's deadlines are no later than offered")
        link = handed_on(self.petr.get(con_key))
        expect(link.state is LinkState.ACCEPTED, f"the service centre accepts {con_key}")
        self.keys["SVC"] = link.remote_ticket
        self.stand(RET="waiting_partner", CON="waiting_partner", SVC="new")

    def work_and_pause(self) -> None:
        self.chapter("5. Status changes, comments and an SLA pause flow back up the chain")
        service, retail = self.chain.service, self.chain.retail
        svc_key = self.keys["SVC"]
        self.say("sara", service, f"starts {svc_key}, tells the client the PSU is in stock")
        self.sara.transition(svc_key, "start")
        self.sara.comment(svc_key, "PSU in stock; a courier brings it within the hour.")
        self.crossed()
        self.stand(RET="waiting_partner", CON="waiting_partner", SVC="in_progress")
        self.say("sara", service, "asks for the register's serial number and waits on the store")
        self.sara.comment(svc_key, "Which serial number does register 2 carry?")
        self.sara.transition(svc_key, "wait_requester")
        self.crossed()
        self.stand(RET="waiting_requester", CON="waiting_requester", SVC="waiting_requester")
        self.say("anna", retail, "answers on her ticket with the serial number")
        self.anna.comment(self.keys["RET"], "Serial number KKT-0042-1187.")
        self.crossed()
        self.say("sara", service, f"resumes {svc_key}")
        self.sara.transition(svc_key, "resume")
        self.crossed()
        self.stand(RET="waiting_partner", CON="waiting_partner", SVC="in_progress")

    def resolve_and_confirm(self, key: str, con_key: str) -> None:
        self.chapter("6. Each resolves in turn; the store confirms, the confirmation flows down")
        retail, contractor, service = self.chain.nodes
        svc_key = self.keys["SVC"]
        self.say("sara", service, f"sends the PSU and resolves {svc_key}")
        self.sara.transition(svc_key, "resolve")
        self.crossed()
        self.stand(RET="waiting_partner", CON="in_progress", SVC="resolved")
        self.say("petr", contractor, f"fits the PSU and resolves {con_key}")
        self.petr.transition(con_key, "resolve")
        self.crossed()
        self.stand(RET="in_progress", CON="resolved", SVC="resolved")
        self.say("ivan", retail, f"checks register 2 and resolves {key}")
        self.ivan.transition(key, "resolve")
        self.say("anna", retail, f"confirms {key}")
        self.anna.transition(key, "confirm")
        self.crossed()
        self.stand(RET="closed", CON="closed", SVC="closed")

    def rules_of_the_field(self) -> None:
        self.chapter("7. Only an administrator reopens a closed ticket")
        retail, scales = self.chain.retail, self.scales
        self.say("ivan", retail, f"recalibrates the scales and resolves {scales}; anna confirms")
        self.ivan.transition(scales, "start")
        self.ivan.transition(scales, "resolve")
        self.anna.transition(scales, "confirm")
        self.say("ivan", retail, f"tries to reopen {scales}")
        why = refused(
            lambda: self.ivan.transition(scales, "reopen", "Labels smudge again"),
            "FAILED_PRECONDITION",
        )
        self.say("node", retail, f"refuses: {why}")
        self.say("admin", retail, f"reopens {scales}")
        reopened = self.admin.transition(scales, "reopen", "Labels smudge again.").ticket
        expect(reopened.status == "in_progress", "an administrator reopens a closed ticket")
        self.say("node", retail, f"{scales}: {reopened.status}")

    def nothing_internal_crossed(self) -> None:
        """Internal comments stay on their node: the store's live feed showed none, and
        neither node's ticket holds the other's internal note."""
        internal = [e for e in self.seen_by_store if e.change.field == Visibility.INTERNAL.value]
        expect(not internal, "the store never sees an internal comment")
        with HelpDeskClient(self.chain.retail.api, self.chain.retail.tokens["ivan"]) as ivan:
            ours = [c.body for c in ivan.comments(self.keys["RET"])]
        with HelpDeskClient(
            self.chain.contractor.api, self.chain.contractor.tokens["petr"]
        ) as petr:
            theirs = [c.body for c in petr.comments(self.keys["CON"])]
        expect(not any("PSU model 7" in body for body in ours), "the contractor's note stays there")
        expect(not any("FixIt" in body for body in theirs), "the bakery's note stays there")
        print(
            f"\nThe store's live feed showed {len(self.seen_by_store)} changes, none internal; "
            "no internal note left its node."
        )
