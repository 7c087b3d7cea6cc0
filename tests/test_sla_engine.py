"""The SLA clock engine: its clocks agree, minute by minute, with a plain reference (count a
UTC minute iff the ticket's status does not pause the timer and the store's calendar, by its
definition, is open), across DST changes, holidays and pauses; and the rules people rely on
hold (the update timer never pre-empts the first response, pauses hold business time only,
policy changes carry time over, reopened tickets keep their old verdicts)."""

import functools
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.calendar import Calendar, Holidays, Hours
from node.domain.sla import (
    Clock,
    ClockState,
    EventKind,
    Policy,
    Rules,
    SlaEvent,
    TicketSla,
    Timer,
    advance,
    derive,
    filed,
)
from node.domain.slapolicy import ALWAYS, DEFAULT_SLA_CONFIG, SlaConfig, duration_s
from node.domain.workflow import DEFAULT_WORKFLOW

MINUTE = 60.0
HOUR = 3600.0
DAY_MINUTES = 1440
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
PAUSES: Mapping[str, frozenset[Timer]] = {"waiting_requester": frozenset(Timer)}
OFFICE = Hours.parse({"mon-fri": "09:00-18:00"})
LEVELS = (0.75, 0.9, 1.0)

# DST zones (Lord Howe moves by half an hour) and Russian zones (fixed offsets since 2014).
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Europe/Moscow",
    "Asia/Vladivostok",
    "Asia/Kamchatka",
)
OPEN_STATUSES = ("in_progress", "waiting_requester", "waiting_partner")


def rules_for(calendar: Calendar, *policies: Policy) -> Rules:
    """Rules of the default workflow, waiting on the requester pausing every timer."""
    return Rules(
        kind=DEFAULT_WORKFLOW.kind,
        pauses=PAUSES,
        policies={p.name: p for p in policies},
        calendar=lambda _policy: calendar,
    )


def opened(at: datetime, policy: str, status: str = "new") -> list[SlaEvent]:
    """A ticket's first events: created in status, its policy set at the same instant."""
    return [SlaEvent(at, EventKind.CREATED, status), SlaEvent(at, EventKind.POLICY, policy)]


def status(at: datetime, value: str) -> SlaEvent:
    return SlaEvent(at, EventKind.STATUS, value)


def the(state: TicketSla, timer: Timer, cycle: int | None = None) -> Clock:
    """The one clock of timer (of cycle, if given)."""
    found = [c for c in state.clocks if c.timer is timer and cycle in (None, c.cycle)]
    assert len(found) == 1, found
    return found[0]


def timers(clocks: Sequence[Clock]) -> set[Timer]:
    return {c.timer for c in clocks}


# ---------------------------------------------------------------------------------------------
# The reference: the calendar's definition, evaluated with zoneinfo over UTC minutes


@dataclass(frozen=True)
class World:
    hours: Hours
    zone: str
    holidays: Holidays


def reference_day(world: World, day: date) -> tuple[tuple[int, int], ...]:
    """The local day's intervals, by the definition."""
    if day in world.holidays.workdays:
        return world.hours.week[world.holidays.workdays[day]]
    if day in world.holidays.days_off:
        return ()
    return world.hours.week[day.weekday()]


def reference_is_always(world: World) -> bool:
    """Hours that cover the whole week are never closed, holidays or not."""
    return all(day == ((0, DAY_MINUTES),) for day in world.hours.week)


def reference_open(world: World, tz: ZoneInfo, epoch_s: int) -> bool:
    """Whether the UTC minute starting at epoch_s is business time, by the definition."""
    if reference_is_always(world):
        return True
    local = datetime.fromtimestamp(epoch_s, tz)
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in reference_day(world, local.date()))


