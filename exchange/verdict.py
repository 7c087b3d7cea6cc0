"""The SLA verdict of a link, a pure function of its signed log, and the log's verification.

Both nodes of a link hold the same log: every event as its sender signed it, each with
the receipt its receiver signed. So each can check the log on its own and compute
from it the same verdict as the other, byte for byte, whichever copy it reads and in
whatever order its rows come.

Verification (`verify`). Every envelope's signature checks against the signer's key of
that id (old keys included), and the signer is the event's sender; each direction's
chain is complete (sequence numbers 1..n, each `prev` the digest of the sender's
previous body); each receipt is signed by the event's receiver and names the event
(link, sender, sequence number, digest of the body bytes). Each failure is reported
by event. An event of ours still waiting for its receipt is no failure.

Instants. An event counts at the instant in its receipt: the receiver signed when it
got the event, and both nodes hold that receipt. The sender's `occurred_at` is only
its claim. Events are read from the offer on (the link begins with it) in the order
of those instants, each sender's in the order of its chain (a clock set back never
reorders a chain), ties broken by sender. Both nodes' clocks stamp the log (each
stamps what it receives), so a skew between them shows in the verdict as it is; and
an event delivered late (its receiver down) counts when it arrived.

The verdict (`verdict`), for the partner that took the hand-off:
- Deadlines. The offer's (the origin's remaining deadlines); the accept lowers them to
  the partner's own, never later; a deadline change sets the ones it names.
- Respond: met by the partner's first event after its accept (a status, a comment, a
  pause, its resolution, or its rejection; the accept itself is its node's automatic
  answer), judged against the respond deadline in force then.
- Resolve: met by the partner's last resolution (one the origin disputed does not
  count), judged against the resolve deadline in force then, extended by every pause
  before it: a pause (from either side, until the next resume) extends the resolve
  deadline by its wall-clock length, since the ticket then waits on the requester.
  Pauses do not extend the respond deadline: a partner's pause is itself an answer.
- Holders: the origin until the accept's receipt, the partner until its resolution,
  the origin after that; a dispute hands the ticket back to the partner, a recall to
  the origin.
Only events whose receipt is in the log count, so both nodes compute the same verdict
once every receipt is back.
"""

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from google.protobuf.message import DecodeError
from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.envelope import Refused, deadlines_of, digest, instant, opened
from exchange.receipts import Verified, proven
from node.domain.partner import LinkState, LoggedEvent, Side

STATE_AFTER = {
    "offer": LinkState.OFFERED,
    "accept": LinkState.ACCEPTED,
    "reject": LinkState.REJECTED,
    "resolved": LinkState.RESOLVED,
    "disputed": LinkState.ACCEPTED,
    "confirmed": LinkState.CLOSED,
    "recall": LinkState.RECALLED,
}
"""The link's state after an event of each kind that changes it."""
HANDS_TO = {
    "accept": Side.PARTNER,
    "disputed": Side.PARTNER,
    "resolved": Side.ORIGIN,
    "recall": Side.ORIGIN,
}
"""Which side of the link holds the ticket after an event of each kind that hands it over."""
ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Problem:
    """A failure of verification.

    Attributes:
        event: the event, as "sender #seq (kind)", or "row N" when it cannot be read.
        reason: what failed, naming the field and the rule.
    """

    event: str
    reason: str

    def __str__(self) -> str:
        return f"{self.event}: {self.reason}"


def verify(log: Sequence[LoggedEvent], keys: Mapping[str, tuple[str, bytes]]) -> list[Problem]:
    """Checks the signatures, chains and receipts of one link's log.

    Args:
        log: the link's events of both directions, in any order.
        keys: every key id the node knows → (node id, raw Ed25519 public key).

    Returns:
        Every failure found, by event; none when the log verifies.
    """
    problems: list[Problem] = []
    chains: dict[str, dict[int, tuple[pb.Body, bytes]]] = {}
    pairs: set[tuple[str, str]] = set()
    verified: Verified = {}
    for row in log:
        try:
            body, body_bytes = _checked(row, keys, verified)
        except _Failed as failure:
            problems.append(Problem(failure.event, failure.reason))
            continue
        chain = chains.setdefault(body.sender, {})
        if body.seq in chain:
            problems.append(Problem(_name(body), "seq: logged twice"))
        chain[body.seq] = body, body_bytes
        pairs.add((body.sender, body.destination))
    if len({frozenset(pair) for pair in pairs}) > 1:
        nodes = ", ".join(sorted({node for pair in pairs for node in pair}))
        problems.append(Problem("log", f"sender, destination: more than two nodes ({nodes})"))
    for sender in sorted(chains):
        problems += _chain_problems(sender, chains[sender])
    return problems


