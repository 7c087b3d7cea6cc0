"""The SLA of tickets: policies chosen and clocks moved as tickets change, alarms fired.

`TicketService` calls `start` when a ticket is filed and `follow` with the
changes of every later use case, in the same transaction. `start` chooses the
policy and builds the new ticket's clocks (`filed`, the state its first history
entries derive); `follow` turns the changes into SLA events (a status entered, a
public reply by an engineer, the policy chosen anew when priority, category, type
or store change) and advances the ticket's clocks. Both store on the ticket its
nearest deadline (`due_at`, the queue order) and its next alarm (`alarm_at`).
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
    advance,
    derive,
    events_of,
    filed,
    schedule_us,
    view,
)
from node.domain.slapolicy import ALWAYS, Action, Shift, SlaConfig, Subject
from node.domain.status import FINAL_KINDS
from node.domain.ticket import Change, Priority, Store, Ticket, TicketType
from node.domain.workflow import Workflow
from node.store.slastate import raw_clocks
from node.store.tx import SlaRow, Tx

RUNNING = ClockState.RUNNING.value


@dataclass(frozen=True, slots=True)
class _Chosen:
    """The policy tickets of one kind fall under, its calendar, its targets by timer name."""

    policy: Policy
    calendar: Calendar
    targets: Mapping[str, float]


def _earlier(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


SUBJECT_FIELDS = frozenset({"priority", "category", "ticket_type", "stop_trade", "store"})
"""Fields whose change may choose another policy."""
SLA_ACTION = "sla"


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

    def reschedule(
        self, rows: Iterable[SlaRow], stores: Mapping[str, Store]
    ) -> tuple[list[tuple[int, float | None, float | None]], list[int]]:
        """Deadlines and next alarms of tickets on the present calendars, straight from
        their stored state, for a pass over many tickets.

        Returns:
            (ticket id, due, alarm in epoch microseconds) of the tickets whose policy and
            targets stand as they are, and the ids of the others, which need `refresh`.
        """
        chosen: dict[tuple[str, str, int, str, bool], _Chosen | None] = {}
        deadlines: list[tuple[int, float | None, float | None]] = []
        others: list[int] = []
        for row in rows:
            key = (row.ticket_type, row.category, row.priority, row.store, row.stop_trade)
            if key not in chosen:
                chosen[key] = self._chosen(row, stores[row.store])
            found = chosen[key]
            clocks = raw_clocks(row.state)
            if (found.policy.name if found else "") != row.policy or any(
                found is None or c.policy != row.policy or c.target_s != found.targets.get(c.timer)
                for c in clocks
            ):
                others.append(row.id)
                continue
            due = alarm = None
            for c in clocks:
                if found is not None and c.state == RUNNING:
                    due_us, alarm_us = schedule_us(
                        found.calendar,
                        c.since_us,
                        c.elapsed_s,
                        c.target_s,
                        fired=c.fired,
                        levels=found.policy.levels,
                    )
                    due = _earlier(due, due_us)
                    alarm = _earlier(alarm, alarm_us)
            deadlines.append((row.id, due, alarm))
        return deadlines, others

    def _chosen(self, row: SlaRow, store: Store) -> "_Chosen | None":
        policy = self.config.select(self._row_subject(row, store))
        if policy is None:
            return None
        return _Chosen(
            policy,
            self._counting(policy, store, row.stop_trade),
            {timer.value: target for timer, target in policy.targets_s.items()},
        )

    def _row_subject(self, row: SlaRow, store: Store) -> Subject:
        return Subject(
            ticket_type=TicketType(row.ticket_type),
            category=row.category,
            priority=Priority(row.priority),
            store=row.store,
            region=store.region,
            stop_trade=row.stop_trade,
        )

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
        ticket.due_at = min((v.due_at for v in views if v.due_at is not None), default=None)
        ticket.alarm_at = min(alarms, default=None)

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