@dataclass(frozen=True)
class Reference:
    """A timer's business minutes, by the definition, from a ticket's creation on.

    Attributes:
        counting: the starts (epoch s) of the minutes it counts, in order.
        paused_before: the business minutes spent paused before `now`.
    """

    counting: tuple[int, ...]
    paused_before: int
    now: int

    def counted_before(self, t: int) -> int:
        """Business seconds counted in [creation, t)."""
        return 60 * bisect_left(self.counting, t)

    def reach(self, need_us: int) -> datetime:
        """The earliest instant at which the counted time reaches need_us (> 0)."""
        k = -(-need_us // 60_000_000)  # the k-th counted minute reaches it
        assert k <= len(self.counting), "the walk stopped too early"
        start = self.counting[k - 1]
        return datetime.fromtimestamp(start, UTC) + timedelta(
            microseconds=need_us - (k - 1) * 60_000_000
        )


def walk(
    world: World,
    changes: Sequence[tuple[int, str]],
    now: int,
    need_minutes: int,
) -> Reference:
    """Walks UTC minutes from the first change (the creation) until now and until need_minutes
    counted minutes are known (unless the last status pauses the timer).

    Each minute is judged as `reference_open` judges it, only faster: the zone's offset is read
    once per UTC half hour (asserted constant across it: these zones change offsets on whole
    half hours), and each local day's open minutes are looked up once. The first minute of
    every local day met is checked against `reference_open` itself.
    """
    tz = ZoneInfo(world.zone)
    always = reference_is_always(world)
    offsets: dict[int, int] = {}
    days: dict[int, frozenset[int]] = {}
    last_at, last_status = changes[-1]
    counting: list[int] = []
    paused = 0
    index = 0
    current = changes[0][1]
    start = changes[0][0]
    for t in range(start, start + 200 * DAY_MINUTES * 60, 60):
        done = last_status in PAUSES or len(counting) >= need_minutes
        if t >= now and t >= last_at and done:
            break
        while index < len(changes) and changes[index][0] <= t:
            current = changes[index][1]
            index += 1
        if always:
            is_open = True
        else:
            block = t // 1800
            offset = offsets.get(block)
            if offset is None:
                first = datetime.fromtimestamp(block * 1800, tz).utcoffset()
                last = datetime.fromtimestamp(block * 1800 + 1740, tz).utcoffset()
                assert first is not None and first == last
                offset = offsets[block] = int(first.total_seconds())
            local_minute = (t + offset) // 60
            day = local_minute // DAY_MINUTES
            new_day = day not in days
            if new_day:
                intervals = reference_day(world, date.fromordinal(day + EPOCH_ORDINAL))
                days[day] = frozenset(m for a, b in intervals for m in range(a, b))
            is_open = local_minute % DAY_MINUTES in days[day]
            if new_day:
                assert is_open == reference_open(world, tz, t)
        if is_open:
            if current in PAUSES:
                if t < now:
                    paused += 1
            else:
                counting.append(t)
    else:
        raise AssertionError("the reference walked 200 days without reaching the target")
    return Reference(tuple(counting), paused * 60, now)


# ---------------------------------------------------------------------------------------------
# Strategies


@functools.cache
def transitions(zone: str) -> tuple[int, ...]:
    """UTC epoch seconds in 2025-2027 at which the zone's offset changes, to the minute."""
    tz = ZoneInfo(zone)

    def offset(t: int) -> timedelta | None:
        return datetime.fromtimestamp(t, tz).utcoffset()

    out: list[int] = []
    t = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2028, 1, 1, tzinfo=UTC).timestamp())
    step = 6 * 3600
    while t < end:
        if offset(t) != offset(t + step):
            lo, hi = t, t + step  # offset(lo) differs from offset(hi): bisect to the minute
            while hi - lo > 60:
                mid = lo + (hi - lo) // 120 * 60
                if offset(mid) == offset(lo):
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
        t += step
    return tuple(out)


minute_of_day = st.one_of(
    st.integers(0, DAY_MINUTES),
    st.sampled_from([0, 60, 120, 150, 180, 210, 540, 1080, 1380, 1410, DAY_MINUTES]),
)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def hours_strategy(draw: st.DrawFn) -> Hours:
    """24/7, or Hours.parse of 0-3 minute-aligned intervals a day (open at least once)."""
    if draw(st.integers(0, 7)) == 0:
        return Hours.always()
    spec: dict[str, Any] = {}
    for name in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        count = draw(st.integers(0, 3))
        points = sorted(
            draw(st.lists(minute_of_day, min_size=2 * count, max_size=2 * count, unique=True))
        )
        spec[name] = [
            f"{hhmm(a)}-{hhmm(b)}" for a, b in zip(points[::2], points[1::2], strict=True)
        ]
    if not any(spec.values()):
        spec["wed"] = ["10:00-11:30"]
    return Hours.parse(spec)


@dataclass(frozen=True)
class Story:
    """A ticket's life: created in a status, then minute-aligned status changes.

    Attributes:
        changes: (epoch s, status), the creation first, in time order.
        now: when it is read (at or after the last change).
        switch: (index of a change, targets) if the policy changes right after that change.
    """

    world: World
    changes: tuple[tuple[int, str], ...]
    now: int
    first_response_min: int
    resolution_min: int
    switch: tuple[int, int, int] | None  # (change index, first response min, resolution min)


def weekly_minutes(hours: Hours) -> int:
    return sum(end - start for day in hours.week for start, end in day)


@st.composite
def stories(draw: st.DrawFn) -> Story:
    zone = draw(st.sampled_from(ZONES))
    near = transitions(zone)
    if near and draw(st.integers(0, 3)) > 0:  # mostly around a DST change
        start = draw(st.sampled_from(near)) + 60 * draw(st.integers(-5 * DAY_MINUTES, DAY_MINUTES))
    else:
        start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) + 60 * draw(
            st.integers(0, 3 * 365 * DAY_MINUTES)
        )
    hours = draw(hours_strategy())
    # Holidays and transferred working days near the window.
    first_day = datetime.fromtimestamp(start, ZoneInfo(zone)).date() - timedelta(days=1)
    off = draw(st.lists(st.integers(0, 14), max_size=4, unique=True))
    worked = draw(st.dictionaries(st.integers(0, 14), st.integers(0, 6), max_size=3))
    holidays = Holidays(
        days_off=frozenset(first_day + timedelta(days=d) for d in off),
        workdays={first_day + timedelta(days=d): w for d, w in worked.items()},
    )
    gap = st.one_of(st.integers(0, 240), st.integers(0, 3 * DAY_MINUTES))
    steps = draw(st.lists(st.tuples(gap, st.sampled_from(OPEN_STATUSES)), min_size=0, max_size=6))
    changes = [(start, draw(st.sampled_from(("new", *OPEN_STATUSES))))]
    for minutes, value in steps:
        changes.append((changes[-1][0] + 60 * minutes, value))
    now = changes[-1][0] + 60 * draw(st.integers(0, 2 * DAY_MINUTES))
    cap = max(1, min(2 * weekly_minutes(hours), 1500))
    target = st.integers(1, cap)
    switch = None
    if draw(st.booleans()):
        switch = (draw(st.integers(0, len(changes) - 1)), draw(target), draw(target))
    return Story(
        world=World(hours, zone, holidays),
        changes=tuple(changes),
        now=now,
        first_response_min=draw(target),
        resolution_min=draw(target),
        switch=switch,
    )