class _Failed(Exception):
    def __init__(self, event: str, reason: str) -> None:
        super().__init__(reason)
        self.event, self.reason = event, reason


def _checked(
    row: LoggedEvent, keys: Mapping[str, tuple[str, bytes]], verified: Verified
) -> tuple[pb.Body, bytes]:
    """The body of a logged event and its bytes, once its signature and receipt check (the
    receipts' signatures verified once each, in verified)."""
    where = f"row {row.id}"
    try:
        envelope = pb.Envelope.FromString(row.envelope)
        signer, body = opened(envelope, keys.get, pb.Body)
    except DecodeError:
        raise _Failed(where, "envelope: not a valid message") from None
    except Refused as refusal:
        raise _Failed(where, str(refusal)) from None
    where = _name(body)
    if body.sender != signer:
        raise _Failed(where, f"key_id: a key of {signer}, not of the sender {body.sender}")
    if body.link != row.link:
        raise _Failed(where, f"link: {body.link!r}, logged on link {row.link!r}")
    if body.destination == body.sender:
        raise _Failed(where, "destination: the sender itself")
    if row.receipt is None:
        if not row.pending:
            raise _Failed(where, "receipt: missing")
        return body, envelope.body
    try:
        receiver, _at, named = proven(pb.Receipt.FromString(row.receipt), keys.get, verified)
    except DecodeError:
        raise _Failed(where, "receipt: not a valid message") from None
    except Refused as refusal:
        raise _Failed(where, f"receipt {refusal}") from None
    if receiver != body.destination:
        raise _Failed(where, f"receipt: signed by {receiver}, not the receiver {body.destination}")
    if (named.link, named.sender, named.seq, named.digest) != (
        body.link,
        body.sender,
        body.seq,
        digest(envelope.body),
    ):
        raise _Failed(where, "receipt: names another event")
    return body, envelope.body


def _chain_problems(sender: str, chain: dict[int, tuple[pb.Body, bytes]]) -> list[Problem]:
    """Where one sender's events on a link are not the chain 1..n, each naming the last."""
    problems = []
    for seq in range(1, max(chain) + 1):
        if seq not in chain:
            problems.append(Problem(f"{sender} #{seq}", "seq: missing from the chain"))
            continue
        body = chain[seq][0]
        previous = chain.get(seq - 1)
        expected = b"" if seq == 1 else None if previous is None else digest(previous[1])
        if expected is not None and body.prev != expected:
            problems.append(Problem(_name(body), f"prev: not the digest of event {seq - 1}"))
    return problems


def _name(body: pb.Body) -> str:
    return f"{body.sender} #{body.seq} ({body.WhichOneof('event')})"


# -- the verdict ------------------------------------------------------------------------


class Outcome(StrEnum):
    MET = "met"
    BREACHED = "breached"
    OPEN = "open"
    """Not done (yet): the link is still open, or ended without it."""
    NO_DEADLINE = "no deadline"


@dataclass(frozen=True, slots=True)
class Judgement:
    """One deadline judged.

    Attributes:
        deadline: the deadline in force, pauses added (resolve); None when none was set.
        done_at: when the partner responded or resolved; None when it has not.
    """

    deadline: datetime | None
    done_at: datetime | None

    @property
    def outcome(self) -> Outcome:
        if self.deadline is None:
            return Outcome.NO_DEADLINE
        if self.done_at is None:
            return Outcome.OPEN
        return Outcome.MET if self.done_at <= self.deadline else Outcome.BREACHED

    @property
    def late_by(self) -> timedelta | None:
        """How late it was done (negative: how early); None unless met or breached."""
        if self.deadline is None or self.done_at is None:
            return None
        return self.done_at - self.deadline


