"""Live change notification and a gap-proof cursor over the ticket history.

History ids come from a sequence, but on PostgreSQL transactions commit out of
id order: a reader that has seen id 12 may later find 11 committed. `EventCursor`
remembers the ids it skipped for a short grace period and asks for them again,
so a live client gets every entry exactly once.

`ChangeFeed` wakes watchers in this process as soon as a change commits; other
processes over the same database are caught by the watchers' periodic poll.
"""

import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from node.domain.ticket import HistoryEntry

GAP_GRACE = timedelta(seconds=30)
GAP_MAX = 10_000


class ChangeFeed:
    """Calls every subscriber after a change commits; subscribers must not block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[Callable[[], None]] = set()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Adds listener; returns the function that removes it."""
        with self._lock:
            self._listeners.add(listener)
        return lambda: self._remove(listener)

    def _remove(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def publish(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


class EventCursor:
    """A reader's position in the history, with the ids it skipped and may yet see.

    Args:
        after: the last id already delivered.
    """

    def __init__(self, after: int) -> None:
        self.position = after
        self._gaps: dict[int, datetime] = {}

    def pending(self, now: datetime) -> list[int]:
        """Skipped ids still worth asking for at now."""
        self._gaps = {i: seen for i, seen in self._gaps.items() if now - seen < GAP_GRACE}
        return sorted(self._gaps)

    def advance(self, entries: Iterable[HistoryEntry], now: datetime) -> list[HistoryEntry]:
        """Moves past entries (in id order) and returns those not delivered before."""
        fresh = []
        for entry in entries:
            if entry.id in self._gaps:
                del self._gaps[entry.id]
            elif entry.id <= self.position:
                continue
            else:
                missing = range(self.position + 1, entry.id)
                for skipped in missing[-GAP_MAX:]:
                    self._gaps[skipped] = now
                self.position = entry.id
            fresh.append(entry)
        return fresh