def events_of(story: Story) -> list[SlaEvent]:
    def at(t: int) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    (created_at, created_status), *rest = story.changes
    events = opened(at(created_at), "p", created_status)
    if story.switch is not None and story.switch[0] == 0:
        events.append(SlaEvent(at(created_at), EventKind.POLICY, "q"))
    for i, (t, value) in enumerate(rest, start=1):
        events.append(status(at(t), value))
        if story.switch is not None and story.switch[0] == i:
            events.append(SlaEvent(at(t), EventKind.POLICY, "q"))
    return events


def test_the_reference_sees_dst_changes_and_office_hours() -> None:
    def epoch(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
        return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())

    berlin = transitions("Europe/Berlin")
    assert len(berlin) == 6
    assert {epoch(2026, 3, 29, 1), epoch(2026, 10, 25, 1)} <= set(berlin)
    lord_howe = transitions("Australia/Lord_Howe")
    assert len(lord_howe) == 6
    assert {t % 3600 for t in lord_howe} == {0, 1800}  # it moves by half an hour
    assert transitions("Europe/Moscow") == transitions("Asia/Kamchatka") == ()
    office = World(OFFICE, "Europe/Berlin", Holidays(days_off=frozenset({date(2026, 3, 31)})))
    assert reference_open(office, BERLIN, epoch(2026, 3, 27, 16, 59))  # Friday 17:59 CET
    assert not reference_open(office, BERLIN, epoch(2026, 3, 27, 17))
    assert not reference_open(office, BERLIN, epoch(2026, 3, 30, 6, 59))  # Monday 08:59 CEST
    assert reference_open(office, BERLIN, epoch(2026, 3, 30, 7))
    assert not reference_open(office, BERLIN, epoch(2026, 3, 31, 8))  # a day off
    # Friday 17:00 CET to Monday 12:00 CEST: 1 + 3 business hours, across the change
    ref = walk(office, [(epoch(2026, 3, 27, 16), "in_progress")], epoch(2026, 3, 30, 10), 240)
    assert ref.counted_before(epoch(2026, 3, 30, 10)) == 4 * HOUR
    assert ref.reach(4 * 3_600_000_000) == datetime(2026, 3, 30, 12, tzinfo=BERLIN)


# ---------------------------------------------------------------------------------------------
# 1. Properties


