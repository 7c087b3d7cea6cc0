"""The signatures of a call's events verified ahead of applying them, on another thread.

Verifying an Ed25519 signature costs about as much as applying a status event, and the
library lets go of the interpreter while it verifies. So a node receiving many events at
once verifies their signatures on a thread of its own, on another core, while it applies
the events before them in order. What is not verified ahead (a key announced earlier in
the same call, a signature that fails) is verified again as its event is applied, so
refusals and their reasons are those of the event's turn.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future

from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.envelope import Refused, opened

AHEAD_MIN = 16
"""Events a call must carry to be verified ahead; fewer are verified as they are applied
(a hand-off's single event would only wait for the other thread)."""
GROUP = 25
"""Events verified per task of the verifying thread."""

Opened = tuple[str, pb.Body]
KeyLookup = Callable[[str], tuple[str, bytes] | None]


class Ahead:
    """Events of one call, verified ahead.

    Args:
        executor: the verifying thread.
        envelopes: the events to verify ahead, in order (none: all are verified as applied).
        key: looks up the keys known when the call came in (no transaction of its own).
    """

    def __init__(
        self, executor: Executor, envelopes: Sequence[pb.Envelope], key: KeyLookup
    ) -> None:
        self._found: dict[int, tuple[Future[list[Opened | None]], int]] = {}
        for start in range(0, len(envelopes), GROUP):
            group = envelopes[start : start + GROUP]
            future = executor.submit(_open_all, group, key)
            for n, envelope in enumerate(group):
                self._found[id(envelope)] = (future, n)

    def opened(self, envelope: pb.Envelope) -> Opened | None:
        """The signer and body of envelope if it verified ahead, once it has; None if it
        is to be verified now."""
        ahead = self._found.get(id(envelope))
        if ahead is None:
            return None
        future, n = ahead
        return future.result()[n]

    def cancel(self) -> None:
        """Drops what is not verified yet (the call ended early)."""
        for future, _ in self._found.values():
            future.cancel()


def _open_all(group: Sequence[pb.Envelope], key: KeyLookup) -> list[Opened | None]:
    found: list[Opened | None] = []
    for envelope in group:
        try:
            found.append(opened(envelope, key, pb.Body))
        except Refused:
            found.append(None)
    return found
