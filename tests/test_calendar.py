"""Business time for SLA clocks: the compiled calendar agrees, minute by minute, with the plain
definition (local wall time of the store's zone, its weekly hours, holidays and transferred
working days), across DST changes in zones with odd offsets, and keeps the user-facing rules."""

import functools
import threading
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import accumulate
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.calendar import (
    MAX_SPAN_YEARS,
    MINUTES_PER_DAY,
    NO_HOLIDAYS,
    Calendar,
    Holidays,
    Hours,
)
from node.domain.errors import InvalidArgument

HOUR = 3600.0
BERLIN = ZoneInfo("Europe/Berlin")
MOSCOW = ZoneInfo("Europe/Moscow")
OFFICE = Hours.parse({"mon-fri": "09:00-18:00"})

# DST zones (Lord Howe moves by 30 minutes, Chatham sits at +12:45, Santiago and Cairo change
# at local midnight), an odd fixed offset (+05:45), and Russian zones (fixed since 2014).
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Santiago",
    "Africa/Cairo",
    "Europe/Moscow",
    "Asia/Vladivostok",
    "Asia/Kamchatka",
    "Europe/Kaliningrad",
    "UTC",
)


# ---------------------------------------------------------------------------------------------
# The reference: the definition, evaluated minute by minute over UTC minutes


def day_intervals(hours: Hours, holidays: Holidays, day: date) -> tuple[tuple[int, int], ...]:
    if day in holidays.workdays:
        return hours.week[holidays.workdays[day]]
    if day in holidays.days_off:
        return ()
    return hours.week[day.weekday()]


def reference_is_open(hours: Hours, zone: ZoneInfo, holidays: Holidays, u: datetime) -> bool:
    """Whether the UTC instant u is business time, by the definition."""
    if hours.is_always:  # the one rule on top of the definition: 24/7 ignores holidays
        return True
    local = u.astimezone(zone)
    day = local.date()
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(start <= minute < end for start, end in day_intervals(hours, holidays, day))


@functools.cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC hours in 2024-2027 in which the zone's offset changes (scanned hour by hour)."""
    tz = ZoneInfo(zone)
    out: list[datetime] = []
    u = datetime(2024, 1, 1, tzinfo=UTC)
    offset = u.astimezone(tz).utcoffset()
    while u < datetime(2028, 1, 1, tzinfo=UTC):
        nxt = u + timedelta(hours=1)
        nxt_offset = nxt.astimezone(tz).utcoffset()
        if nxt_offset != offset:
            out.append(u)
        u, offset = nxt, nxt_offset
    return tuple(out)


def test_the_transition_finder_sees_berlins_last_sundays_of_march_and_october() -> None:
    found = [t.date() for t in transitions("Europe/Berlin")]
    expected = []
    for year in range(2024, 2028):
        for month in (3, 10):
            last = date(year, month, 31)
            expected.append(last - timedelta(days=(last.weekday() - 6) % 7))
    assert found == expected
    assert len(transitions("Australia/Lord_Howe")) == 8
    assert transitions("Europe/Moscow") == ()


# ---------------------------------------------------------------------------------------------
# Strategies

minutes_of_day = st.one_of(
    st.integers(0, MINUTES_PER_DAY),
    st.sampled_from([0, 60, 120, 150, 180, 210, 1380, 1410, MINUTES_PER_DAY]),
)