# A failure shrinks through many long walks: report one bug, and give the shrinking time.
@pytest.mark.timeout(600)
@settings(max_examples=150, deadline=None, report_multiple_bugs=False)
@given(story=stories())
def test_clocks_agree_with_the_minute_by_minute_reference(story: Story) -> None:
    world = story.world
    calendar = Calendar(world.hours, world.zone, world.holidays)
    p = Policy(
        "p",
        {
            Timer.FIRST_RESPONSE: story.first_response_min * MINUTE,
            Timer.RESOLUTION: story.resolution_min * MINUTE,
        },
    )
    policies = [p]
    targets = dict(p.targets_s)
    switched_at: int | None = None
    if story.switch is not None:
        index, fr_min, res_min = story.switch
        q = Policy("q", {Timer.FIRST_RESPONSE: fr_min * MINUTE, Timer.RESOLUTION: res_min * MINUTE})
        policies.append(q)
        targets = dict(q.targets_s)
        switched_at = story.changes[index][0]
    need = int(max(targets.values()) // MINUTE)
    ref = walk(world, story.changes, story.now, need)
    state = derive(events_of(story), rules_for(calendar, *policies))

    now = datetime.fromtimestamp(story.now, UTC)
    last_at, last_status = story.changes[-1]
    pausing = last_status in PAUSES
    assert state.status == last_status
    assert state.cycle == 1
    assert timers(state.live) == {Timer.FIRST_RESPONSE, Timer.RESOLUTION}
    for timer in (Timer.FIRST_RESPONSE, Timer.RESOLUTION):
        clock = the(state, timer)
        target_s = targets[timer]
        assert clock.target_s == target_s
        assert clock.state is (ClockState.PAUSED if pausing else ClockState.RUNNING)
        assert clock.elapsed_at(calendar, now) == ref.counted_before(story.now)
        assert clock.paused_at(calendar, now) == ref.paused_before
        assert clock.breached_at(calendar, now) == (ref.counted_before(story.now) > target_s)

        # due: the end of the minute at which the counted minutes reach the target
        elapsed_last = ref.counted_before(last_at)
        if pausing or elapsed_last >= target_s:
            assert clock.due_at(calendar) is None
        else:
            assert clock.due_at(calendar) == ref.reach(int(target_s) * 1_000_000)

        # the next alarm: the first level not passed (a policy change counts passed ones fired)
        fired = 0
        if switched_at is not None:
            carried = ref.counted_before(switched_at)
            fired = sum(1 for level in LEVELS if carried >= target_s * level)
        assert clock.fired == fired
        alarm = clock.next_alarm(calendar, LEVELS)
        if pausing or fired == len(LEVELS):
            assert alarm is None
        else:
            threshold_us = round(target_s * LEVELS[fired] * 1_000_000)
            if elapsed_last * 1_000_000 >= threshold_us:
                assert alarm == datetime.fromtimestamp(last_at, UTC)
            else:
                assert alarm == ref.reach(threshold_us)


# -- any history: the fold is the same function of the same events ---------------------------

ALL_STATUSES = tuple(DEFAULT_WORKFLOW.kinds)
CALENDARS = (
    Calendar(OFFICE, "Europe/Moscow"),
    Calendar(Hours.always(), "Europe/Moscow"),
    Calendar(Hours.parse({"mon-fri": "08:00-20:00", "sat": "10:00-14:00"}), "Europe/Berlin"),
)
FOLD_POLICIES = (
    Policy("p", {t: 4 * HOUR for t in Timer}),
    Policy("q", {Timer.FIRST_RESPONSE: 30 * MINUTE, Timer.RESOLUTION: 16 * HOUR}, (0.5,)),
    Policy("r", {Timer.RESOLUTION: 2 * HOUR, Timer.NEXT_UPDATE: HOUR}),
)


@st.composite
def histories(draw: st.DrawFn) -> list[SlaEvent]:
    t = datetime(2026, 3, 20, 8, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 20_000)))
    events = opened(
        t,
        draw(st.sampled_from(("p", "q", "r", ""))),
        draw(st.sampled_from(("new", *OPEN_STATUSES))),
    )
    event = st.one_of(
        st.builds(lambda v: (EventKind.STATUS, v), st.sampled_from(ALL_STATUSES)),
        st.just((EventKind.REPLY, "")),
        st.builds(lambda v: (EventKind.POLICY, v), st.sampled_from(("p", "q", "r", ""))),
    )
    for minutes, (kind, value) in draw(
        st.lists(st.tuples(st.integers(0, 2 * DAY_MINUTES), event), max_size=14)
    ):
        t += timedelta(minutes=minutes, seconds=draw(st.integers(0, 59)))
        events.append(SlaEvent(t, kind, value))
    return events


@settings(max_examples=150, deadline=None)
@given(events=histories(), calendar=st.sampled_from(CALENDARS))
def test_deriving_at_once_equals_advancing_one_event_at_a_time(
    events: list[SlaEvent], calendar: Calendar
) -> None:
    rules = rules_for(calendar, *FOLD_POLICIES)
    state = TicketSla()
    for event in events:
        state = advance(state, event, rules)
        # invariants of every intermediate state
        live = state.live
        assert len(live) == len(timers(live)), "one live clock per timer"
        assert all(c.cycle == state.cycle for c in live), "live clocks belong to the cycle"
        assert not {Timer.FIRST_RESPONSE, Timer.NEXT_UPDATE} <= timers(live), (
            "the next-update clock never runs beside the first-response clock"
        )
        paused = PAUSES.get(state.status, frozenset())
        for c in live:
            assert (c.state is ClockState.PAUSED) == (c.timer in paused)
            assert c.since <= event.at
            assert c.elapsed_s >= 0 and c.paused_s >= 0
    assert derive(events, rules) == state
    # a state stored half-way and carried on is the state derived from the whole history
    half = len(events) // 2
    stored = derive(events[:half], rules)
    for event in events[half:]:
        stored = advance(stored, event, rules)
    assert stored == state


@st.composite
def filings(draw: st.DrawFn) -> tuple[str, Policy | None, Rules]:
    """A status a ticket is filed in, the policy it falls under (None: none), and rules with
    that policy among others, any pauses and any calendar."""
    targets = st.dictionaries(st.sampled_from(Timer), st.floats(1.0, 5 * 365 * 24 * HOUR))
    warnings = st.lists(st.floats(0.01, 0.99), unique=True, max_size=3).map(sorted).map(tuple)
    policies = [
        Policy(name, draw(targets), draw(warnings))
        for name in draw(st.lists(st.sampled_from("pqr"), unique=True, max_size=3))
    ]
    policy = draw(st.sampled_from([None, *policies]))
    pauses = draw(
        st.dictionaries(st.sampled_from(ALL_STATUSES), st.frozensets(st.sampled_from(Timer)))
    )
    calendar = draw(st.sampled_from(CALENDARS))
    rules = Rules(
        kind=DEFAULT_WORKFLOW.kind,
        pauses=pauses,
        policies={p.name: p for p in policies},
        calendar=lambda _policy: calendar,
    )
    return draw(st.sampled_from(ALL_STATUSES)), policy, rules


