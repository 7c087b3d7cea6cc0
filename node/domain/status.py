"""The kinds of status every workflow is built from; the rules of the field judge by kind."""

from enum import StrEnum


class StatusKind(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


FINAL_KINDS = frozenset({StatusKind.CLOSED, StatusKind.CANCELLED})
