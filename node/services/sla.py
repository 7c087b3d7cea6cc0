"""The SLA of tickets: policies chosen and clocks moved as tickets change, alarms fired.

`TicketService` calls `start` when a ticket is filed and `follow` with the
changes of every later use case, in the same transaction. `start` chooses the
policy and builds the new ticket's clocks (`filed`, the state its first history
entries derive); `follow` turns the changes into SLA events (a status entered, a
public reply by an engineer, the policy chosen anew when priority, category, type
or store change) and advances the ticket's clocks. Both store on the ticket its
nearest deadline (`due_at`, the queue order; never later than the deadlines
promised to the client node that handed the ticket to this one, see `promise`) and
its next alarm (`alarm_at`).
Finished clocks go to `sla_results` in business minutes.

Alarms are fired by `TicketService.fire_alarms` at their instant: each alarm
level of a running clock fires once (its count is stored with the clock, in the
transaction that acts on it), a paused clock never fires, and alarms missed
while the node was down fire on its first round after the restart. Several
processes share the work through `Tx.alarmed`, which skips tickets another
transaction holds.
"""

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from node.domain.calendar import NO_HOLIDAYS, Calendar, Holidays
from node.domain.roles import STAFF
from node.domain.sla import (
    POLICY_FIELD,
    REPLIED,
    Clock,
    ClockState,
    ClockView,
    EventKind,
    Policy,
    Rules,
    SlaEvent,
    TicketSla,
    Timer,
    advance,
    derive,
    events_of,
    filed,
    view,
)
from node.domain.slapolicy import ALWAYS, Action, Shift, SlaConfig, Subject
from node.domain.status import FINAL_KINDS
from node.domain.ticket import Change, Priority, Store, Ticket, TicketType
from node.domain.workflow import Workflow
from node.services import deadlines
from node.services.deadlines import Floats
from node.store.slastate import live_clocks
from node.store.tx import Kind, SlaBatch, Tx

RUNNING = ClockState.RUNNING.value


@dataclass(frozen=True, slots=True)
class _Chosen:
    """The policy tickets of one kind fall under, its targets by timer name, and the group
    of clocks (one calendar, one policy's alarm levels) their deadlines are computed in."""

    policy: Policy
    targets: Mapping[str, float]
    group: int


class Rescheduled(NamedTuple):
    """What `SlaService.reschedule` found of a batch of tickets.

    Attributes:
        ids, due_us, alarm_us: the tickets whose deadline or next alarm moved, with the new
            ones (epoch microseconds, NaN for none).
        others: ids of the tickets whose policy or targets change, which need `refresh`.
    """

    ids: list[int]
    due_us: Floats
    alarm_us: Floats
    others: list[int]


def _keeps(policy: str, found: _Chosen | None, clocks: list[list[Any]]) -> bool:
    """Whether a ticket under policy, with these live clocks, stays as it is when tickets of
    its kind fall under found: the same policy, and every clock under its present target."""
    if found is None:
        return not policy and not clocks
    name, targets = found.policy.name, found.targets
    if policy != name:
        return False
    for timer, _, clock_policy, target, _, _, _, _, _, _ in clocks:
        if clock_policy != name or target != targets.get(timer):
            return False
    return True


def _differ(a: Floats, b: Floats) -> NDArray[np.bool_]:
    """Where two arrays of instants differ, NaN (none) equal to NaN."""
    same: NDArray[np.bool_] = (a == b) | (np.isnan(a) & np.isnan(b))
    return ~same


def _promised(respond_by: datetime | None, resolve_by: datetime | None) -> str:
    """The promise as the ticket's history shows it."""
    parts = [
        f"{name} {at.isoformat(timespec='minutes')}"
        for name, at in (("respond by", respond_by), ("resolve by", resolve_by))
        if at is not None
    ]
    return ", ".join(parts)