@settings(max_examples=300, deadline=None)
@given(
    filing=filings(),
    at=st.datetimes(
        datetime(1990, 1, 1), datetime(2200, 1, 1), timezones=st.sampled_from([UTC, MOSCOW, BERLIN])
    ),
)
def test_a_filed_ticket_has_the_state_its_first_events_derive(
    filing: tuple[str, Policy | None, Rules], at: datetime
) -> None:
    status, policy, rules = filing
    events = [SlaEvent(at, EventKind.CREATED, status)]
    if policy is not None:
        events.append(SlaEvent(at, EventKind.POLICY, policy.name))
    assert filed(status, policy, at, rules) == derive(events, rules)


# ---------------------------------------------------------------------------------------------
# 2. The rules people rely on (each a failure an earlier engine had)


def config_rules(policies: list[Mapping[str, Any]], zone: str = "Europe/Moscow") -> Rules:
    """Rules read from an `[sla]` table, as the node reads them."""
    config = SlaConfig.from_config(
        {"hours": {"business": {"mon-fri": "09:00-18:00"}}, "policies": policies},
        list(DEFAULT_WORKFLOW.kinds),
    )
    calendars = {name: Calendar(hours, zone) for name, hours in config.hours.items()}
    return Rules(
        kind=DEFAULT_WORKFLOW.kind,
        pauses=config.pauses,
        policies=config.policies,
        calendar=lambda policy: calendars[policy.hours],
    )


def nearest_alarm(state: TicketSla, rules: Rules) -> tuple[datetime, Timer]:
    alarms = []
    for clock in state.live:
        calendar = rules.calendar_of(clock)
        alarm = clock.next_alarm(calendar, rules.policies[clock.policy].levels)
        if alarm is not None:
            alarms.append((alarm, clock.timer))
    return min(alarms)


def test_the_update_timer_never_preempts_the_first_response_timer() -> None:
    rules = config_rules(
        [{"name": "chatty", "first_response": "4h", "next_update": "1h", "resolution": "16h"}]
    )
    assert rules.policies["chatty"].targets_s[Timer.NEXT_UPDATE] == duration_s("x", "1h")
    created = datetime(2026, 3, 2, 9, tzinfo=MOSCOW)  # Monday
    state = derive(
        [*opened(created, "chatty"), status(created + timedelta(hours=2), "in_progress")], rules
    )
    assert timers(state.clocks) == {Timer.FIRST_RESPONSE, Timer.RESOLUTION}
    assert nearest_alarm(state, rules) == (created + timedelta(hours=3), Timer.FIRST_RESPONSE)
    calendar = rules.calendar_of(the(state, Timer.FIRST_RESPONSE))
    first_due = the(state, Timer.FIRST_RESPONSE).due_at(calendar)
    resolution_due = the(state, Timer.RESOLUTION).due_at(calendar)
    assert first_due == created + timedelta(hours=4)
    assert resolution_due is not None and first_due < resolution_due


def test_the_first_public_reply_meets_first_response_and_starts_next_update_at_once() -> None:
    rules = config_rules(
        [{"name": "chatty", "first_response": "4h", "next_update": "1h", "resolution": "16h"}]
    )
    created = datetime(2026, 3, 2, 9, tzinfo=MOSCOW)
    reply = created + timedelta(hours=1, minutes=20)
    state = derive([*opened(created, "chatty"), SlaEvent(reply, EventKind.REPLY)], rules)
    calendar = rules.calendar_of(the(state, Timer.RESOLUTION))
    first = the(state, Timer.FIRST_RESPONSE)
    assert first.state is ClockState.MET
    assert first.since == reply
    assert first.elapsed_s == 80 * MINUTE
    assert not first.breached_at(calendar, reply + timedelta(days=30))
    assert first.next_alarm(calendar, LEVELS) is None
    assert first.due_at(calendar) is None
    update = the(state, Timer.NEXT_UPDATE)
    assert update.state is ClockState.RUNNING
    assert update.started_at == reply
    assert update.due_at(calendar) == reply + timedelta(hours=1)
    assert state.responded
    # a second reply in time meets the update clock and starts the next one at the reply
    second = reply + timedelta(minutes=40)
    state = advance(state, SlaEvent(second, EventKind.REPLY), rules)
    update = the(state, Timer.NEXT_UPDATE)
    assert (update.started_at, update.state, update.elapsed_s) == (
        second,
        ClockState.RUNNING,
        0.0,
    )


