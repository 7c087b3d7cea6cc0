"""SLA clocks: how much business time a ticket has used of each target, and when it runs out.

A ticket's SLA state is a fold over its SLA events, which the service layer reads
off the ticket's history: created, status changed, a public reply by an engineer,
and the policy changed. `advance` applies one event; `derive` folds a whole
history, so the state stored beside a ticket and the state re-derived from its
history are the same function of the same events. `filed` builds a new ticket's
state directly, equal to the fold of its first events.

Each policy target runs as a `Clock`:
- first response: from creation until the first public reply by an engineer (or
  the resolution, when none came before);
- resolution: from the start of a cycle until the ticket is resolved (or closed);
- next update: after each public reply, until the next one. It starts only once
  the first response is given, so it never pre-empts the first-response clock.

A clock counts business seconds of its policy's calendar while it runs and
stands still while the ticket's status pauses it (which statuses pause which
timers is configuration: waiting on the requester pauses, waiting on a partner
does not, since the store still waits). Time spent paused is counted too, for
reports. A reopen (out of resolved or closed) starts a new cycle with a fresh
resolution clock; the clocks of earlier cycles keep their verdicts. A policy
change carries the elapsed and paused business time over to the new targets,
so changing the SLA neither forgives nor forgets time.

A clock is breached when its elapsed time exceeds its target. Its alarms fire
at fractions of the target (the policy's warnings, then the breach at 100 %),
each once, and never while the clock is paused.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from node.domain.calendar import Calendar, epoch_us, instant
from node.domain.status import FINAL_KINDS, StatusKind

REPLIED = "replied"
"""The history action of a public reply by an engineer."""
POLICY_FIELD = "sla_policy"
"""The history field of the SLA policy governing a ticket."""


class Timer(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_UPDATE = "next_update"
    RESOLUTION = "resolution"


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    """Stopped by what it waited for: the reply, the resolution. Late if breached."""
    STOPPED = "stopped"
    """Ended without a verdict: the ticket was cancelled, or its policy withdrawn."""


LIVE = frozenset({ClockState.RUNNING, ClockState.PAUSED})
ALWAYS_HOURS = "24/7"
"""The name of the hours that have no end; every configuration has them."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Targets in business seconds, and the calendar they count on.

    Attributes:
        targets_s: the timers this policy sets, each with its target.
        warnings: fractions of a target at which a warning fires, ascending, below 1.
        hours: the name of the working hours its calendar counts (stop-trade tickets
            count 24/7 whatever this says).
    """

    name: str
    targets_s: Mapping[Timer, float]
    warnings: tuple[float, ...] = (0.75, 0.9)
    hours: str = "business"

    @property
    def levels(self) -> tuple[float, ...]:
        """The alarm levels as fractions of a target: the warnings, then the breach."""
        return (*self.warnings, 1.0)


@dataclass(frozen=True, slots=True)
class Clock:
    """One timer of one cycle, as it stood at `since`.

    Attributes:
        elapsed_s: business seconds counted up to `since`.
        paused_s: business seconds spent paused up to `since`.
        since: when its present state began (for a finished clock: when it ended).
        fired: alarm levels fired so far (see `Policy.levels`).
    """

    timer: Timer
    cycle: int
    policy: str
    target_s: float
    started_at: datetime
    state: ClockState
    since: datetime
    elapsed_s: float = 0.0
    paused_s: float = 0.0
    fired: int = 0

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def elapsed_at(self, calendar: Calendar, now: datetime) -> float:
        """Business seconds used of the target at now."""
        if self.state is ClockState.RUNNING and now > self.since:
            return self.elapsed_s + calendar.between(self.since, now)
        return self.elapsed_s

    def paused_at(self, calendar: Calendar, now: datetime) -> float:
        """Business seconds spent paused at now."""
        if self.state is ClockState.PAUSED and now > self.since:
            return self.paused_s + calendar.between(self.since, now)
        return self.paused_s

    def due_at(self, calendar: Calendar) -> datetime | None:
        """When the target runs out, if the clock runs and has not run out already."""
        return self.schedule(calendar, ())[0]

    def breached_at(self, calendar: Calendar, now: datetime) -> bool:
        return self.elapsed_at(calendar, now) > self.target_s

    def next_alarm(self, calendar: Calendar, levels: Sequence[float]) -> datetime | None:
        """When the next unfired alarm level is reached; None while paused or finished."""
        return self.schedule(calendar, levels)[1]

    def schedule(
        self, calendar: Calendar, levels: Sequence[float]
    ) -> tuple[datetime | None, datetime | None]:
        """(`due_at`, `next_alarm`), looked up together."""
        if self.state is not ClockState.RUNNING:
            return None, None
        due, alarm = schedule_us(
            calendar,
            epoch_us(self.since),
            self.elapsed_s,
            self.target_s,
            fired=self.fired,
            levels=levels,
        )
        return (None if due is None else instant(due)), (None if alarm is None else instant(alarm))

    def advanced(self, calendar: Calendar, at: datetime) -> "Clock":
        """The clock brought forward to at, state unchanged."""
        if not self.live or at <= self.since:
            return self
        counted = calendar.between(self.since, at)
        if self.state is ClockState.RUNNING:
            return replace(self, elapsed_s=self.elapsed_s + counted, since=at)
        return replace(self, paused_s=self.paused_s + counted, since=at)


def schedule_us(
    calendar: Calendar,
    since_us: float,
    elapsed_s: float,
    target_s: float,
    *,
    fired: int,
    levels: Sequence[float],
) -> tuple[float | None, float | None]:
    """When a clock running since since_us runs out, and when it reaches its next unfired
    alarm level (since_us itself for a level passed already), in epoch microseconds.

    Returns:
        (due, alarm): due is None once the target has run out, alarm once all fired.
    """
    wanted = []
    if elapsed_s < target_s:
        wanted.append(target_s - elapsed_s)
    if fired < len(levels):
        wanted.append(max(target_s * levels[fired] - elapsed_s, 0.0))
    found = calendar.adds_us(since_us, wanted)
    due = found[0] if elapsed_s < target_s else None
    alarm = found[-1] if fired < len(levels) else None
    return due, alarm


class EventKind(StrEnum):
    CREATED = "created"
    STATUS = "status"
    REPLY = "reply"
    POLICY = "policy"


@dataclass(frozen=True, slots=True)
class SlaEvent:
    """What moves a ticket's clocks.

    Attributes:
        value: the status entered (CREATED, STATUS) or the policy's name, '' for none (POLICY).
    """

    at: datetime
    kind: EventKind
    value: str = ""


@dataclass(frozen=True, slots=True)
class TicketSla:
    """A ticket's SLA state: where it stands and every clock it has run.

    Attributes:
        policy: the governing policy's name, '' when none applies.
        responded: an engineer has replied publicly (or the ticket was resolved).
        clocks: live ones and finished ones; a next-update clock met in time is
            dropped when the next one starts, so long conversations stay small.
    """

    status: str = ""
    policy: str = ""
    cycle: int = 0
    responded: bool = False
    clocks: tuple[Clock, ...] = ()

    @property
    def live(self) -> list[Clock]:
        return [c for c in self.clocks if c.live]


@dataclass(frozen=True, slots=True)
class Rules:
    """What the fold needs to know about a ticket's world.

    Attributes:
        kind: the workflow kind of a status.
        pauses: the timers each status pauses.
        policies: by name.
        calendar: the calendar a policy's clocks count on, for this ticket.
    """

    kind: Callable[[str], StatusKind]
    pauses: Mapping[str, frozenset[Timer]]
    policies: Mapping[str, Policy]
    calendar: Callable[[Policy], Calendar]

    def policy_of(self, clock: Clock) -> Policy:
        """The clock's policy; one with its name, round the clock and no warnings when the
        configuration no longer has it (its clocks are about to move to the policy chosen
        now, and the time since their last event counts in full, to the store's favour)."""
        found = self.policies.get(clock.policy)
        return found or Policy(clock.policy, {}, warnings=(), hours=ALWAYS_HOURS)

    def calendar_of(self, clock: Clock) -> Calendar:
        return self.calendar(self.policy_of(clock))


def derive(events: Iterable[SlaEvent], rules: Rules) -> TicketSla:
    """The SLA state after a whole history of events, oldest first."""
    state = TicketSla()
    for event in events:
        state = advance(state, event, rules)
    return state


def filed(status: str, policy: Policy | None, at: datetime, rules: Rules) -> TicketSla:
    """The SLA state of a ticket filed at `at` in status under policy (None: none applies).

    It is the state `derive` folds from a new ticket's history, its creation and, under a
    policy, the policy chosen at the same instant, built without the fold: filing tickets
    is the node's busiest path. The clocks come in the order the fold starts them.
    """
    if policy is None:
        return TicketSla(status=status, cycle=1)
    clocks: tuple[Clock, ...] = ()
    if rules.kind(status) not in (StatusKind.RESOLVED, *FINAL_KINDS):
        paused = rules.pauses.get(status, frozenset())
        clocks = tuple(
            Clock(
                timer=timer,
                cycle=1,
                policy=policy.name,
                target_s=policy.targets_s[timer],
                started_at=at,
                state=ClockState.PAUSED if timer in paused else ClockState.RUNNING,
                since=at,
            )
            for timer in (Timer.RESOLUTION, Timer.FIRST_RESPONSE)
            if timer in policy.targets_s
        )
    return TicketSla(status=status, policy=policy.name, cycle=1, clocks=clocks)


def advance(state: TicketSla, event: SlaEvent, rules: Rules) -> TicketSla:
    """The SLA state after one more event (at or after every earlier one)."""
    at = event.at
    if any(c.live and at > c.since for c in state.clocks):
        clocks = [c.advanced(rules.calendar_of(c), at) if c.live else c for c in state.clocks]
        state = replace(state, clocks=tuple(clocks))
    if event.kind is EventKind.CREATED:
        state = replace(state, status=event.value, cycle=1)
        return _start_cycle(state, at, rules)
    if event.kind is EventKind.POLICY:
        return _change_policy(state, event.value, at, rules)
    if event.kind is EventKind.REPLY:
        return _reply(state, at, rules)
    return _enter_status(state, event.value, at, rules)


def _start(state: TicketSla, timer: Timer, at: datetime, rules: Rules) -> TicketSla:
    """Starts timer under the state's policy, if the policy sets it."""
    policy = rules.policies.get(state.policy)
    if policy is None or timer not in policy.targets_s:
        return state
    paused = timer in rules.pauses.get(state.status, frozenset())
    clock = Clock(
        timer=timer,
        cycle=state.cycle,
        policy=policy.name,
        target_s=policy.targets_s[timer],
        started_at=at,
        state=ClockState.PAUSED if paused else ClockState.RUNNING,
        since=at,
    )
    return replace(state, clocks=(*state.clocks, clock))


def _start_cycle(state: TicketSla, at: datetime, rules: Rules) -> TicketSla:
    if not state.responded:
        state = _start(state, Timer.FIRST_RESPONSE, at, rules)
    else:
        state = _start(state, Timer.NEXT_UPDATE, at, rules)
    return _start(state, Timer.RESOLUTION, at, rules)


def _stop(
    state: TicketSla,
    timers: Iterable[Timer],
    to: ClockState,
    at: datetime,
    *,
    keep_met: bool = True,
) -> TicketSla:
    """Ends the live clocks of timers; met clocks not breached are dropped unless keep_met."""
    ending = frozenset(timers)
    if not any(c.live and c.timer in ending for c in state.clocks):
        return state
    clocks: list[Clock] = []
    for clock in state.clocks:
        if not clock.live or clock.timer not in ending:
            clocks.append(clock)
            continue
        ended = replace(clock, state=to, since=at)
        if keep_met or to is not ClockState.MET or ended.elapsed_s > ended.target_s:
            clocks.append(ended)
    return replace(state, clocks=tuple(clocks))


def _reply(state: TicketSla, at: datetime, rules: Rules) -> TicketSla:
    """A public reply: the first response is given, and the next update is due anew."""
    state = _stop(state, [Timer.FIRST_RESPONSE], ClockState.MET, at)
    state = _stop(state, [Timer.NEXT_UPDATE], ClockState.MET, at, keep_met=False)
    state = replace(state, responded=True)
    if state.cycle == 0 or rules.kind(state.status) in (StatusKind.RESOLVED, *FINAL_KINDS):
        return state
    return _start(state, Timer.NEXT_UPDATE, at, rules)


def _enter_status(state: TicketSla, status: str, at: datetime, rules: Rules) -> TicketSla:
    before, after = rules.kind(state.status), rules.kind(status)
    state = replace(state, status=status)
    if after is StatusKind.CANCELLED:
        return _stop(state, Timer, ClockState.STOPPED, at)
    if after in (StatusKind.RESOLVED, StatusKind.CLOSED):
        state = _stop(state, [Timer.FIRST_RESPONSE, Timer.RESOLUTION], ClockState.MET, at)
        state = _stop(state, [Timer.NEXT_UPDATE], ClockState.MET, at, keep_met=False)
        return replace(state, responded=True)
    if before in (StatusKind.RESOLVED, *FINAL_KINDS):
        return _start_cycle(replace(state, cycle=state.cycle + 1), at, rules)
    pausing = rules.pauses.get(status, frozenset())
    clocks = tuple(
        replace(c, state=ClockState.PAUSED if c.timer in pausing else ClockState.RUNNING)
        if c.live
        else c
        for c in state.clocks
    )
    return replace(state, clocks=clocks)


def _change_policy(state: TicketSla, name: str, at: datetime, rules: Rules) -> TicketSla:
    """Moves the live clocks to another policy's targets, carrying their time over.

    Alarm levels the carried time has passed already count as fired: the change
    does not send old news again. Timers the new policy lacks stop; with no policy
    at all every live clock stops and nothing of the old policy's alarms is left.
    """
    policy = rules.policies.get(name)
    state = replace(state, policy=name)
    if policy is None:
        return _stop(state, Timer, ClockState.STOPPED, at)
    state = _stop(state, set(Timer) - set(policy.targets_s), ClockState.STOPPED, at)
    running = {c.timer for c in state.live}
    if running:
        moved = tuple(_moved(c, policy) if c.live else c for c in state.clocks)
        state = replace(state, clocks=moved)
    if state.cycle == 0 or rules.kind(state.status) in (StatusKind.RESOLVED, *FINAL_KINDS):
        return state
    if Timer.RESOLUTION not in running:
        state = _start(state, Timer.RESOLUTION, at, rules)
    missing = Timer.NEXT_UPDATE if state.responded else Timer.FIRST_RESPONSE
    if missing not in running:
        state = _start(state, missing, at, rules)
    return state


def _moved(clock: Clock, policy: Policy) -> Clock:
    target_s = policy.targets_s[clock.timer]
    passed = sum(1 for level in policy.levels if clock.elapsed_s >= target_s * level)
    return replace(clock, policy=policy.name, target_s=target_s, fired=passed)


def events_of(history: Iterable[tuple[datetime, str, str, str]]) -> list[SlaEvent]:
    """The SLA events a ticket's history records, in its order.

    Args:
        history: (at, action, field, value after) of each entry. The history holds
            the SLA events as: the creation's status entry, status changes, public
            replies by engineers (action `replied`) and policy changes (field `sla_policy`).
    """
    events: list[SlaEvent] = []
    for at, action, field_name, after in history:
        if field_name == "status":
            kind = EventKind.CREATED if action == "created" else EventKind.STATUS
            events.append(SlaEvent(at, kind, after))
        elif action == REPLIED:
            events.append(SlaEvent(at, EventKind.REPLY))
        elif field_name == POLICY_FIELD:
            events.append(SlaEvent(at, EventKind.POLICY, after))
    return events


@dataclass(frozen=True, slots=True)
class ClockView:
    """A clock as people read it at one instant.

    Attributes:
        due_at: when the target runs out, while the clock runs and has not run out.
        remaining_s: business seconds left of the target; negative once breached.
        ended_at: when a finished clock stopped.
    """

    timer: Timer
    cycle: int
    policy: str
    state: ClockState
    target_s: float
    elapsed_s: float
    paused_s: float
    started_at: datetime
    due_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def remaining_s(self) -> float:
        return self.target_s - self.elapsed_s

    @property
    def breached(self) -> bool:
        return self.elapsed_s > self.target_s


def view(
    clock: Clock, calendar: Calendar, now: datetime, due_at: datetime | None = None
) -> ClockView:
    """How clock stands at now; due_at when the caller has looked it up already."""
    return ClockView(
        timer=clock.timer,
        cycle=clock.cycle,
        policy=clock.policy,
        state=clock.state,
        target_s=clock.target_s,
        elapsed_s=clock.elapsed_at(calendar, now),
        paused_s=clock.paused_at(calendar, now),
        started_at=clock.started_at,
        due_at=due_at or clock.due_at(calendar),
        ended_at=None if clock.live else clock.since,
    )