@st.composite
def days(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    count = draw(st.integers(0, 3))
    points = sorted(set(draw(st.lists(minutes_of_day, min_size=2 * count, max_size=2 * count))))
    if len(points) % 2:
        points.pop()
    return tuple((points[i], points[i + 1]) for i in range(0, len(points), 2))


@st.composite
def hours_strategy(draw: st.DrawFn) -> Hours:
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return Hours.always()
    if kind == 1:
        return Hours(week=((),) * 7)
    if kind == 2:  # touching days: open until 24:00 and again from 00:00
        return Hours(week=(((0, 600), (1200, MINUTES_PER_DAY)),) * 7)
    return Hours(week=tuple(draw(days()) for _ in range(7)))


@dataclass(frozen=True)
class Scenario:
    hours: Hours
    zone: str
    holidays: Holidays
    start: datetime  # UTC, whole minute
    minutes: int  # window length

    def at(self, minute: int, second: int = 0) -> datetime:
        return self.start + timedelta(minutes=minute, seconds=second)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone = draw(st.sampled_from(ZONES))
    near = transitions(zone)
    if near and draw(st.integers(0, 3)) > 0:  # mostly around a DST change
        anchor = draw(st.sampled_from(near))
        start = anchor + timedelta(minutes=draw(st.integers(-5 * MINUTES_PER_DAY, 2 * 1440)))
    else:
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 4 * 365 * MINUTES_PER_DAY))
        )
    minutes = draw(st.integers(1, 10 * MINUTES_PER_DAY))
    first_day = (start - timedelta(days=1)).date()
    off = draw(st.lists(st.integers(0, 12), max_size=4, unique=True))
    worked = draw(st.dictionaries(st.integers(0, 12), st.integers(0, 6), max_size=3))
    holidays = Holidays(
        days_off=frozenset(first_day + timedelta(days=d) for d in off),
        workdays={first_day + timedelta(days=d): w for d, w in worked.items()},
    )
    return Scenario(draw(hours_strategy()), zone, holidays, start, minutes)


# ---------------------------------------------------------------------------------------------
# The compiled calendar agrees with the reference


@settings(max_examples=100, deadline=None)
@given(sc=scenarios(), data=st.data())
def test_the_calendar_agrees_with_the_minute_by_minute_definition(
    sc: Scenario, data: st.DataObject
) -> None:
    calendar = Calendar(sc.hours, sc.zone, sc.holidays)
    tz = ZoneInfo(sc.zone)
    is_open = [reference_is_open(sc.hours, tz, sc.holidays, sc.at(m)) for m in range(sc.minutes)]
    counted = [0, *accumulate(is_open)]  # counted[m]: open minutes before minute m
    n = sc.minutes
    index = st.integers(0, n)

    # between == 60 * the open minutes, over the window and sub-windows
    assert calendar.between(sc.at(0), sc.at(n)) == 60.0 * counted[n]
    for _ in range(4):
        i, j = sorted((data.draw(index), data.draw(index)))
        assert calendar.between(sc.at(i), sc.at(j)) == 60.0 * (counted[j] - counted[i])
        assert calendar.between(sc.at(j), sc.at(i)) == 0.0 or i == j

    # add(start, k minutes) == the end of the k-th open minute at or after start
    for _ in range(3):
        i = data.draw(st.integers(0, n - 1))
        available = counted[n] - counted[i]
        if available:
            k = data.draw(st.integers(1, available))
            m = bisect_left(counted, counted[i] + k) - 1  # the minute whose end reaches k
            assert calendar.add(sc.at(i), k * 60) == sc.at(m + 1)
            assert calendar.add(sc.at(i), k * 60 - 30) == sc.at(m, 30)

    # is_open agrees at minute starts and mid-minute; next_open finds the next open minute
    for _ in range(6):
        m = data.draw(st.integers(0, n - 1))
        assert calendar.is_open(sc.at(m)) is is_open[m]
        assert calendar.is_open(sc.at(m, 59)) is is_open[m]
        if any(is_open[m:]):
            first = is_open.index(True, m)
            assert calendar.next_open(sc.at(m)) == sc.at(first)

    # the round trip is exact, and both are monotone
    i = data.draw(st.integers(0, n - 1))
    if not sc.hours.is_never:
        # up to 3 business days: a calendar open one minute a week needs 83 years for that
        s1, s2 = sorted(data.draw(st.integers(0, 3 * 86_400_000_000)) / 1e6 for _ in range(2))
        t1, t2 = calendar.add(sc.at(i), s1), calendar.add(sc.at(i), s2)
        assert sc.at(i) <= t1 <= t2
        assert calendar.between(sc.at(i), t1) == s1
        assert calendar.between(sc.at(i), t2) == s2
        assert calendar.add(t1, s2 - s1) == t2  # two steps end where one step does
    j, k = sorted((data.draw(index), data.draw(index)))
    assert calendar.between(sc.at(0), sc.at(j)) <= calendar.between(sc.at(0), sc.at(k))