def test_a_weekend_pause_holds_two_business_hours_and_moves_the_deadline_by_them_only() -> None:
    calendar = Calendar(OFFICE, "Europe/Moscow")
    policy = Policy("p", {Timer.RESOLUTION: 8 * HOUR})
    rules = rules_for(calendar, policy)
    created = datetime(2026, 3, 6, 16, tzinfo=MOSCOW)  # Friday
    pause = datetime(2026, 3, 6, 17, tzinfo=MOSCOW)
    resume = datetime(2026, 3, 9, 10, tzinfo=MOSCOW)  # Monday
    plain = derive(opened(created, "p", "in_progress"), rules)
    paused = derive(
        [
            *opened(created, "p", "in_progress"),
            status(pause, "waiting_requester"),
            status(resume, "in_progress"),
        ],
        rules,
    )
    before, after = the(plain, Timer.RESOLUTION), the(paused, Timer.RESOLUTION)
    assert resume - pause == timedelta(hours=65)
    assert after.paused_s == 2 * HOUR  # Fri 17-18 and Mon 09-10
    assert after.elapsed_s == 1 * HOUR  # Fri 16-17
    assert after.paused_at(calendar, resume + timedelta(days=3)) == 2 * HOUR
    assert before.due_at(calendar) == datetime(2026, 3, 9, 15, tzinfo=MOSCOW)
    assert after.due_at(calendar) == datetime(2026, 3, 9, 17, tzinfo=MOSCOW)
    due_before, due_after = before.due_at(calendar), after.due_at(calendar)
    assert due_before is not None and due_after is not None
    assert calendar.between(due_before, due_after) == 2 * HOUR
    assert due_after - due_before == timedelta(hours=2)


def test_escalating_an_hour_before_the_deadline_fires_on_tuesday_at_ten_not_at_midnight() -> None:
    calendar = Calendar(Hours.parse({"mon-fri": "08:00-18:00"}), "Europe/Moscow")
    rules = rules_for(calendar, Policy("p", {Timer.RESOLUTION: 4 * HOUR}, warnings=(0.75,)))
    created = datetime(2026, 3, 2, 17, tzinfo=MOSCOW)  # Monday
    clock = the(derive(opened(created, "p"), rules), Timer.RESOLUTION)
    assert clock.due_at(calendar) == datetime(2026, 3, 3, 11, tzinfo=MOSCOW)
    assert clock.next_alarm(calendar, (0.75, 1.0)) == datetime(2026, 3, 3, 10, tzinfo=MOSCOW)
    fired = replace(clock, fired=1)
    assert fired.next_alarm(calendar, (0.75, 1.0)) == datetime(2026, 3, 3, 11, tzinfo=MOSCOW)
    assert replace(clock, fired=2).next_alarm(calendar, (0.75, 1.0)) is None
    midnight = datetime(2026, 3, 3, 0, tzinfo=MOSCOW)
    assert clock.elapsed_at(calendar, midnight) == 1 * HOUR
    assert not clock.breached_at(calendar, datetime(2026, 3, 3, 11, tzinfo=MOSCOW))
    assert clock.breached_at(calendar, datetime(2026, 3, 3, 11, 0, 1, tzinfo=MOSCOW))


def test_changing_the_policy_after_a_pause_carries_elapsed_and_paused_time_over() -> None:
    calendar = Calendar(OFFICE, "Europe/Moscow")
    standard = Policy("standard", {Timer.FIRST_RESPONSE: 8 * HOUR, Timer.RESOLUTION: 8 * HOUR})
    urgent = Policy("urgent", {Timer.FIRST_RESPONSE: 4 * HOUR, Timer.RESOLUTION: 16 * HOUR})
    rules = rules_for(calendar, standard, urgent)
    created = datetime(2026, 3, 2, 9, tzinfo=MOSCOW)  # Monday
    change = datetime(2026, 3, 2, 14, tzinfo=MOSCOW)
    before = derive(
        [
            *opened(created, "standard", "in_progress"),
            status(datetime(2026, 3, 2, 11, tzinfo=MOSCOW), "waiting_requester"),
            status(datetime(2026, 3, 2, 13, tzinfo=MOSCOW), "in_progress"),
        ],
        rules,
    )
    after = advance(before, SlaEvent(change, EventKind.POLICY, "urgent"), rules)
    assert after.policy == "urgent"
    for timer, new_target in ((Timer.RESOLUTION, 16 * HOUR), (Timer.FIRST_RESPONSE, 4 * HOUR)):
        old, new = the(before, timer), the(after, timer)
        assert new.policy == "urgent"
        assert new.started_at == old.started_at == created
        assert new.target_s == new_target
        assert new.elapsed_s == old.elapsed_at(calendar, change) == 3 * HOUR
        assert new.paused_s == old.paused_at(calendar, change) == 2 * HOUR
        assert new.due_at(calendar) == calendar.add(change, new_target - 3 * HOUR)
    # 3 h of a new 4 h first response: the 75 % warning has passed and is not sent again
    first = the(after, Timer.FIRST_RESPONSE)
    assert first.fired == 1
    assert first.due_at(calendar) == datetime(2026, 3, 2, 15, tzinfo=MOSCOW)
    # 13 h left of 16 h: Monday 14-18 and Tuesday 09-18, met exactly at closing time
    assert the(after, Timer.RESOLUTION).due_at(calendar) == datetime(2026, 3, 3, 18, tzinfo=MOSCOW)


