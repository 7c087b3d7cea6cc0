"""Who may do what: the roles of a node and the actor behind every call."""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A user's role on this node."""

    REQUESTER = "requester"
    """Store staff: files and follows tickets of their own store only."""
    AGENT = "agent"
    """An engineer working queues."""
    SUPERVISOR = "supervisor"
    """An agent who also sets priorities and steers other people's work."""
    ADMIN = "admin"
    """Runs the node: users, catalogue, reopening closed tickets."""
    SYSTEM = "system"
    """An integration: POS, monitoring, the node's own timers."""


STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
"""Roles that work tickets rather than file them."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller of a use case.

    Attributes:
        login: the user's unique login.
        role: what the user may do.
        store: for requesters, the store they belong to; None for others.
    """

    login: str
    role: Role
    store: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


SYSTEM_ACTOR = Actor(login="system", role=Role.SYSTEM)
"""The node itself, for what its timers do (closing confirmed tickets, escalating)."""