SUBJECT_FIELDS = frozenset({"priority", "category", "ticket_type", "stop_trade", "store"})
"""Fields whose change may choose another policy."""
SLA_ACTION = "sla"
PROMISED_FIELD = "promised"
"""The history field of the deadlines promised to a client node."""


class SlaService:
    """Policies and clocks of one node's tickets.

    Args:
        config: policies, hours, pauses and the escalation map.
        workflow: the node's workflow, whose status kinds end and restart clocks.
        holidays: days off and transferred working days per store region.
    """

    def __init__(
        self,
        config: SlaConfig,
        workflow: Workflow,
        holidays: Mapping[str, Holidays] | None = None,
    ) -> None:
        self.config = config
        self.workflow = workflow
        self.holidays = dict(holidays or {})
        self.policies = config.policies
        self._calendars: dict[tuple[str, str, str], Calendar] = {}
        self._lock = threading.Lock()

    # -- calendars ---------------------------------------------------------------

    def calendar(self, hours: str, timezone: str, region: str) -> Calendar:
        """The calendar of named hours in a zone with a region's holidays, compiled once."""
        key = (hours, timezone, region)
        found = self._calendars.get(key)
        if found is None:
            with self._lock:
                found = self._calendars.get(key)
                if found is None:
                    holidays = self.holidays.get(region, NO_HOLIDAYS)
                    found = Calendar(self.config.hours[hours], timezone, holidays)
                    self._calendars[key] = found
        return found

    def rules(self, ticket: Ticket, store: Store) -> Rules:
        """How ticket's clocks count: its store's zone and holidays; 24/7 when stop-trade."""

        return Rules(
            kind=self.workflow.kind,
            pauses=self.config.pauses,
            policies=self.policies,
            calendar=lambda policy: self._counting(policy, store, ticket.stop_trade),
        )

    def _counting(self, policy: Policy, store: Store, stop_trade: bool) -> Calendar:
        """The calendar policy's clocks count on in store: 24/7 when the ticket stops trade."""
        hours = ALWAYS if stop_trade else policy.hours
        return self.calendar(hours, store.timezone, store.region)

    # -- following tickets ---------------------------------------------------------

    def start(self, ticket: Ticket, store: Store, now: datetime) -> list[Change]:
        """Starts a new ticket's clocks under the policy its fields choose.

        Returns:
            The policy chosen, for the ticket's history.
        """
        rules = self.rules(ticket, store)
        policy = self.config.select(self.subject(ticket, store))
        self._keep(ticket, filed(ticket.status, policy, now, rules), rules, now)
        return [] if policy is None else [Change(SLA_ACTION, POLICY_FIELD, "", policy.name)]

    def follow(
        self, tx: Tx, ticket: Ticket, changes: Iterable[Change], now: datetime
    ) -> list[Change]:
        """Moves ticket's clocks by the changes just made to it.

        Returns:
            The SLA's own changes (a policy chosen anew), for the ticket's history.
        """
        events: list[SlaEvent] = []
        reselect = False
        for change in changes:
            if change.field == "status":
                events.append(SlaEvent(now, EventKind.STATUS, change.after))
            elif change.action == REPLIED:
                events.append(SlaEvent(now, EventKind.REPLY))
            reselect = reselect or change.field in SUBJECT_FIELDS
        if not events and not reselect:
            return []
        store = tx.store(ticket.store)
        assert store is not None, "a ticket's store is never deleted"
        finished: list[ClockView] = []
        history = self._apply(ticket, store, events, now, finished, reselect=reselect)
        tx.add_sla_results(ticket.id, finished)
        return history

    def refresh(
        self, ticket: Ticket, store: Store, now: datetime, finished: list[ClockView]
    ) -> list[Change]:
        """Puts ticket under the present configuration: the policy its fields choose now
        (none when its policy was deactivated), that policy's present targets, and its
        deadline and next alarm on the present calendars.

        Returns:
            The policy change, if any, for the ticket's history.
        """
        return self._apply(ticket, store, [], now, finished, reselect=True)

    def reschedule(self, batch: SlaBatch, stores: Mapping[str, Store]) -> Rescheduled:
        """Deadlines and next alarms of tickets on the present calendars, straight from
        their stored state, for a pass over many tickets.

        A ticket whose policy and targets stand as they are keeps its clocks: its running
        clocks' fields are collected, their deadlines and alarms computed together (see
        `node.services.deadlines`) and compared with the stored ones, so that only those
        that moved are written. The clocks of one kind of ticket count on one calendar with
        one policy's alarm levels: their group. Tickets promised deadlines to a client node
        go the way of `refresh` (they are few, and the promise caps their deadline).
        """
        chosen: dict[Kind, _Chosen | None] = {}
        groups: dict[tuple[Calendar, tuple[float, ...]], int] = {}
        kept: list[int] = []  # positions in the batch of the tickets that keep their clocks
        group: list[int] = []  # the group of each kept ticket's clocks
        others: list[int] = []
        owner: list[int] = []  # per running clock: its ticket's index in kept
        since_us: list[float] = []
        elapsed_s: list[float] = []
        target_s: list[float] = []
        fired: list[int] = []
        for n, (kind, policy, state, promised) in enumerate(
            zip(batch.kinds, batch.policies, batch.states, batch.promised, strict=True)
        ):
            if kind not in chosen:
                chosen[kind] = self._chosen(kind, stores[kind[3]], groups)
            found = chosen[kind]
            clocks = live_clocks(state)
            if promised or not _keeps(policy, found, clocks):
                others.append(batch.ids[n])
                continue
            index = len(kept)
            for _, _, _, target, _, clock_state, since, elapsed, _, count in clocks:
                if clock_state == RUNNING:
                    owner.append(index)
                    since_us.append(since)
                    elapsed_s.append(elapsed)
                    target_s.append(target)
                    fired.append(count)
            kept.append(n)
            group.append(found.group if found else -1)
        due, alarm = deadlines.earliest_us(
            list(groups),
            group,
            owner=owner,
            since_us=since_us,
            elapsed_s=elapsed_s,
            target_s=target_s,
            fired=fired,
        )
        moved = _differ(due, batch.due_us[kept]) | _differ(alarm, batch.alarm_us[kept])
        ids = [batch.ids[kept[n]] for n in np.flatnonzero(moved).tolist()]
        return Rescheduled(ids, due[moved], alarm[moved], others)

    def _chosen(
        self, kind: Kind, store: Store, groups: dict[tuple[Calendar, tuple[float, ...]], int]
    ) -> "_Chosen | None":
        """The policy tickets of kind fall under, its targets and their group of clocks,
        which is added to groups when it is new."""
        ticket_type, category, priority, _, stop_trade = kind
        subject = Subject(
            ticket_type=TicketType(ticket_type),
            category=category,
            priority=Priority(priority),
            store=store.code,
            region=store.region,
            stop_trade=bool(stop_trade),
        )
        policy = self.config.select(subject)
        if policy is None:
            return None
        calendar = self._counting(policy, store, subject.stop_trade)
        group = groups.setdefault((calendar, policy.levels), len(groups))
        targets = {timer.value: target for timer, target in policy.targets_s.items()}
        return _Chosen(policy, targets, group)

    def _apply(
        self,
        ticket: Ticket,
        store: Store,
        events: list[SlaEvent],
        now: datetime,
        finished: list[ClockView],
        *,
        reselect: bool,
    ) -> list[Change]:
        rules = self.rules(ticket, store)
        state = ticket.sla
        history: list[Change] = []
        for event in events:
            state = advance(state, event, rules)
        if reselect and self.workflow.kind(ticket.status) not in FINAL_KINDS:
            policy = self.config.select(self.subject(ticket, store))
            name = policy.name if policy else ""
            if name != state.policy:
                history.append(Change(SLA_ACTION, POLICY_FIELD, state.policy, name))
                state = advance(state, SlaEvent(now, EventKind.POLICY, name), rules)
            elif policy and any(c.target_s != policy.targets_s.get(c.timer) for c in state.live):
                state = advance(state, SlaEvent(now, EventKind.POLICY, name), rules)
        finished += [view(c, rules.calendar_of(c), now) for c in state.clocks if not c.live]
        live = replace(state, clocks=tuple(c for c in state.clocks if c.live))
        self._keep(ticket, live, rules, now)
        return history

    def _keep(self, ticket: Ticket, state: TicketSla, rules: Rules, now: datetime) -> None:
        """Stores state on ticket with the deadline and alarm it leads to, and shows its
        clocks as they stand at now."""
        ticket.sla = state
        views, alarms = [], []
        for clock in state.clocks:
            policy = rules.policy_of(clock)
            calendar = rules.calendar(policy)
            due, alarm = clock.schedule(calendar, policy.levels)
            views.append(view(clock, calendar, now, due))
            if alarm is not None:
                alarms.append(alarm)
        ticket.clocks = tuple(views)
        promised = {
            Timer.FIRST_RESPONSE: ticket.promised_respond_by,
            Timer.RESOLUTION: ticket.promised_resolve_by,
        }
        dues = [
            due
            for v in views
            if v.state is ClockState.RUNNING
            for due in (v.due_at, promised.get(v.timer))
            if due is not None
        ]
        ticket.due_at = min(dues, default=None)
        ticket.alarm_at = min(alarms, default=None)

    def promise(
        self,
        ticket: Ticket,
        store: Store,
        respond_by: datetime | None,
        resolve_by: datetime | None,
        now: datetime,
    ) -> list[Change]:
        """Records the deadlines agreed with the client node that handed ticket to us, and
        makes ticket due no later: each running clock's deadline is capped by the promise
        for its timer (a paused clock has none: the client's deadline moves by the pause).

        Returns:
            The change, for the ticket's history.
        """
        before = _promised(ticket.promised_respond_by, ticket.promised_resolve_by)
        ticket.promised_respond_by, ticket.promised_resolve_by = respond_by, resolve_by
        self._keep(ticket, ticket.sla, self.rules(ticket, store), now)
        after = _promised(respond_by, resolve_by)
        return [] if after == before else [Change(SLA_ACTION, PROMISED_FIELD, before, after)]

    def subject(self, ticket: Ticket, store: Store) -> Subject:
        return Subject(
            ticket_type=ticket.ticket_type,
            category=ticket.category,
            priority=ticket.priority,
            store=ticket.store,
            region=store.region,
            stop_trade=ticket.stop_trade,
        )

    # -- reading -------------------------------------------------------------------

    def show(self, tx: Tx, tickets: Iterable[Ticket], now: datetime, *, finished: bool) -> None:
        """Sets each ticket's clocks as they stand at now; finished ones too if asked."""
        stores: dict[str, Store | None] = {}
        for ticket in tickets:
            if ticket.store not in stores:
                stores[ticket.store] = tx.store(ticket.store)
            store = stores[ticket.store]
            assert store is not None
            self.show_live(ticket, store, now)
            if finished:
                ticket.clocks = (*tx.sla_results(ticket.id), *ticket.clocks)

    def show_live(self, ticket: Ticket, store: Store, now: datetime) -> None:
        """Sets ticket's clocks to its live ones as they stand at now."""
        rules = self.rules(ticket, store)
        ticket.clocks = tuple(view(c, rules.calendar_of(c), now) for c in ticket.sla.clocks)

    def derive(self, tx: Tx, ticket: Ticket) -> TicketSla:
        """The ticket's SLA state re-derived from its history alone."""
        store = tx.store(ticket.store)
        assert store is not None
        return derive(events_of(tx.sla_history(ticket.id)), self.rules(ticket, store))

    # -- escalation ----------------------------------------------------------------

    def escalate(self, tx: Tx, ticket: Ticket, now: datetime) -> list[Change]:
        """Fires every alarm of ticket due at now, once each, and acts on the escalation map.

        Returns:
            The changes made (each alarm, and what its actions changed), for the history.
        """
        store = tx.store(ticket.store)
        assert store is not None
        rules = self.rules(ticket, store)
        changes: list[Change] = []
        clocks = list(ticket.sla.clocks)
        while True:
            due = [
                (alarm, index)
                for index, clock in enumerate(clocks)
                if (alarm := self._next_alarm(clock, rules)) is not None and alarm <= now
            ]
            if not due:
                break
            index = min(due)[1]  # the alarm that fell due first, as a node that ran would
            clock = clocks[index]
            level = rules.policy_of(clock).levels[clock.fired]
            clocks[index] = clock = replace(clock, fired=clock.fired + 1)
            what = "breached" if level >= 1 else f"at {level:.0%}"
            due_at = clock.due_at(rules.calendar_of(clock))
            note = f"{clock.timer.value} {what} of {clock.target_s / 60:g} min ({clock.policy})"
            if due_at is not None:
                note += f", due {due_at.isoformat(timespec='minutes')}"
            changes.append(Change("escalated", "sla", "", note, internal=True))
            for action in self.config.escalation.actions(ticket.line, clock.timer, level):
                changes += self._act(tx, ticket, action, note, now)
        self._keep(ticket, replace(ticket.sla, clocks=tuple(clocks)), rules, now)
        return changes

    def _next_alarm(self, clock: Clock, rules: Rules) -> datetime | None:
        return clock.next_alarm(rules.calendar_of(clock), rules.policy_of(clock).levels)

    def _act(
        self, tx: Tx, ticket: Ticket, action: Action, note: str, now: datetime
    ) -> list[Change]:
        escalation = self.config.escalation
        if action is Action.NOTIFY:
            recipient = ticket.assignee or escalation.line(ticket.line).supervisor
            return self._notify(tx, ticket, recipient, note, now)
        if action is Action.NOTIFY_SUPERVISOR:
            return self._notify(tx, ticket, escalation.line(ticket.line).supervisor, note, now)
        if action is Action.RAISE_PRIORITY:
            return ticket.set(SLA_ACTION, "priority", Priority(max(ticket.priority - 1, 1)))
        if action is Action.NEXT_LINE:
            line = escalation.next_line(ticket.line)
            if line is None:
                return []
            changes = ticket.set(SLA_ACTION, "line", line)
            person = escalation.next_person(line, None, lambda login: self._free(tx, login, now))
            return changes + ticket.set(SLA_ACTION, "assignee", person)
        person = escalation.next_person(
            ticket.line, ticket.assignee, lambda login: self._free(tx, login, now)
        )
        if person is None:
            return [Change(SLA_ACTION, "assignee", "", "nobody of the line is free")]
        return ticket.set(SLA_ACTION, "assignee", person)

    def _notify(
        self, tx: Tx, ticket: Ticket, recipient: str | None, note: str, now: datetime
    ) -> list[Change]:
        if recipient is None:
            return []
        tx.add_notification(ticket.id, recipient, "sla", f"{ticket.key}: {note}", now)
        return [Change(SLA_ACTION, "notified", "", recipient, internal=True)]

    def _free(self, tx: Tx, login: str, now: datetime) -> bool:
        """On shift, active, an engineer, and under their load."""
        user = tx.user(login)
        if user is None or not user.active or user.role not in STAFF:
            return False
        shift = self.config.escalation.shifts.get(login, Shift())
        if not self.calendar(shift.hours, shift.timezone, "").is_open(now):
            return False
        if shift.max_open is None:
            return True
        return tx.open_load(login, self.workflow.open_statuses()) < shift.max_open