def test_no_breach_notice_while_paused_and_the_alarm_comes_back_shifted_by_the_pause() -> None:
    calendar = Calendar(OFFICE, "Europe/Moscow")
    policy = Policy(
        "p",
        {Timer.RESOLUTION: 4 * HOUR, Timer.FIRST_RESPONSE: 8 * HOUR, Timer.NEXT_UPDATE: HOUR},
    )
    rules = rules_for(calendar, policy)
    created = datetime(2026, 3, 2, 9, tzinfo=MOSCOW)  # Monday
    pause = datetime(2026, 3, 2, 12, tzinfo=MOSCOW)  # 3 h used of 4 h
    never_paused = the(derive(opened(created, "p", "in_progress"), rules), Timer.RESOLUTION)
    first_alarm = never_paused.next_alarm(calendar, policy.levels)
    assert first_alarm == datetime(2026, 3, 2, 12, tzinfo=MOSCOW)
    state = derive(
        [*opened(created, "p", "in_progress"), status(pause, "waiting_requester")], rules
    )
    clock = the(state, Timer.RESOLUTION)
    assert clock.state is ClockState.PAUSED
    for later in (timedelta(hours=1), timedelta(days=3), timedelta(days=400)):
        now = pause + later
        assert clock.next_alarm(calendar, policy.levels) is None
        assert clock.due_at(calendar) is None
        assert clock.elapsed_at(calendar, now) == 3 * HOUR
        assert not clock.breached_at(calendar, now)
    # a reply while paused starts nothing that could alarm
    replied = advance(state, SlaEvent(pause + timedelta(days=2), EventKind.REPLY), rules)
    assert all(c.next_alarm(calendar, policy.levels) is None for c in replied.live)
    # resumed a week later: 5 days of business time held, the alarms come back shifted by it
    resume = datetime(2026, 3, 9, 12, tzinfo=MOSCOW)
    resumed = the(advance(state, status(resume, "in_progress"), rules), Timer.RESOLUTION)
    held = resumed.paused_s
    assert held == 5 * 9 * HOUR
    assert resumed.state is ClockState.RUNNING
    assert resumed.fired == 0
    for fired in range(len(policy.levels)):
        old = replace(never_paused, fired=fired).next_alarm(calendar, policy.levels)
        new = replace(resumed, fired=fired).next_alarm(calendar, policy.levels)
        assert old is not None and new is not None
        assert new == calendar.add(old, held)
    assert resumed.due_at(calendar) == datetime(2026, 3, 9, 13, tzinfo=MOSCOW)


def test_withdrawing_the_policy_stops_every_live_clock_and_leaves_no_alarm() -> None:
    calendar = Calendar(OFFICE, "Europe/Moscow")
    policy = Policy("p", {t: 4 * HOUR for t in Timer})
    rules = rules_for(calendar, policy)
    created = datetime(2026, 3, 2, 9, tzinfo=MOSCOW)
    reply = created + timedelta(hours=1)
    withdrawn = created + timedelta(hours=2)
    state = derive(
        [
            *opened(created, "p", "in_progress"),
            SlaEvent(reply, EventKind.REPLY),
            SlaEvent(withdrawn, EventKind.POLICY, ""),
        ],
        rules,
    )
    assert state.policy == ""
    assert state.live == []
    assert the(state, Timer.FIRST_RESPONSE).state is ClockState.MET
    for timer in (Timer.RESOLUTION, Timer.NEXT_UPDATE):
        clock = the(state, timer)
        assert clock.state is ClockState.STOPPED
        assert clock.since == withdrawn
    for clock in state.clocks:
        assert clock.next_alarm(calendar, policy.levels) is None
        assert clock.due_at(calendar) is None
        assert clock.elapsed_at(calendar, withdrawn + timedelta(days=9)) == clock.elapsed_s
    # later events start nothing while no policy governs
    later = advance(state, status(withdrawn + timedelta(hours=1), "waiting_partner"), rules)
    later = advance(later, SlaEvent(withdrawn + timedelta(hours=2), EventKind.REPLY), rules)
    assert later.live == []


@pytest.mark.parametrize(
    ("quiet", "dst"),
    [
        (date(2026, 3, 20), date(2026, 3, 27)),  # clocks go forward on Sunday 29 March
        (date(2026, 10, 16), date(2026, 10, 23)),  # and back on Sunday 25 October
    ],
)
def test_the_same_local_schedule_gets_the_same_local_deadline_across_a_dst_weekend(
    quiet: date, dst: date
) -> None:
    calendar = Calendar(OFFICE, "Europe/Berlin")
    rules = rules_for(calendar, Policy("p", {Timer.RESOLUTION: 4 * HOUR}))
    local: list[tuple[int, int, int]] = []
    for friday in (quiet, dst):
        created = datetime(friday.year, friday.month, friday.day, 17, tzinfo=BERLIN)
        clock = the(derive(opened(created, "p", "in_progress"), rules), Timer.RESOLUTION)
        due = clock.due_at(calendar)
        assert due is not None
        monday = friday + timedelta(days=3)
        assert due == datetime(monday.year, monday.month, monday.day, 12, tzinfo=BERLIN)
        wall = due.astimezone(BERLIN)
        local.append((wall.weekday(), wall.hour, wall.minute))
        assert clock.elapsed_at(calendar, due) == 4 * HOUR
    assert local[0] == local[1] == (0, 12, 0)


