"""Business time for SLA clocks: working seconds between two instants, and when a clock
that runs only in working hours reaches a target.

The ground truth
----------------
A store works to weekly `Hours` in its IANA time zone, with `Holidays` of its region. A UTC
instant ``u`` is business time iff, with ``local = u.astimezone(zone)`` and
``day = local.date()``, the local time of day (``local.hour * 60 + local.minute``, plus
seconds) lies in one of the day's intervals, where the day's intervals are:

* ``hours.week[holidays.workdays[day]]`` if the day is a transferred working day (a worked
  Saturday says whose hours it works, e.g. Monday's);
* ``()`` if the day is a day off;
* ``hours.week[day.weekday()]`` otherwise.

Wall time is what counts: on a spring-forward day a local interval inside the gap contributes
nothing, and on a fall-back day a repeated local hour counts twice (once per pass). `between`
measures business seconds in ``[start, end)``; `add` returns the earliest instant at which
that count reaches a target, so a target met exactly at closing time is met at closing time
(Monday 18:00), not at the next opening.

Hours that cover the whole week (`Hours.always`, the stop-trade clock) mean *never closed*:
such a calendar ignores holidays, since a store that cannot sell is served round the clock
whatever day it is.

How it is computed
------------------
Converting every instant to local time and walking the days would cost far too much for an
SLA engine that asks 100,000 times a second. Instead a `Calendar` compiles itself, lazily and
one UTC year at a time, into a *timeline*: the sorted, disjoint UTC segments in which it is
open, kept as parallel lists of floats (epoch microseconds, which floats hold exactly until
the year 2255):

    starts[i], ends[i]    the i-th segment [starts[i], ends[i])
    before[i], after[i]   business microseconds from the timeline's start to starts[i]
                          and to ends[i]

With ``elapsed(t)`` the business time up to ``t`` (one `bisect` in ``starts``, then
``before[i] + min(t, ends[i]) - starts[i]``), ``between(a, b) = elapsed(b) - elapsed(a)``;
`add` looks up ``elapsed(a) + seconds`` in ``after`` with one more bisect; `is_open` is one
bisect. Each call costs a few microseconds, most of it converting datetimes. Callers that
look up many instants at once take the timeline itself (`Calendar.timeline`) and bisect
in bulk.

Compiling a year is exact on DST days. The year's UTC span is cut into pieces of constant
UTC offset: the offset is probed once a UTC day and, where two probes differ, the change is
located by bisection to the second (the tz database changes offsets only on whole seconds;
the probe step assumes a zone never changes its offset and changes it back within one day).
Within a piece local wall time is UTC plus a constant, so each local day's intervals that
fall in the piece map linearly to UTC (clipped to the piece). A gap hides the local times it
skips; a repeated hour belongs to two pieces and is counted in both. Segments that touch
(24/7, or a day open until 24:00 followed by one opening at 00:00, or the seam between two
compiled years) are merged. The offset pieces depend on the zone only and are shared by all
calendars of that zone.

The timeline grows in both directions on demand (by whole years; `add` guesses how many
from the business time per year so far) and is replaced, never mutated, under a lock, so
concurrent readers always see a consistent snapshot. It spans at most `MAX_SPAN_YEARS`
consecutive years. Calendars that are never open,
or always open, take a fast path with no timeline.

Precision: instants are taken to the microsecond (Python's resolution) and durations are
rounded to the microsecond, so `between`, `add` and their round trip are exact for any
datetimes from 1685 to 2255 and any duration given in whole microseconds.
"""

import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import accumulate
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from node.domain.errors import InvalidArgument

MINUTES_PER_DAY = 1440
MAX_SPAN_YEARS = 200
"""The most consecutive years one calendar compiles (about 50 kB a year); a call that needs
more (a century-long `between`, a target no schedule meets within it) raises ValueError."""
DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_US: Final = 1_000_000  # microseconds per second
_DAY_S: Final = 86_400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_MAX_ORDINAL: Final = date.max.toordinal()
_EPOCH_WEEKDAY: Final = 3  # 1970-01-01 was a Thursday
_LAST_YEAR: Final = 9999  # datetime's last year
_OFFSET_PROBE_S: Final = _DAY_S
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
# Below 2**33 seconds from 1970 (1697..2242) a float of seconds is within half a microsecond
# of every instant, so fromtimestamp() rounds back to the exact microsecond.
_FROMTIMESTAMP_EXACT: Final = float(2**33 * _US)
# tzinfo types whose utcoffset() is never None: skip the naive check for them.
_NEVER_NAIVE: Final = frozenset({timezone, ZoneInfo})