@settings(max_examples=40, deadline=None)
@given(
    sc=scenarios(),
    offset_us=st.integers(0, 59_999_999),
    tz_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_instants_in_any_zone_and_to_the_microsecond(
    sc: Scenario, offset_us: int, tz_minutes: int
) -> None:
    calendar = Calendar(sc.hours, sc.zone, sc.holidays)
    start = sc.at(0) + timedelta(microseconds=offset_us)
    end = sc.at(sc.minutes) + timedelta(microseconds=offset_us)
    other = timezone(timedelta(minutes=tz_minutes))
    seconds = calendar.between(start, end)
    assert calendar.between(start.astimezone(other), end.astimezone(other)) == seconds
    if seconds:
        deadline = calendar.add(start.astimezone(other), seconds)
        assert deadline.tzinfo is UTC
        assert deadline <= end
        assert calendar.between(start, deadline) == seconds


# ---------------------------------------------------------------------------------------------
# The rules users see


def berlin(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=BERLIN)


def test_a_pause_from_friday_17_to_monday_10_holds_two_business_hours() -> None:
    calendar = Calendar(OFFICE, "Europe/Berlin")
    assert calendar.between(berlin(2026, 6, 5, 17), berlin(2026, 6, 8, 10)) == 2 * HOUR


def test_a_four_hour_target_from_monday_17_falls_due_tuesday_11_not_at_midnight() -> None:
    calendar = Calendar(Hours.parse({"mon-fri": "08:00-18:00"}), "Europe/Berlin")
    created = berlin(2026, 6, 1, 17)  # a Monday
    assert calendar.add(created, 4 * HOUR) == berlin(2026, 6, 2, 11)
    assert calendar.add(created, 3 * HOUR) == berlin(2026, 6, 2, 10)  # 1 h before the deadline
    assert calendar.add(created, 1 * HOUR) == berlin(2026, 6, 1, 18)  # met at closing time


@pytest.mark.parametrize(
    ("friday", "monday"),
    [
        ((2026, 3, 20), (2026, 3, 23)),  # a plain weekend
        ((2026, 3, 27), (2026, 3, 30)),  # clocks go forward on Sunday, March 29
        ((2026, 10, 23), (2026, 10, 26)),  # clocks go back on Sunday, October 25
    ],
)
def test_the_same_local_schedule_gives_the_same_local_deadline_across_a_dst_change(
    friday: tuple[int, int, int], monday: tuple[int, int, int]
) -> None:
    calendar = Calendar(OFFICE, "Europe/Berlin")
    created = berlin(*friday, 16)
    deadline = calendar.add(created, 4 * HOUR)
    assert deadline.tzinfo is UTC
    assert deadline == berlin(*monday, 11)
    assert deadline.astimezone(BERLIN).hour == 11
    assert calendar.between(created, deadline) == 4 * HOUR


def test_a_round_the_clock_calendar_counts_real_hours_across_a_dst_change() -> None:
    calendar = Calendar(Hours.always(), "Europe/Berlin")
    assert calendar.between(berlin(2026, 3, 28, 12), berlin(2026, 3, 29, 12)) == 23 * HOUR
    assert calendar.between(berlin(2026, 10, 24, 12), berlin(2026, 10, 25, 12)) == 25 * HOUR


def test_working_hours_follow_wall_time_on_dst_nights() -> None:
    night = Calendar(Hours.parse({"daily": "00:00-06:00"}), "Europe/Berlin")
    spring = berlin(2026, 3, 29)
    autumn = berlin(2026, 10, 25)
    assert night.between(spring, spring + timedelta(days=1)) == 5 * HOUR  # 02-03 never happens
    assert night.between(autumn, autumn + timedelta(days=1)) == 7 * HOUR  # 02-03 happens twice
    gap = Calendar(Hours.parse({"sun": "02:15-02:45"}), "Europe/Berlin")
    assert gap.between(spring, spring + timedelta(days=1)) == 0.0


def test_a_transferred_working_saturday_counts_and_a_holiday_monday_does_not() -> None:
    holidays = Holidays(
        days_off=frozenset({date(2025, 11, 3), date(2025, 11, 4)}),
        workdays={date(2025, 11, 1): 0},  # Saturday works Monday's hours
    )
    calendar = Calendar(OFFICE, "Europe/Moscow", holidays)
    sat, sun, mon, wed = (datetime(2025, 11, d, tzinfo=MOSCOW) for d in (1, 2, 3, 5))
    assert calendar.between(sat, sun) == 9 * HOUR
    assert calendar.between(mon, wed) == 0.0
    assert calendar.is_open(sat.replace(hour=10))
    assert not calendar.is_open(mon.replace(hour=10))
    assert calendar.next_open(mon.replace(hour=10)) == wed.replace(hour=9)
    plain = Calendar(OFFICE, "Europe/Moscow")
    assert plain.between(sat, sun) == 0.0
    assert plain.between(mon, wed) == 18 * HOUR


def test_a_transferred_working_day_works_the_hours_of_the_weekday_it_names() -> None:
    hours = Hours.parse({"mon": "09:00-18:00", "tue-fri": "10:00-12:00"})
    holidays = Holidays(workdays={date(2025, 11, 1): 1})  # Saturday works Tuesday's hours
    calendar = Calendar(hours, "Europe/Moscow", holidays)
    sat = datetime(2025, 11, 1, tzinfo=MOSCOW)
    assert calendar.between(sat, sat + timedelta(days=1)) == 2 * HOUR


def test_a_workday_entry_wins_over_a_day_off() -> None:
    day = date(2026, 6, 3)
    holidays = Holidays(days_off=frozenset({day}), workdays={day: 2})
    calendar = Calendar(OFFICE, "Europe/Moscow", holidays)
    start = datetime(2026, 6, 3, tzinfo=MOSCOW)
    assert calendar.between(start, start + timedelta(days=1)) == 9 * HOUR


def test_round_the_clock_ignores_holidays_stop_trade_runs_whatever_the_day() -> None:
    holidays = Holidays(days_off=frozenset({date(2026, 1, 1), date(2026, 1, 2)}))
    calendar = Calendar(Hours.always(), "Europe/Moscow", holidays)
    new_year = datetime(2026, 1, 1, tzinfo=MOSCOW)
    assert calendar.between(new_year, new_year + timedelta(days=2)) == 48 * HOUR
    assert calendar.is_open(new_year)
    assert calendar.add(new_year, 4 * HOUR) == new_year + timedelta(hours=4)
    assert calendar.next_open(new_year) == new_year


def test_a_calendar_that_is_never_open() -> None:
    calendar = Calendar(Hours.parse({}), "Europe/Moscow")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert calendar.between(start, start + timedelta(days=30)) == 0.0
    assert not calendar.is_open(start)
    assert calendar.add(start, 0) == start
    with pytest.raises(ValueError, match="never"):
        calendar.add(start, 1)
    with pytest.raises(ValueError, match="never"):
        calendar.next_open(start)


def test_results_are_utc_and_add_of_nothing_is_the_start() -> None:
    calendar = Calendar(OFFICE, "Asia/Kathmandu")
    start = datetime(2026, 6, 6, 12, tzinfo=ZoneInfo("Asia/Kathmandu"))  # Saturday
    for result in (
        calendar.add(start, 0),
        calendar.add(start, -5),
        calendar.add(start, 60),
        calendar.next_open(start),
    ):
        assert result.tzinfo is UTC
    assert calendar.add(start, 0) == start
    assert calendar.add(start, -5) == start
    assert calendar.next_open(start) == datetime(2026, 6, 8, 9, tzinfo=ZoneInfo("Asia/Kathmandu"))
    assert calendar.between(start, start) == 0.0


def test_naive_datetimes_are_refused() -> None:
    calendar = Calendar(OFFICE, "Europe/Berlin")
    naive = datetime(2026, 6, 1, 12)
    aware = naive.replace(tzinfo=UTC)
    for call in (
        lambda: calendar.between(naive, aware),
        lambda: calendar.between(aware, naive),
        lambda: calendar.add(naive, 60),
        lambda: calendar.is_open(naive),
        lambda: calendar.next_open(naive),
    ):
        with pytest.raises(ValueError, match="naive"):
            call()
    with pytest.raises(ValueError, match="finite"):
        calendar.add(aware, float("nan"))


def test_long_spans_compile_more_years_in_both_directions() -> None:
    calendar = Calendar(OFFICE, "America/New_York")
    ny = ZoneInfo("America/New_York")
    years = [
        calendar.between(datetime(y, 1, 1, tzinfo=ny), datetime(y + 1, 1, 1, tzinfo=ny))
        for y in (2027, 2020, 2031, 2024)
    ]
    assert all(260 * 9 * HOUR <= y <= 262 * 9 * HOUR for y in years)
    total = calendar.between(datetime(2019, 1, 1, tzinfo=ny), datetime(2033, 1, 1, tzinfo=ny))
    fresh = Calendar(OFFICE, "America/New_York")
    assert total == sum(
        fresh.between(datetime(y, 1, 1, tzinfo=ny), datetime(y + 1, 1, 1, tzinfo=ny))
        for y in range(2019, 2033)
    )
    start = datetime(2026, 12, 30, 12, tzinfo=ny)
    far = calendar.add(start, 20_000 * HOUR)  # about eight and a half working years
    assert calendar.between(start, far) == 20_000 * HOUR
    assert far.astimezone(ny).year == 2035


def test_a_calendar_covers_at_most_max_span_years() -> None:
    calendar = Calendar(OFFICE, "Europe/Berlin")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=f"at most {MAX_SPAN_YEARS}"):
        calendar.between(start, datetime(9999, 12, 31, tzinfo=UTC))
    assert calendar.between(start, start + timedelta(days=7)) == 5 * 9 * HOUR  # still fine
    sparse = Calendar(Hours(week=((),) * 6 + (((0, 1),),)), "Europe/Berlin")  # 1 min a week
    with pytest.raises(ValueError, match=f"within {MAX_SPAN_YEARS} years"):
        sparse.add(start, 30 * 86_400)
    assert sparse.add(start, 60) == datetime(2026, 1, 3, 23, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Pacific/Kiritimati", datetime(9999, 12, 29, tzinfo=UTC)),  # UTC+14
        ("America/Adak", datetime(1, 1, 1, tzinfo=UTC)),  # local mean time, -11:46:38
        ("Asia/Kolkata", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_first_and_last_years_of_datetime_work(zone: str, start: datetime) -> None:
    calendar = Calendar(Hours.parse({"daily": "09:00-18:00"}), zone)
    deadline = calendar.add(start, 5 * HOUR)
    assert start < deadline < start + timedelta(days=2)
    # epoch microseconds leave the exact range of a float so far from 1970
    assert calendar.between(start, deadline) == pytest.approx(5 * HOUR, abs=1e-3)
    assert calendar.is_open(deadline - timedelta(minutes=1))


def test_concurrent_readers_see_consistent_answers() -> None:
    calendar = Calendar(OFFICE, "Europe/Berlin", Holidays(days_off=frozenset({date(2030, 5, 1)})))
    reference = Calendar(OFFICE, "Europe/Berlin", Holidays(days_off=frozenset({date(2030, 5, 1)})))
    starts = [datetime(2000 + 3 * i, 3, 27, 16, tzinfo=UTC) for i in range(12)]
    expected = [reference.add(s, 100 * HOUR) for s in starts]
    errors: list[BaseException] = []

    def read(order: list[int]) -> None:
        try:
            for i in order:
                assert calendar.add(starts[i], 100 * HOUR) == expected[i]
                assert calendar.between(starts[i], expected[i]) == 100 * HOUR
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=read, args=(list(range(12))[k:] + list(range(12))[:k],))
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---------------------------------------------------------------------------------------------
# Hours and holidays


def test_hours_parse_reads_ranges_overrides_and_24_00() -> None:
    hours = Hours.parse(
        {
            "daily": "10:00-16:00",
            "mon-fri": "09:00-18:00",
            "sat": ["15:00-17:00", "10:00-14:00"],
            "fri": ["08:00-12:00", "12:00-24:00"],
            "sun": [],
        }
    )
    assert hours.week == (
        ((540, 1080),),
        ((540, 1080),),
        ((540, 1080),),
        ((540, 1080),),
        ((480, 1440),),  # touching intervals are merged
        ((600, 840), (900, 1020)),
        (),
    )
    assert Hours.parse({"daily": "00:00-24:00"}) == Hours.always()
    assert Hours.always().is_always
    assert not OFFICE.is_always
    assert Hours.parse({"MON": "9:00 - 18:00", "tue": "closed"}).week[:2] == (((540, 1080),), ())


@pytest.mark.parametrize(
    ("spec", "field", "rule"),
    [
        ({"sat": "10:00-09:00"}, "hours.sat", "'10:00-09:00' ends before it starts"),
        ({"sat": "10:00-10:00"}, "hours.sat", "'10:00-10:00' is empty"),
        ({"mon-fri": ["09:00-14:00", "13:00-18:00"]}, "hours.mon-fri", "overlaps"),
        ({"mon": "24:00-24:00"}, "hours.mon", "24:00 may only end"),
        ({"tue": "09:00-25:00"}, "hours.tue", "not a time of day"),
        ({"tue": "09:60-10:00"}, "hours.tue", "not a time of day"),
        ({"tue": "nine to five"}, "hours.tue", "is not 'HH:MM-HH:MM'"),
        ({"tue": "0900-1800"}, "hours.tue", "is not 'HH:MM-HH:MM'"),
        ({"wed": 9}, "hours.wed", "must be 'HH:MM-HH:MM'"),
        ({"wed": [9]}, "hours.wed", "is not a string"),
        ({"funday": "09:00-18:00"}, "hours.funday", "unknown day"),
        ({"mon-funday": "09:00-18:00"}, "hours.mon-funday", "unknown day"),
        ({"fri-mon": "09:00-18:00"}, "hours.fri-mon", "runs backwards"),
    ],
)
def test_hours_parse_errors_name_the_key_and_the_rule(
    spec: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Hours.parse(spec)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_hours_parse_error_for_an_interval_that_ends_before_it_starts_is_exact() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Hours.parse({"mon-fri": "09:00-18:00", "sat": ["10:00-09:00"]})
    assert (caught.value.field, caught.value.rule) == (
        "hours.sat",
        "'10:00-09:00' ends before it starts",
    )


def test_hours_refuses_a_malformed_week() -> None:
    with pytest.raises(InvalidArgument, match="7 days"):
        Hours(week=((),) * 6)
    with pytest.raises(InvalidArgument, match=r"hours\.tue"):
        Hours(week=((), ((600, 500),), (), (), (), (), ()))
    with pytest.raises(InvalidArgument, match=r"hours\.mon.*overlaps"):
        Hours(week=(((0, 600), (500, 700)), (), (), (), (), (), ()))
    with pytest.raises(InvalidArgument, match=r"hours\.sun"):
        Hours(week=((), (), (), (), (), (), ((0, 1441),)))
    touching = Hours(week=(((0, 600), (600, 700)), (), (), (), (), (), ()))
    assert touching.week[0] == ((0, 700),)
    assert hash(touching) == hash(Hours(week=(((0, 700),), (), (), (), (), (), ())))


def test_an_unknown_time_zone_is_refused() -> None:
    for zone in ("Mars/Olympus_Mons", "", "../etc/passwd", "Europe"):
        with pytest.raises(InvalidArgument) as caught:
            Calendar(OFFICE, zone)
        assert caught.value.field == "timezone"
    assert Calendar(OFFICE, "Asia/Kamchatka").zone == "Asia/Kamchatka"


def test_holidays_merge_and_compare() -> None:
    a = Holidays(days_off=frozenset({date(2026, 1, 1)}), workdays={date(2026, 1, 3): 0})
    b = Holidays(days_off=frozenset({date(2026, 1, 2)}), workdays={date(2026, 1, 3): 4})
    merged = a.merged(b)
    assert merged.days_off == {date(2026, 1, 1), date(2026, 1, 2)}
    assert dict(merged.workdays) == {date(2026, 1, 3): 4}
    assert a.merged(NO_HOLIDAYS) == a
    assert hash(a.merged(NO_HOLIDAYS)) == hash(a)
    assert not NO_HOLIDAYS
    with pytest.raises(TypeError):
        a.workdays[date(2026, 1, 4)] = 0  # type: ignore[index]


def test_holidays_refuse_bad_entries() -> None:
    with pytest.raises(InvalidArgument, match="weekday"):
        Holidays(workdays={date(2026, 1, 3): 7})
    with pytest.raises(InvalidArgument, match="not a date"):
        Holidays(days_off=frozenset({datetime(2026, 1, 1, tzinfo=UTC)}))
