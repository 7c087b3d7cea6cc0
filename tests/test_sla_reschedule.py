"""The pass over every open ticket (`SlaService.reschedule`, `TicketService.recompute_sla`)
computes deadlines many clocks at a time; it gives, to the microsecond, what each ticket's
own path gives (`Clock.schedule`, `SlaService.refresh`): over random calendars (DST zones,
holidays, hours open a minute a week or never), clocks started years before or after the
years compiled so far, clocks past their target and with every alarm fired."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.calendar import Calendar, Hours, epoch_us
from node.domain.sla import Clock, ClockState, Timer
from node.services import deadlines
from tests.test_calendar import Scenario, scenarios

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
    try:
        expected = [c.schedule(one, levels) for c in many]
    except ValueError:  # a calendar never open
        with pytest.raises(ValueError):
            deadlines.schedule_us(
                calendar,
                np.array([us(c.since) for c in many]),
                np.array([c.elapsed_s for c in many]),
                np.array([c.target_s for c in many]),
                fired=np.array([c.fired for c in many]),
                levels=levels,
            )
        return

    due, alarm = deadlines.schedule_us(
        calendar,
        np.array([us(c.since) for c in many]),
        np.array([c.elapsed_s for c in many]),
        np.array([c.target_s for c in many]),
        fired=np.array([c.fired for c in many]),
        levels=levels,
    )

    for (due_at, alarm_at), found_due, found_alarm in zip(expected, due, alarm, strict=True):
        assert same(found_due, us(due_at)) and same(found_alarm, us(alarm_at))


def test_a_duration_that_is_not_finite_is_refused_as_by_each_clock() -> None:
    calendar = Calendar(Hours.parse({"mon-fri": "09:00-18:00"}), "Europe/Moscow")
    with pytest.raises(ValueError, match="finite"):
        calendar.add_us(us(START), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        deadlines.add_us(calendar, np.array([us(START)] * 2), np.array([3600.0, np.nan]))