_Interval = tuple[int, int]
_Day = tuple[_Interval, ...]
_Segment = tuple[int, int]  # UTC epoch seconds [start, end)


# ---------------------------------------------------------------------------------------------
# Weekly hours


def _check_day(field_name: str, day: object) -> _Day:
    """Validates one day's intervals and merges those that touch."""
    if not isinstance(day, tuple | list):
        raise InvalidArgument(field_name, "must be a sequence of (start_minute, end_minute)")
    out: list[_Interval] = []
    for item in day:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise InvalidArgument(field_name, f"{item!r} is not a (start_minute, end_minute) pair")
        start, end = item
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise InvalidArgument(field_name, f"{item!r} must hold whole minutes")
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise InvalidArgument(
                field_name, f"{item!r} must satisfy 0 <= start < end <= {MINUTES_PER_DAY}"
            )
        if out and start < out[-1][1]:
            raise InvalidArgument(
                field_name, f"{item!r} overlaps or precedes {out[-1]!r}; sort the intervals"
            )
        if out and start == out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _clock(field_name: str, text: str, value: str, *, is_end: bool) -> int:
    """Minutes of the day for 'HH:MM' (24:00 only as an end)."""
    hh, sep, mm = value.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and 1 <= len(hh) <= 2 and len(mm) == 2):
        raise InvalidArgument(field_name, f"{text!r} is not 'HH:MM-HH:MM'")
    hour, minute = int(hh), int(mm)
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise InvalidArgument(field_name, f"{text!r}: {value!r} is not a time of day")
    if hour == 24 and not is_end:
        raise InvalidArgument(field_name, f"{text!r} starts at 24:00; 24:00 may only end hours")
    return hour * 60 + minute


def _parse_interval(field_name: str, text: object) -> _Interval:
    if not isinstance(text, str):
        raise InvalidArgument(field_name, f"{text!r} is not a string 'HH:MM-HH:MM'")
    left, sep, right = text.partition("-")
    if not sep:
        raise InvalidArgument(field_name, f"{text!r} is not 'HH:MM-HH:MM'")
    start = _clock(field_name, text, left.strip(), is_end=False)
    end = _clock(field_name, text, right.strip(), is_end=True)
    if end < start:
        raise InvalidArgument(field_name, f"{text!r} ends before it starts")
    if end == start:
        raise InvalidArgument(field_name, f"{text!r} is empty")
    return (start, end)


def _parse_days(field_name: str, key: str) -> range:
    """Weekday numbers (0 = Monday) a spec key names."""
    name = key.strip().lower()
    if name == "daily":
        return range(7)
    first, sep, last = name.partition("-")
    if first in DAY_NAMES and (not sep or last in DAY_NAMES):
        lo = DAY_NAMES.index(first)
        hi = DAY_NAMES.index(last) if sep else lo
        if hi < lo:
            raise InvalidArgument(
                field_name, f"{key!r} runs backwards; name days Monday to Sunday, e.g. 'fri-sun'"
            )
        return range(lo, hi + 1)
    raise InvalidArgument(
        field_name,
        "unknown day; use mon, tue, wed, thu, fri, sat, sun, a range such as 'mon-fri', or 'daily'",
    )