def test_a_reopen_keeps_the_old_cycles_verdict_and_starts_a_fresh_resolution_clock() -> None:
    calendar = Calendar(OFFICE, "Europe/Moscow")
    policy = Policy("p", {t: 8 * HOUR for t in Timer})
    rules = rules_for(calendar, policy)
    created = datetime(2026, 3, 2, 9, tzinfo=MOSCOW)
    resolved = datetime(2026, 3, 2, 15, tzinfo=MOSCOW)
    disputed = datetime(2026, 3, 3, 10, tzinfo=MOSCOW)
    state = derive(
        [
            *opened(created, "p", "in_progress"),
            SlaEvent(created + timedelta(hours=1), EventKind.REPLY),
            status(resolved, "resolved"),
            status(disputed, "in_progress"),
        ],
        rules,
    )
    assert state.cycle == 2
    old = the(state, Timer.RESOLUTION, cycle=1)
    assert old.state is ClockState.MET
    assert old.elapsed_s == 6 * HOUR
    assert old.since == resolved
    assert not old.breached_at(calendar, disputed + timedelta(days=30))
    fresh = the(state, Timer.RESOLUTION, cycle=2)
    assert fresh.state is ClockState.RUNNING
    assert (fresh.started_at, fresh.since, fresh.elapsed_s, fresh.fired) == (
        disputed,
        disputed,
        0.0,
        0,
    )
    assert fresh.due_at(calendar) == datetime(2026, 3, 3, 18, tzinfo=MOSCOW)
    # responded before: the new cycle runs a next-update clock, no new first response
    assert the(state, Timer.FIRST_RESPONSE).cycle == 1
    assert the(state, Timer.NEXT_UPDATE, cycle=2).started_at == disputed
    # the old verdict stays as it was while the new cycle runs
    later = advance(state, status(disputed + timedelta(days=2), "resolved"), rules)
    assert the(later, Timer.RESOLUTION, cycle=1) == old
    assert the(later, Timer.RESOLUTION, cycle=2).elapsed_s == 8 * HOUR + 9 * HOUR + 1 * HOUR


def test_a_stop_trade_clock_counts_nights_weekends_and_holidays() -> None:
    config = SlaConfig.from_config(DEFAULT_SLA_CONFIG, list(DEFAULT_WORKFLOW.kinds))
    stop_trade = config.policies["stop-trade"]
    assert stop_trade.hours == ALWAYS
    new_year = Holidays(days_off=frozenset({date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)}))
    calendars = {
        name: Calendar(hours, "Europe/Moscow", new_year) for name, hours in config.hours.items()
    }
    rules = Rules(
        kind=DEFAULT_WORKFLOW.kind,
        pauses=config.pauses,
        policies=config.policies,
        calendar=lambda policy: calendars[policy.hours],
    )
    calendar = calendars[ALWAYS]
    created = datetime(2026, 1, 2, 22, tzinfo=MOSCOW)  # a Friday night, and a holiday
    state = derive(opened(created, "stop-trade"), rules)
    resolution, first = the(state, Timer.RESOLUTION), the(state, Timer.FIRST_RESPONSE)
    assert resolution.due_at(calendar) == datetime(2026, 1, 3, 2, tzinfo=MOSCOW)  # Saturday
    assert first.due_at(calendar) == created + timedelta(minutes=15)
    assert resolution.elapsed_at(calendar, created + timedelta(hours=3)) == 3 * HOUR
    assert resolution.breached_at(calendar, created + timedelta(hours=4, seconds=1))
    # waiting on the requester still pauses a stop-trade clock, round the clock
    paused = advance(state, status(created + timedelta(hours=1), "waiting_requester"), rules)
    clock = the(paused, Timer.RESOLUTION)
    assert clock.paused_at(calendar, created + timedelta(hours=49)) == 48 * HOUR
    # the same ticket under business hours would not have started counting before Monday
    business = the(derive(opened(created, "p1"), rules), Timer.RESOLUTION)
    assert business.elapsed_at(calendars["business"], created + timedelta(hours=58)) == 0.0


def test_a_transferred_working_day_counts_the_hours_of_the_weekday_it_names() -> None:
    # An earlier calendar gave every transferred working day Monday's hours.
    hours = Hours.parse({"mon": "09:00-10:00", "tue-fri": "09:00-18:00"})
    saturday = date(2026, 3, 7)
    calendar = Calendar(hours, "Europe/Moscow", Holidays(workdays={saturday: 1}))  # as Tuesday
    rules = rules_for(calendar, Policy("p", {Timer.RESOLUTION: 4 * HOUR}))
    created = datetime(2026, 3, 7, 9, tzinfo=MOSCOW)
    clock = the(derive(opened(created, "p"), rules), Timer.RESOLUTION)
    assert calendar.between(created, created + timedelta(days=1)) == 9 * HOUR
    assert clock.due_at(calendar) == datetime(2026, 3, 7, 13, tzinfo=MOSCOW)
