"""The pass over every open ticket (`SlaService.reschedule`, `TicketService.recompute_sla`)
computes deadlines many clocks at a time; it gives, to the microsecond, what each ticket's
own path gives (`Clock.schedule`, `SlaService.refresh`): over random calendars (DST zones,
holidays, hours open a minute a week or never), clocks started years before or after the
years compiled so far, clocks past their target and with every alarm fired."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.calendar import Calendar, Holidays, Hours, epoch_us, instant
from node.domain.sla import Clock, ClockState, TicketSla, Timer
from node.domain.slapolicy import DEFAULT_SLA_CONFIG, SlaConfig
from node.domain.ticket import Level, Priority, Store, Ticket, TicketDraft, TicketType, Tier
from node.domain.workflow import DEFAULT_WORKFLOW
from node.services import deadlines
from node.services.sla import SlaService
from node.store import slastate
from node.store.tx import SlaBatch
from tests.conftest import Desk
from tests.test_calendar import Scenario, hours_strategy, scenarios

START = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)
YEAR_US = 365 * 86_400_000_000
DAY_US = 86_400_000_000


def us(at: datetime | None) -> float:
    return np.nan if at is None else epoch_us(at)


def same(a: float, b: float) -> bool:
    """Equal instants, NaN (none) equal to NaN."""
    return a == b or (np.isnan(a) and np.isnan(b))


# ---------------------------------------------------------------------------------------------
# Many clocks of one calendar at once, and each clock alone


@st.composite
def clocks(draw: st.DrawFn, sc: Scenario, levels: int) -> Clock:
    """A running clock of the scenario's calendar: since up to three years before or a year
    after the scenario, to the microsecond; up to two business days of target (a calendar
    open a minute a week needs 55 years for that), its time used short of it or past it;
    any number of alarm levels fired."""
    target_us = draw(st.integers(1, 2 * DAY_US))
    since = sc.start + timedelta(microseconds=draw(st.integers(-3 * YEAR_US, YEAR_US)))
    return Clock(
        timer=draw(st.sampled_from(Timer)),
        cycle=1,
        policy="p",
        target_s=target_us / 1e6,
        started_at=since,
        state=ClockState.RUNNING,
        since=since,
        elapsed_s=draw(st.integers(0, 2 * target_us)) / 1e6,
        fired=draw(st.integers(0, levels)),
    )


@settings(max_examples=150, deadline=None)
@given(
    sc=scenarios(),
    warnings=st.lists(st.sampled_from([0.5, 0.75, 0.9]), unique=True, max_size=3).map(sorted),
    compiled=st.sampled_from([None, -2, 0, 3]),
    data=st.data(),
)
def test_deadlines_of_many_clocks_are_those_each_clock_schedules(
    sc: Scenario, warnings: list[float], compiled: int | None, data: st.DataObject
) -> None:
    levels = (*warnings, 1.0)
    many = data.draw(st.lists(clocks(sc, len(levels)), min_size=1, max_size=40))
    one = Calendar(sc.hours, sc.zone, sc.holidays)
    calendar = Calendar(sc.hours, sc.zone, sc.holidays)
    if compiled is not None and not sc.hours.is_never:  # years compiled before: grown both ways
        calendar.add(sc.start + timedelta(days=365 * compiled), 1.0)

    def together() -> tuple[deadlines.Floats, deadlines.Floats]:
        return deadlines.schedule_us(
            calendar,
            np.array([us(c.since) for c in many]),
            np.array([c.elapsed_s for c in many]),
            np.array([c.target_s for c in many]),
            fired=np.array([c.fired for c in many]),
            levels=levels,
        )

    try:
        expected = [c.schedule(one, levels) for c in many]
    except ValueError:  # a calendar never open
        with pytest.raises(ValueError):
            together()
        return

    due, alarm = together()

    for (due_at, alarm_at), found_due, found_alarm in zip(expected, due, alarm, strict=True):
        assert same(found_due, us(due_at)) and same(found_alarm, us(alarm_at))


def test_a_duration_that_is_not_finite_is_refused_as_by_each_clock() -> None:
    calendar = Calendar(Hours.parse({"mon-fri": "09:00-18:00"}), "Europe/Moscow")
    with pytest.raises(ValueError, match="finite"):
        calendar.add_us(us(START), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        deadlines.add_us(calendar, np.array([us(START)] * 2), np.array([3600.0, np.nan]))


# ---------------------------------------------------------------------------------------------
# A batch of tickets, and each ticket refreshed alone

STORES = {
    "msk": Store("msk", "Moscow", "Moscow", "Europe/Moscow", Tier.FLAGSHIP),
    "vvo": Store("vvo", "Vladivostok", "Primorye", "Asia/Vladivostok", Tier.STANDARD),
    "ber": Store("ber", "Berlin", "Berlin", "Europe/Berlin", Tier.STANDARD),
}
CONFIG = SlaConfig.from_config(DEFAULT_SLA_CONFIG, DEFAULT_WORKFLOW.kinds)
POLICIES = CONFIG.policies
OPEN = DEFAULT_WORKFLOW.open_statuses()


@st.composite
def services(draw: st.DrawFn) -> SlaService:
    """The default policies on random business hours, with random days off per region."""
    hours = draw(hours_strategy().filter(lambda h: not h.is_never))
    config = replace(CONFIG, hours={**CONFIG.hours, "business": hours})
    days = st.integers(-40, 40).map(lambda d: START.date() + timedelta(days=d))
    holidays = {
        store.region: Holidays(days_off=frozenset(draw(st.lists(days, max_size=6))))
        for store in STORES.values()
    }
    return SlaService(config, DEFAULT_WORKFLOW, holidays)


@st.composite
def tickets(draw: st.DrawFn, sla: SlaService, number: int) -> Ticket:
    """An open ticket under the policy its fields choose, mostly, with live clocks under
    that policy and its targets, mostly; some clocks under another policy, or one the
    configuration lost, with the same targets or others."""
    ticket = Ticket(
        id=number,
        key=f"RET-{number}",
        title="",
        description="",
        ticket_type=draw(st.sampled_from(TicketType)),
        category=draw(st.sampled_from(["scales", "pos-down", "access"])),
        requester="anna",
        store=draw(st.sampled_from(sorted(STORES))),
        impact=Level.LOW,
        urgency=Level.LOW,
        priority=draw(st.sampled_from(Priority)),
        stop_trade=draw(st.booleans()),
        status=draw(st.sampled_from(OPEN)),
        created_at=START,
        updated_at=START,
    )
    chosen = sla.config.select(sla.subject(ticket, STORES[ticket.store]))
    name = chosen.name if chosen else ""
    policy = draw(st.sampled_from([name, name, name, name, "", *sorted(POLICIES)]))
    live = []
    for timer in draw(st.lists(st.sampled_from(Timer), unique=True, max_size=3)):
        target_s = chosen.targets_s.get(timer, 600.0) if chosen else 600.0
        since = START + timedelta(microseconds=draw(st.integers(-3 * YEAR_US, YEAR_US)))
        live.append(
            Clock(
                timer=timer,
                cycle=1,
                policy=draw(st.sampled_from([policy, policy, policy, "p1", "gone"])),
                target_s=draw(st.sampled_from([target_s, target_s, target_s, 1800.0])),
                started_at=since,
                state=draw(st.sampled_from([ClockState.RUNNING, ClockState.PAUSED])),
                since=since,
                elapsed_s=draw(st.integers(0, int(2e6 * target_s))) / 1e6,
                fired=draw(st.integers(0, 3)),
            )
        )
    sla_state = TicketSla(status=ticket.status, policy=policy, cycle=1, clocks=tuple(live))
    ticket.sla = slastate.decode(slastate.encode(sla_state), ticket.status, policy)
    return ticket


@settings(max_examples=100, deadline=None)
@given(sla=services(), data=st.data())
def test_a_batch_gets_the_deadlines_each_ticket_refreshed_alone_gets(
    sla: SlaService, data: st.DataObject
) -> None:
    count = data.draw(st.integers(1, 30))
    many = [data.draw(tickets(sla, number)) for number in range(1, count + 1)]
    states = [slastate.encode(t.sla) for t in many]
    refreshed = []
    for ticket in many:
        alone = replace(ticket)
        history = sla.refresh(alone, STORES[ticket.store], START, [])
        refreshed.append((alone, history))
    # the stored deadline and alarm are the right ones for some, stale for others
    stored_due = [
        data.draw(st.sampled_from([us(alone.due_at), us(START), np.nan])) for alone, _ in refreshed
    ]
    stored_alarm = [
        data.draw(st.sampled_from([us(alone.alarm_at), us(START), np.nan]))
        for alone, _ in refreshed
    ]

    found = sla.reschedule(
        SlaBatch(
            ids=[t.id for t in many],
            kinds=[
                (t.ticket_type.value, t.category, int(t.priority), t.store, t.stop_trade)
                for t in many
            ],
            policies=[t.sla.policy for t in many],
            states=states,
            due_us=np.array(stored_due),
            alarm_us=np.array(stored_alarm),
            promised=[False] * len(many),
        ),
        STORES,
    )

    moved = dict(zip(found.ids, zip(found.due_us, found.alarm_us, strict=True), strict=True))
    for ticket, (alone, history), due, alarm in zip(
        many, refreshed, stored_due, stored_alarm, strict=True
    ):
        if ticket.id in found.others:
            assert ticket.id not in moved
            continue
        # kept as it is: refresh changes nothing of its SLA, and the deadlines agree
        assert history == [] and alone.sla == ticket.sla
        new_due, new_alarm = moved.get(ticket.id, (due, alarm))
        assert same(new_due, us(alone.due_at)) and same(new_alarm, us(alone.alarm_at))
        assert (ticket.id in moved) == (not same(due, new_due) or not same(alarm, new_alarm))
    # a ticket whose policy is chosen anew always goes the slow way
    for ticket, (_, history) in zip(many, refreshed, strict=True):
        if history:
            assert ticket.id in found.others


# ---------------------------------------------------------------------------------------------
# Storage: deadlines read and written a batch at a time


def test_deadlines_are_read_and_written_to_the_microsecond(desk: Desk) -> None:
    tickets = [
        desk.tickets.create(desk.actor("anna"), TicketDraft(category=category, title=category))
        for category in ("scales", "pos-down", "other")
    ]
    due = [us(START) + 123_456, np.nan, us(datetime(2030, 3, 31, 1, 0, 0, 1, tzinfo=UTC))]
    alarm = [np.nan, us(START) + 1, us(START) - 999_999]
    ids = [t.id for t in tickets]

    with desk.db.write() as tx:
        tx.save_deadlines(ids, np.array(due), np.array(alarm))

    with desk.db.read() as tx:
        batch = tx.sla_rows(0, 10, OPEN)
        read = [tx.ticket(ticket_id) for ticket_id in ids]
    assert list(batch.ids) == ids
    assert all(map(same, batch.due_us, due)) and all(map(same, batch.alarm_us, alarm))
    for ticket, due_us, alarm_us in zip(read, due, alarm, strict=True):
        assert ticket is not None
        assert ticket.due_at == (None if np.isnan(due_us) else instant(due_us))
        assert ticket.alarm_at == (None if np.isnan(alarm_us) else instant(alarm_us))