@dataclass(frozen=True, slots=True)
class Pause:
    """The ticket waiting on the requester: from a pause until the next resume.

    Attributes:
        end: None while it lasts.
    """

    by: str
    reason: str
    start: datetime
    end: datetime | None

    def length_until(self, at: datetime | None) -> timedelta:
        """How much of it lay before at; at None: all of it once ended, nothing while it
        lasts. Never negative (a resume stamped before its pause by a skewed clock)."""
        end = self.end if at is None else at if self.end is None else min(self.end, at)
        return ZERO if end is None else max(end - self.start, ZERO)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The deadlines agreed from an event on: the offer, the accept, a deadline change."""

    at: datetime
    by: str
    kind: str
    respond_by: datetime | None
    resolve_by: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class Holding:
    """Who held the ticket, from when (until the next holding, or now)."""

    node: str
    since: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """The SLA of one hand-off as its signed log shows it.

    Attributes:
        origin, partner: the node that handed the ticket, and the one that took it.
        state: the link's state after its last event.
        paused: how much the pauses extended the resolve deadline.
    """

    link: str
    origin: str
    partner: str
    state: LinkState
    respond: Judgement
    resolve: Judgement
    paused: timedelta
    pauses: tuple[Pause, ...]
    deadlines: tuple[Deadlines, ...]
    holders: tuple[Holding, ...]


@dataclass(frozen=True, slots=True)
class _Event:
    at: datetime
    body: pb.Body

    @property
    def kind(self) -> str:
        return str(self.body.WhichOneof("event"))


def _events(log: Iterable[LoggedEvent]) -> list[_Event]:
    """The received events of a log (receipt in it), in the order the verdict reads them:
    by receipt instant, each sender's in the order of its chain, ties broken by sender."""
    chains: dict[str, list[tuple[int, _Event]]] = {}
    for row in log:
        if row.receipt is None:
            continue
        body = pb.Body.FromString(pb.Envelope.FromString(row.envelope).body)
        signed = pb.Receipt.FromString(row.receipt).signed
        received_at = pb.ReceiptBody.FromString(signed.body).received_at
        chains.setdefault(body.sender, []).append((body.seq, _Event(instant(received_at), body)))
    ordered = [[event for _, event in sorted(chains[s], key=_seq)] for s in sorted(chains)]
    return list(heapq.merge(*ordered, key=lambda event: (event.at, event.body.sender)))


def _seq(entry: tuple[int, _Event]) -> int:
    return entry[0]


def verdict(log: Iterable[LoggedEvent]) -> Verdict | None:
    """The verdict of a link's log (see the module's docstring); None until its offer has
    been received. Read a log `verify` passed: unreadable bytes raise DecodeError."""
    read = _events(log)
    offer = next((e for e in read if e.kind == "offer" and e.body.seq == 1), None)
    if offer is None:
        return None
    fold = _Fold(offer)
    for event in read:
        if event is not offer:
            fold.take(event)
    return fold.verdict()