def _parse_value(field_name: str, value: object) -> _Day:
    if isinstance(value, str):
        items: list[object] = [] if value.strip().lower() == "closed" else [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise InvalidArgument(
            field_name, "must be 'HH:MM-HH:MM', a list of them, or 'closed' (or [])"
        )
    intervals = sorted(
        ((_parse_interval(field_name, item), item) for item in items), key=lambda p: p[0]
    )
    out: list[_Interval] = []
    previous = ""
    for (start, end), text in intervals:
        if out and start < out[-1][1]:
            raise InvalidArgument(field_name, f"{previous!r} overlaps {text!r}")
        if out and start == out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
        previous = str(text)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Hours:
    """Weekly working hours in local wall time.

    Attributes:
        week: exactly 7 entries, Monday first; each a sorted tuple of non-overlapping
            ``(start_minute, end_minute)`` intervals of the local day with
            ``0 <= start < end <= 1440``. Intervals that touch are merged on construction,
            so equal schedules compare equal.

    Raises:
        InvalidArgument: on construction, for a week that breaks these rules.
    """

    week: tuple[tuple[tuple[int, int], ...], ...]

    def __post_init__(self) -> None:
        week: object = self.week
        if not isinstance(week, tuple | list) or len(week) != 7:
            raise InvalidArgument("hours", "needs exactly 7 days, Monday first")
        checked = tuple(_check_day(f"hours.{DAY_NAMES[i]}", day) for i, day in enumerate(week))
        object.__setattr__(self, "week", checked)

    @classmethod
    def always(cls) -> "Hours":
        """Round the clock, every day: the stop-trade clock. Ignores holidays (see module)."""
        return cls(week=(((0, MINUTES_PER_DAY),),) * 7)

    @classmethod
    def parse(cls, spec: Mapping[str, object]) -> "Hours":
        """Reads hours as a store's configuration writes them.

        Keys are ``mon tue wed thu fri sat sun``, forward ranges such as ``"mon-fri"``, or
        ``"daily"``; a later key overrides an earlier one for the days it names, and days no
        key names are closed. A value is ``"HH:MM-HH:MM"`` (``24:00`` allowed as an end), a
        list of them, or ``"closed"`` / ``[]``. Intervals of one day that touch are merged.

        Args:
            spec: e.g. ``{"mon-fri": "09:00-18:00", "sat": ["10:00-14:00", "15:00-17:00"]}``.

        Returns:
            The weekly hours.

        Raises:
            InvalidArgument: field ``hours.<key>`` names the key at fault and the rule says
                what is wrong, e.g. ``hours.sat: '10:00-09:00' ends before it starts``;
                overlapping intervals are refused.
        """
        if not isinstance(spec, Mapping):
            raise InvalidArgument("hours", "must be a mapping of days to hours")
        week: list[_Day] = [()] * 7
        for key, value in spec.items():
            if not isinstance(key, str):
                raise InvalidArgument("hours", f"key {key!r} is not a string")
            field_name = f"hours.{key}"
            days = _parse_days(field_name, key)
            intervals = _parse_value(field_name, value)
            for weekday in days:
                week[weekday] = intervals
        return cls(week=tuple(week))

    @property
    def is_always(self) -> bool:
        """True if every minute of the week is working time."""
        return all(day == ((0, MINUTES_PER_DAY),) for day in self.week)

    @property
    def is_never(self) -> bool:
        """True if no day has working time."""
        return not any(self.week)


# ---------------------------------------------------------------------------------------------
# Holidays


def _check_date(field_name: str, value: object) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidArgument(field_name, f"{value!r} is not a date")
    return value


@dataclass(frozen=True, slots=True)
class Holidays:
    """Days off and transferred working days of one region.

    Attributes:
        days_off: local dates on which the store is closed.
        workdays: transferred working days: date -> weekday (0 = Monday) whose hours the date
            works (a worked Saturday standing for a Monday works Monday's hours). A workday
            entry wins over a day off on the same date.

    Raises:
        InvalidArgument: on construction, for entries that are not dates or weekdays.
    """

    days_off: frozenset[date] = frozenset()
    workdays: Mapping[date, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        days_off = frozenset(_check_date("holidays.days_off", d) for d in self.days_off)
        workdays: dict[date, int] = {}
        for day, weekday in self.workdays.items():
            _check_date("holidays.workdays", day)
            if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday < 7:
                raise InvalidArgument(
                    "holidays.workdays", f"{day}: weekday {weekday!r} is not 0 (Mon) to 6 (Sun)"
                )
            workdays[day] = weekday
        object.__setattr__(self, "days_off", days_off)
        object.__setattr__(self, "workdays", MappingProxyType(workdays))

    def __hash__(self) -> int:
        return hash((self.days_off, frozenset(self.workdays.items())))

    def __bool__(self) -> bool:
        return bool(self.days_off or self.workdays)

    def merged(self, other: "Holidays") -> "Holidays":
        """Both regions' days: the union of days off and of workdays.

        Args:
            other: the holidays to add; where both name a workday, ``other``'s weekday wins.

        Returns:
            New holidays; neither operand changes.
        """
        return Holidays(
            days_off=self.days_off | other.days_off,
            workdays={**self.workdays, **other.workdays},
        )


NO_HOLIDAYS = Holidays()


# ---------------------------------------------------------------------------------------------
# Offsets of a zone: constant-offset pieces of a UTC year, shared by all calendars


_PIECES: dict[tuple[str, int], tuple[tuple[int, int, int], ...]] = {}
_PIECES_MAX = 20_000


def _year_start(year: int) -> int:
    """UTC epoch seconds of January 1 of ``year`` (1 <= year <= 10000)."""
    ordinal = date(year, 1, 1).toordinal() if year <= _LAST_YEAR else _MAX_ORDINAL + 1
    return (ordinal - _EPOCH_ORDINAL) * _DAY_S


_FIRST_PROBE: Final = _year_start(1) + 2 * _DAY_S
_LAST_PROBE: Final = _year_start(_LAST_YEAR + 1) - 2 * _DAY_S


def _year_of(us: float) -> int:
    """The UTC year of an instant in epoch microseconds."""
    ordinal = int(us // (_DAY_S * _US)) + _EPOCH_ORDINAL
    return date.fromordinal(min(max(ordinal, 1), _MAX_ORDINAL)).year


def _offset(zone: ZoneInfo, second: int) -> int:
    """The zone's UTC offset in seconds at a UTC epoch second."""
    # datetime cannot show local times outside the years 1..9999: probe a little inside them
    second = min(max(second, _FIRST_PROBE), _LAST_PROBE)
    delta = datetime.fromtimestamp(second, zone).utcoffset()
    assert delta is not None  # a ZoneInfo always knows its offset
    return delta.days * _DAY_S + delta.seconds


def _offset_pieces(zone: ZoneInfo, year: int) -> tuple[tuple[int, int, int], ...]:
    """The UTC year cut into ``(start, end, offset)`` pieces of constant offset (seconds)."""
    key = (zone.key, year)
    cached = _PIECES.get(key)
    if cached is not None:
        return cached
    lo, hi = _year_start(year), _year_start(year + 1)
    pieces: list[tuple[int, int, int]] = []
    start, current = lo, _offset(zone, lo)
    x, last = lo, hi - 1
    while x < last:
        y = min(x + _OFFSET_PROBE_S, last)
        if _offset(zone, y) == current:
            x = y
            continue
        while y - x > 1:  # offset(x) == current != offset(y): find the change to the second
            mid = (x + y) // 2
            if _offset(zone, mid) == current:
                x = mid
            else:
                y = mid
        pieces.append((start, y, current))
        start, current, x = y, _offset(zone, y), y
    pieces.append((start, hi, current))
    result = tuple(pieces)
    if len(_PIECES) >= _PIECES_MAX:
        _PIECES.clear()
    _PIECES[key] = result
    return result


def _join(out: list[_Segment], right: Iterable[_Segment]) -> list[_Segment]:
    """Appends segments that follow ``out`` to it, merging across a seam where they touch."""
    for seg in right:
        if out and out[-1][1] == seg[0]:
            out[-1] = (out[-1][0], seg[1])
        else:
            out.append(seg)
    return out


# ---------------------------------------------------------------------------------------------
# The compiled timeline


class Timeline:
    """Business segments of whole UTC years ``first_year..last_year``; never mutated.

    Attributes:
        starts, ends: the segments ``[starts[i], ends[i])``, epoch microseconds, ascending.
        before, after: business microseconds from ``lo`` (the first year's start) to
            ``starts[i]`` and to ``ends[i]``.
        lo, hi: the span covered, epoch microseconds.
    """

    __slots__ = ("after", "before", "ends", "first_year", "hi", "last_year", "lo", "segs", "starts")

    def __init__(self, first_year: int, last_year: int, segs: list[_Segment]) -> None:
        self.first_year = first_year
        self.last_year = last_year
        self.lo = float(_year_start(first_year) * _US)
        self.hi = float(_year_start(last_year + 1) * _US)
        self.segs = segs
        self.starts = [float(s * _US) for s, _ in segs]
        self.ends = [float(e * _US) for _, e in segs]
        self.after = [float(v * _US) for v in accumulate(e - s for s, e in segs)]
        self.before = [
            a - (e - s) for a, s, e in zip(self.after, self.starts, self.ends, strict=True)
        ]

    def elapsed(self, t: float) -> float:
        """Business microseconds from the timeline's start to ``t`` (lo <= t <= hi)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        end = self.ends[i]
        return self.after[i] if t >= end else self.before[i] + (t - self.starts[i])


def epoch_us(at: datetime) -> float:
    """Epoch microseconds of an aware datetime, as an integral float.

    Raises:
        ValueError: the datetime is naive.
    """
    tz = at.tzinfo
    if tz is None or (type(tz) not in _NEVER_NAIVE and tz.utcoffset(at) is None):
        raise ValueError(f"naive datetime {at.isoformat()}: give a timezone-aware datetime")
    return float((at - _EPOCH) // _ONE_US)


def instant(us: float) -> datetime:
    """The UTC datetime of epoch microseconds (an integral float)."""
    if -_FROMTIMESTAMP_EXACT < us < _FROMTIMESTAMP_EXACT:
        return datetime.fromtimestamp(us / _US, UTC)  # the faster way
    try:
        return _EPOCH + timedelta(microseconds=us)
    except OverflowError as exc:
        raise ValueError("the result lies beyond the year 9999") from exc


class Calendar:
    """Business time of one (hours, zone, holidays).

    Build one per distinct schedule and keep it: it compiles lazily (about a millisecond per
    year it is asked about) and answers each call in a few microseconds afterwards. Safe to
    share between threads.
    """

    __slots__ = ("_always", "_holidays", "_hours", "_lock", "_never", "_tl", "_tz")

    def __init__(self, hours: Hours, zone: str, holidays: Holidays = NO_HOLIDAYS) -> None:
        """Sets up the calendar; nothing is compiled yet.

        Args:
            hours: the weekly working hours in local wall time.
            zone: an IANA time zone name such as ``"Europe/Moscow"``.
            holidays: days off and transferred working days of the store's region; ignored
                when ``hours`` covers the whole week (see module).

        Raises:
            InvalidArgument: field ``timezone`` for an unknown zone.
        """
        if not isinstance(zone, str) or not zone:
            raise InvalidArgument("timezone", f"{zone!r} is not an IANA time zone name")
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidArgument("timezone", f"unknown time zone {zone!r}") from exc
        self._hours = hours
        self._tz = tz
        self._holidays = holidays
        self._always = hours.is_always
        self._never = hours.is_never
        self._lock = threading.Lock()
        self._tl: Timeline | None = None

    def __repr__(self) -> str:
        return f"Calendar({self._hours!r}, {self._tz.key!r}, {self._holidays!r})"

    @property
    def hours(self) -> Hours:
        """The weekly working hours."""
        return self._hours

    @property
    def zone(self) -> str:
        """The IANA time zone name."""
        return self._tz.key

    @property
    def holidays(self) -> Holidays:
        """The region's holidays (unused by a round-the-clock calendar)."""
        return self._holidays

    # -- queries --------------------------------------------------------------------------

    def between(self, start: datetime, end: datetime) -> float:
        """Business seconds in ``[start, end)``.

        Args:
            start: an aware datetime, any zone.
            end: an aware datetime, any zone.

        Returns:
            The working seconds between them; 0.0 if ``end <= start``.

        Raises:
            ValueError: a naive datetime.
        """
        a = epoch_us(start)
        b = epoch_us(end)
        if b <= a or self._never:
            return 0.0
        if self._always:
            return (b - a) / _US
        tl = self._tl
        if tl is None or a < tl.lo or b > tl.hi:
            tl = self._cover(_year_of(a), _year_of(b))
        return (tl.elapsed(b) - tl.elapsed(a)) / _US

    def add(self, start: datetime, seconds: float) -> datetime:
        """The deadline ``seconds`` of business time after ``start``.

        Args:
            start: an aware datetime, any zone.
            seconds: business seconds to add, taken to the microsecond.

        Returns:
            The earliest instant ``t >= start`` with ``between(start, t) >= seconds``, in UTC:
            a target met at closing time is met then, not at the next opening. ``start`` (in
            UTC) if ``seconds <= 0``.

        Raises:
            ValueError: a naive datetime; ``seconds`` not finite; a calendar that is never
                open; or a result beyond the year 9999.
        """
        return instant(self.add_us(epoch_us(start), seconds))

    def add_us(self, a: float, seconds: float) -> float:
        """`add` in epoch microseconds: for callers that keep instants as numbers.

        Args:
            a: the start, epoch microseconds (an integral float).
            seconds: business seconds to add.

        Returns:
            The deadline, epoch microseconds.

        Raises:
            ValueError: as `add`.
        """
        if not math.isfinite(seconds):
            raise ValueError(f"seconds must be finite, got {seconds!r}")
        need = round(seconds * _US)
        if need <= 0:
            return a
        if self._always:
            return a + need
        if self._never or need > _year_start(_LAST_YEAR + 1) * _US - a:
            raise ValueError("the calendar never accumulates that much business time")
        tl = self._tl
        if tl is None or not tl.lo <= a < tl.hi:
            year = _year_of(a)
            tl = self._cover(year, year)
        grow = 1
        while True:
            target = tl.elapsed(a) + need
            after = tl.after
            if after and target <= after[-1]:
                j = bisect_left(after, target)
                return tl.starts[j] + (target - tl.before[j])
            if after and after[-1] > 0:  # guess the years still needed from the rate so far
                rate = after[-1] / (tl.last_year - tl.first_year + 1)
                grow = max(grow, math.ceil((target - after[-1]) / rate) + 1)
            tl = self._grow_forward(tl, grow)
            grow *= 2

    def adds_us(self, a: float, seconds: Sequence[float]) -> list[float]:
        """`add_us` of several durations from one start, looking the start up once.

        Raises:
            ValueError: as `add`.
        """
        if len(seconds) < 2 or self._always or self._never:
            return [self.add_us(a, s) for s in seconds]
        self.add_us(a, max(seconds))  # the timeline now reaches the latest of them
        tl = self._tl
        assert tl is not None
        base = tl.elapsed(a)
        found = []
        for s in seconds:
            need = round(s * _US)
            if need <= 0:
                found.append(a)
                continue
            j = bisect_left(tl.after, base + need)
            found.append(tl.starts[j] + (base + need - tl.before[j]))
        return found

    def timeline(self, first_us: float, last_us: float) -> Timeline:
        """The compiled timeline, covering at least the UTC years of ``first_us`` to
        ``last_us``: for callers that look up many instants at once, as `add_us` does one.

        Raises:
            ValueError: a calendar always or never open, which has no timeline; or more
                than `MAX_SPAN_YEARS` years asked for.
        """
        if self._always or self._never:
            raise ValueError("a calendar always or never open has no timeline")
        tl = self._tl
        if tl is None or first_us < tl.lo or last_us >= tl.hi:
            tl = self._cover(_year_of(first_us), _year_of(last_us))
        return tl

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` is business time.

        Raises:
            ValueError: a naive datetime.
        """
        t = epoch_us(at)
        if self._always:
            return True
        if self._never:
            return False
        tl = self._tl
        if tl is None or not tl.lo <= t < tl.hi:
            year = _year_of(t)
            tl = self._cover(year, year)
        i = bisect_right(tl.starts, t) - 1
        return i >= 0 and t < tl.ends[i]

    def next_open(self, at: datetime) -> datetime:
        """When business time next runs.

        Returns:
            ``at`` (in UTC) if it is business time, else the start of the next business
            segment, in UTC.

        Raises:
            ValueError: a naive datetime; a calendar that is never open; no opening before
                the end of the year 9999.
        """
        t = epoch_us(at)
        if self._always:
            return at.astimezone(UTC)
        if self._never:
            raise ValueError("the calendar is never open")
        tl = self._tl
        if tl is None or not tl.lo <= t < tl.hi:
            year = _year_of(t)
            tl = self._cover(year, year)
        grow = 1
        while True:
            i = bisect_right(tl.starts, t)
            if i > 0 and t < tl.ends[i - 1]:
                return at.astimezone(UTC)
            if i < len(tl.starts):
                return instant(tl.starts[i])
            tl = self._grow_forward(tl, grow)
            grow *= 2

    # -- compiling ------------------------------------------------------------------------

    def _day(self, k: int) -> _Day:
        """The intervals of the local day ``k`` days after 1970-01-01."""
        week = self._hours.week
        if self._holidays:
            ordinal = k + _EPOCH_ORDINAL
            if 1 <= ordinal <= _MAX_ORDINAL:
                day = date.fromordinal(ordinal)
                weekday = self._holidays.workdays.get(day)
                if weekday is not None:
                    return week[weekday]
                if day in self._holidays.days_off:
                    return ()
        return week[(k + _EPOCH_WEEKDAY) % 7]

    def _compile_year(self, year: int) -> list[_Segment]:
        """The business segments of one UTC year, in UTC epoch seconds, merged."""
        out: list[_Segment] = []
        for lo, hi, offset in _offset_pieces(self._tz, year):
            local_lo, local_hi = lo + offset, hi + offset  # local wall seconds since 1970
            for k in range(local_lo // _DAY_S, (local_hi - 1) // _DAY_S + 1):
                base = k * _DAY_S - offset
                for start, end in self._day(k):
                    s = max(base + start * 60, lo)
                    e = min(base + end * 60, hi)
                    if s >= e:
                        continue
                    if out and out[-1][1] == s:
                        out[-1] = (out[-1][0], e)
                    else:
                        out.append((s, e))
        return out

    def _compile(self, first_year: int, last_year: int) -> list[_Segment]:
        segs: list[_Segment] = []
        for year in range(first_year, last_year + 1):
            segs = _join(segs, self._compile_year(year))
        return segs

    def _cover(self, first_year: int, last_year: int) -> Timeline:
        """A timeline covering at least the UTC years ``first_year..last_year``."""
        with self._lock:
            tl = self._tl
            if tl is not None and tl.first_year <= first_year and last_year <= tl.last_year:
                return tl
            lo_year = first_year if tl is None else min(first_year, tl.first_year)
            hi_year = last_year if tl is None else max(last_year, tl.last_year)
            if hi_year - lo_year >= MAX_SPAN_YEARS:
                raise ValueError(
                    f"the call needs the years {lo_year}..{hi_year} of the calendar; "
                    f"one calendar covers at most {MAX_SPAN_YEARS} consecutive years"
                )
            if tl is None:
                new = Timeline(first_year, last_year, self._compile(first_year, last_year))
            else:
                segs = self._compile(lo_year, tl.first_year - 1)
                segs = _join(segs, tl.segs)
                segs = _join(segs, self._compile(tl.last_year + 1, hi_year))
                new = Timeline(lo_year, hi_year, segs)
            self._tl = new
            return new

    def _grow_forward(self, tl: Timeline, years: int) -> Timeline:
        """Covers up to ``years`` more years after ``tl``'s end, within the limits."""
        last = min(tl.last_year + years, tl.first_year + MAX_SPAN_YEARS - 1, _LAST_YEAR)
        if last <= tl.last_year:
            raise ValueError(
                f"no such business time within {MAX_SPAN_YEARS} years of calendar "
                f"({tl.first_year}..{tl.last_year}), or before the year 10000"
            )
        return self._cover(tl.first_year, last)
