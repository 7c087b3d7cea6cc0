"""Tickets, the catalogue they are filed from, and the changes made to them.

A `Ticket` is the one mutable entity; every method that changes it returns the
`Change`s it made, which the service layer writes to the ticket's history in
the same transaction as the ticket itself.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

from node.domain.partner import TicketLink
from node.domain.roles import Role
from node.domain.sla import ClockView, TicketSla

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
"""Where a ticket no clock runs for queues: after every deadline."""


class TicketType(StrEnum):
    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"
    ALERT = "alert"


class Level(IntEnum):
    """Impact and urgency: how much is hit, how soon it hurts."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class Priority(IntEnum):
    """P1 is served first."""

    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4


class Tier(StrEnum):
    """How much a store matters to the network; flagship stores are served first."""

    STANDARD = "standard"
    FLAGSHIP = "flagship"


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Store:
    """A location of the network: a bakery, a pharmacy, a fuel station.

    Attributes:
        timezone: IANA name, e.g. "Asia/Vladivostok".
    """

    code: str
    name: str
    region: str
    timezone: str
    tier: Tier = Tier.STANDARD


@dataclass(frozen=True, slots=True)
class Group:
    """A queue of engineers (POS, network, facilities, ...)."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Category:
    """An entry of the service catalogue a ticket is filed from.

    Attributes:
        stop_trade: the store cannot sell while this is broken; such tickets are P1.
        group: the queue that receives tickets of this category, if any.
    """

    code: str
    name: str
    ticket_type: TicketType
    impact: Level
    urgency: Level
    stop_trade: bool = False
    group: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    login: str
    name: str
    role: Role
    store: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Change:
    """One field of a ticket changed by one action; one history entry.

    Attributes:
        action: created, updated, transition, assigned or commented.
        internal: seen by engineers only (internal comments).
    """

    action: str
    field: str
    before: str
    after: str
    internal: bool = False


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a ticket, with the store it belongs to (to filter what store staff see)."""

    id: int
    ticket_key: str
    store: str
    at: datetime
    actor: str
    change: Change


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    ticket_key: str
    author: str
    visibility: Visibility
    body: str
    created_at: datetime


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (StrEnum, IntEnum)):
        return value.name if isinstance(value, IntEnum) else value.value
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return str(value)


@dataclass(slots=True)
class Ticket:
    """A request for help from a store, with everything needed to serve it.

    Attributes:
        id: the node-local number; the human key is the node prefix and this number.
        status: a status name of the node's workflow.
        co_assignees: engineers who share the work and may resolve too.
        line: the support line working it (L1, L2, L3).
        sla: its SLA state, kept by the SLA service.
        due_at: the nearest deadline of its running clocks (each no later than what was
            promised for its timer), None when none runs.
        alarm_at: when its next SLA warning or breach fires, None when none will.
        clocks: its clocks as they stood when it was read.
        promised_respond_by, promised_resolve_by: the deadlines agreed with the client
            node that handed the ticket to this one (None: no promise); the ticket is due
            no later, whatever its own clocks say.
        links: its hand-offs to and from partner nodes, when read on its own.
    """

    id: int
    key: str
    title: str
    description: str
    ticket_type: TicketType
    category: str
    requester: str
    store: str
    impact: Level
    urgency: Level
    priority: Priority
    stop_trade: bool
    status: str
    created_at: datetime
    updated_at: datetime
    assignee: str | None = None
    group: str | None = None
    co_assignees: frozenset[str] = field(default_factory=frozenset)
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    line: str = "L1"
    sla: TicketSla = field(default_factory=TicketSla)
    due_at: datetime | None = None
    alarm_at: datetime | None = None
    clocks: tuple[ClockView, ...] = ()
    promised_respond_by: datetime | None = None
    promised_resolve_by: datetime | None = None
    links: tuple[TicketLink, ...] = ()

    def set(self, action: str, name: str, value: object) -> list[Change]:
        """Sets one field, returning the change made (none if the value is the same)."""
        before = getattr(self, name)
        if before == value:
            return []
        setattr(self, name, value)
        return [Change(action, name, _text(before), _text(value))]

    def is_worked_by(self, login: str) -> bool:
        """True when login is the assignee or a co-assignee."""
        return login == self.assignee or login in self.co_assignees


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """Where a ticket stands in queue order.

    Stop-trade first, then the nearest deadline (tickets no clock runs for last),
    then priority, then age.
    """

    stop_trade: bool
    due_at: datetime
    priority: Priority
    created_at: datetime
    id: int

    @classmethod
    def of(cls, ticket: Ticket) -> "QueuePosition":
        due_at = ticket.due_at or FAR_FUTURE
        return cls(ticket.stop_trade, due_at, ticket.priority, ticket.created_at, ticket.id)


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """Which tickets to list, in queue order, starting after a position.

    Attributes:
        statuses: only these statuses; empty means all.
        limit: at most this many tickets.
    """

    statuses: tuple[str, ...] = ()
    assignee: str | None = None
    group: str | None = None
    store: str | None = None
    category: str | None = None
    priority: Priority | None = None
    stop_trade_only: bool = False
    after: QueuePosition | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """What a caller asks for when filing a ticket; None takes the category's default.

    Attributes:
        request_id: client-chosen; a retried create with it returns the same ticket.
        store: empty for a requester's own store.
        requester: for staff and integrations filing on behalf of a store user.
        stop_trade: the store cannot sell, whatever the category says (a partner's offer).
    """

    category: str
    title: str
    description: str = ""
    store: str = ""
    request_id: str = ""
    ticket_type: TicketType | None = None
    impact: Level | None = None
    urgency: Level | None = None
    requester: str = ""
    stop_trade: bool = False


@dataclass(frozen=True, slots=True)
class TicketPatch:
    """Fields to change on a ticket; None leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    category: str | None = None
    ticket_type: TicketType | None = None
    impact: Level | None = None
    urgency: Level | None = None
    priority: Priority | None = None