class _Fold:
    """The verdict's reading of a log, one event after the other from the offer on."""

    def __init__(self, offer: _Event) -> None:
        self.link = offer.body.link
        self.origin, self.partner = offer.body.sender, offer.body.destination
        self.respond_by, self.resolve_by = deadlines_of(offer.body.offer.deadlines)
        self.state = LinkState.OFFERED
        self.agreed = [self._agreed(offer, offer.body.offer.note)]
        self.holders = [Holding(self.origin, offer.at)]
        self.pauses: list[Pause] = []
        self.respond: Judgement | None = None
        self.resolved: tuple[datetime, datetime | None] | None = None
        """When the partner resolved, and the resolve deadline in force then."""

    def _agreed(self, event: _Event, note: str) -> Deadlines:
        sender, kind = event.body.sender, event.kind
        return Deadlines(event.at, sender, kind, self.respond_by, self.resolve_by, note)

    def take(self, event: _Event) -> None:
        body, kind = event.body, event.kind
        self.state = STATE_AFTER.get(kind, self.state)
        if body.sender == self.partner and kind != "accept" and self.respond is None:
            self.respond = Judgement(self.respond_by, event.at)
        if kind == "accept":
            respond_by, resolve_by = deadlines_of(body.accept.deadlines)
            self.respond_by = earliest(self.respond_by, respond_by)
            self.resolve_by = earliest(self.resolve_by, resolve_by)
            self.agreed.append(self._agreed(event, ""))
        elif kind == "deadline":
            respond_by, resolve_by = deadlines_of(body.deadline.deadlines)
            self.respond_by = respond_by or self.respond_by
            self.resolve_by = resolve_by or self.resolve_by
            self.agreed.append(self._agreed(event, body.deadline.note))
        elif kind == "pause" and (not self.pauses or self.pauses[-1].end is not None):
            self.pauses.append(Pause(body.sender, body.pause.reason, event.at, None))
        elif kind == "resume" and self.pauses and self.pauses[-1].end is None:
            self.pauses[-1] = replace(self.pauses[-1], end=event.at)
        elif kind == "resolved":
            self.resolved = event.at, self.resolve_by
        elif kind == "disputed":
            self.resolved = None
        if kind in HANDS_TO:
            holder = self.partner if HANDS_TO[kind] is Side.PARTNER else self.origin
            if self.holders[-1].node != holder:
                self.holders.append(Holding(holder, event.at))

    def verdict(self) -> Verdict:
        done_at, deadline = self.resolved or (None, self.resolve_by)
        paused = sum((pause.length_until(done_at) for pause in self.pauses), ZERO)
        return Verdict(
            link=self.link,
            origin=self.origin,
            partner=self.partner,
            state=self.state,
            respond=self.respond or Judgement(self.respond_by, None),
            resolve=Judgement(None if deadline is None else deadline + paused, done_at),
            paused=paused,
            pauses=tuple(self.pauses),
            deadlines=tuple(self.agreed),
            holders=tuple(self.holders),
        )


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two deadlines, either of which may be unset."""
    return b if a is None else a if b is None else min(a, b)


# -- how people read it -----------------------------------------------------------------


def describe(verdict: Verdict) -> list[str]:
    """The verdict as lines of text; the same on every node for the same verdict."""
    lines = [
        f"origin {verdict.origin}, partner {verdict.partner}: {verdict.state}",
        "respond " + _judged(verdict.respond),
        "resolve " + _judged(verdict.resolve, verdict.paused),
    ]
    for pause in verdict.pauses:
        end = _at(pause.end) if pause.end else "still paused"
        length = f" ({_span(pause.end - pause.start)})" if pause.end else ""
        reason = f": {pause.reason}" if pause.reason else ""
        lines.append(f"paused {_at(pause.start)} - {end}{length} by {pause.by}{reason}")
    for agreed in verdict.deadlines:
        note = f" ({agreed.note})" if agreed.note else ""
        lines.append(
            f"deadlines from {_at(agreed.at)}, {agreed.kind} by {agreed.by}: "
            f"respond by {_at(agreed.respond_by)}, resolve by {_at(agreed.resolve_by)}{note}"
        )
    lines += [f"held by {holding.node} from {_at(holding.since)}" for holding in verdict.holders]
    return lines


def _judged(judgement: Judgement, paused: timedelta = ZERO) -> str:
    extended = f" (+{_span(paused)} paused)" if paused else ""
    deadline = f"by {_at(judgement.deadline)}{extended}"
    outcome, late_by = judgement.outcome, judgement.late_by
    if late_by is None:
        done = f", done {_at(judgement.done_at)}" if judgement.done_at else ""
        return f"{deadline}: {outcome}{done}"
    how = f"by {_span(late_by)}" if outcome is Outcome.BREACHED else f"{_span(-late_by)} early"
    return f"{deadline}: {outcome} {how}, done {_at(judgement.done_at)}"


def _at(instant: datetime | None) -> str:
    return "-" if instant is None else f"{instant:%Y-%m-%d %H:%M:%S}Z"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
