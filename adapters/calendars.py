"""Loaders of regional holidays for business-time calendars (`node.domain.calendar`).

Two sources:

* `from_package`: public holidays from the `holidays` package (PyPI), with the transferred
  working days it knows (for Russia: the Saturdays worked in exchange for a bridge day off).
* `from_ical`: a strict reader of the small part of iCalendar (RFC 5545) that holiday
  calendars use: all-day events, possibly multi-day, possibly repeating every year.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import holidays as holidays_package

from node.domain.calendar import Holidays
from node.domain.errors import InvalidArgument

# ---------------------------------------------------------------------------------------------
# The holidays package


def _substitutions(entries: Any) -> list[tuple[int, ...]]:
    """The package's per-year special-holiday entries as a list of tuples."""
    if not entries:
        return []
    if isinstance(entries[0], int):  # a single entry is stored bare
        return [tuple(entries)]
    return [tuple(e) for e in entries]


def _transfer_weekdays(calendar: Any) -> dict[date, int]:
    """For each worked weekend day, the weekday of the day off it was swapped with.

    The package keeps substitutions as ``(to_month, to_day, from_month, from_day[, from_year])``
    per year: the day off moves *to* a weekday *from* a weekend day, which becomes worked.
    """
    weekdays: dict[date, int] = {}
    special: Any = getattr(calendar, "special_public_holidays", None)
    if not isinstance(special, dict):
        return weekdays
    for year, entries in special.items():
        for entry in _substitutions(entries):
            if len(entry) not in (4, 5) or not all(isinstance(v, int) for v in entry):
                continue  # (month, day, name): a one-off holiday, not a substitution
            to_month, to_day, from_month, from_day, *from_year = entry
            try:
                day_off = date(year, to_month, to_day)
                worked = date(from_year[0] if from_year else year, from_month, from_day)
            except ValueError:
                continue
            weekdays[worked] = day_off.weekday()
    return weekdays


def from_package(country: str, years: Iterable[int], subdiv: str | None = None) -> Holidays:
    """Public holidays of a country (and optionally a subdivision) from the `holidays` package.

    Days off are the package's public holidays (its default ``PUBLIC`` category), including
    the bridge days a government moves off and the observed days it adds.

    Transferred working days come from the package's ``weekend_workdays``: the weekend days
    its substitution tables make worked (for Russia, e.g. Saturday 2025-11-01, worked so that
    Monday 2025-11-03 is off). Each is mapped to the weekday of the day off it was swapped
    with (2025-11-01 -> 0, Monday's hours), read from the same tables; where the package
    does not say (an older package without them), Monday (0) is assumed. The package's
    ``WORKDAY`` *category* is something else (named days that are working days, and not
    offered for Russia), so it is not used.

    Args:
        country: ISO 3166-1 alpha-2 code, e.g. ``"RU"`` (case-insensitive).
        years: the years to load.
        subdiv: a subdivision code the package knows for that country, or None.

    Returns:
        The days off and transferred working days.

    Raises:
        InvalidArgument: ``holidays.country`` for a country the package does not know,
            ``holidays.subdiv`` for an unknown subdivision, ``holidays.years`` for a year
            that is not a whole number.
    """
    code = country.strip().upper() if isinstance(country, str) else ""
    supported = holidays_package.list_supported_countries()
    if code not in supported:
        raise InvalidArgument(
            "holidays.country", f"{country!r} is not a country the holidays package knows"
        )
    wanted = list(years)
    for year in wanted:
        if isinstance(year, bool) or not isinstance(year, int):
            raise InvalidArgument("holidays.years", f"{year!r} is not a year")
    wanted = sorted(set(wanted))
    try:
        calendar = holidays_package.country_holidays(code, subdiv=subdiv, years=wanted)
    except NotImplementedError as exc:
        raise InvalidArgument(
            "holidays.subdiv", f"{subdiv!r} is not a subdivision of {code}: {exc}"
        ) from exc
    days_off = frozenset(calendar.keys())
    worked: set[date] = set(getattr(calendar, "weekend_workdays", ()))
    weekdays = _transfer_weekdays(calendar)
    return Holidays(days_off=days_off, workdays={d: weekdays.get(d, 0) for d in worked})


# ---------------------------------------------------------------------------------------------
# iCalendar

OPEN_ENDED_UNTIL_YEAR: Final = 2100
"""A yearly rule with neither COUNT nor UNTIL is expanded through this year (or through the
year of its DTSTART, if that is later)."""

_WEEKDAY_CODES: Final = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_NAME = re.compile(r"[A-Za-z0-9-]+")
_DATE = re.compile(r"\d{8}")
_DURATION = re.compile(r"P(?:(\d+)W|(\d+)D)")
_UNSUPPORTED = {
    "RDATE": "RDATE is not supported; write each date as its own event",
    "EXDATE": "EXDATE is not supported; end the rule with UNTIL or COUNT instead",
    "EXRULE": "EXRULE is not supported",
    "RECURRENCE-ID": "RECURRENCE-ID (an edited occurrence) is not supported",
}


def _fail(line: int, what: str) -> InvalidArgument:
    return InvalidArgument("ical", f"line {line}: {what}")


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # the physical line the content line starts on
    name: str
    params: dict[str, list[str]]
    value: str


@dataclass(slots=True)
class _Event:
    line: int
    start: tuple[int, date] | None = None
    end: tuple[int, date] | None = None
    days: tuple[int, int] | None = None  # (line, days) from DURATION
    rule: tuple[int, str] | None = None
    categories: list[str] = field(default_factory=list)
    workday: int | None = None
    cancelled: bool = False


def _unfold(text: str) -> list[tuple[int, str]]:
    """Logical lines with the physical line number each starts on (RFC 5545 3.1)."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if raw[:1] in (" ", "\t"):
            if not out:
                raise _fail(number, "a folded continuation line with no line before it")
            start, previous = out[-1]
            out[-1] = (start, previous + raw[1:])
        else:
            out.append((number, raw))
    return [(n, s) for n, s in out if s.strip()]


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _content_line(number: int, text: str) -> _Line:
    """Parses ``NAME *(;PARAM=VALUE) : VALUE`` (RFC 5545 3.1)."""
    quoted = False
    colon = -1
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            colon = i
            break
    if colon < 0:
        raise _fail(number, f"no ':' in {text[:60]!r}")
    head, value = text[:colon], text[colon + 1 :]
    name, *raw_params = _split_unquoted(head, ";")
    if not _NAME.fullmatch(name):
        raise _fail(number, f"{name!r} is not a property name")
    params: dict[str, list[str]] = {}
    for raw in raw_params:
        key, eq, values = raw.partition("=")
        if not eq or not _NAME.fullmatch(key):
            raise _fail(number, f"parameter {raw!r} is not NAME=VALUE")
        params[key.upper()] = [v.strip('"') for v in _split_unquoted(values, ",")]
    return _Line(number, name.upper(), params, value)


def _date_value(line: _Line) -> date:
    """A DATE value of DTSTART/DTEND; refuses date-times (timed events)."""
    kind = [v.upper() for v in line.params.get("VALUE", [])]
    value = line.value.strip()
    if "T" in value.upper() or kind == ["DATE-TIME"]:
        raise _fail(
            line.number,
            f"{line.name} {value!r} is a date-time: timed events are not supported, "
            "a holiday must be an all-day event (VALUE=DATE:YYYYMMDD)",
        )
    if kind not in ([], ["DATE"]):
        raise _fail(line.number, f"{line.name} has VALUE={','.join(kind)}; expected DATE")
    if not _DATE.fullmatch(value):
        raise _fail(line.number, f"{line.name} {value!r} is not a date YYYYMMDD")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise _fail(line.number, f"{line.name} {value!r} is not a valid date") from None


def _split_text_list(value: str) -> list[str]:
    """A TEXT list split on unescaped commas (RFC 5545 3.3.11)."""
    items, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i + 1])
            i += 2
            continue
        if ch == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    items.append("".join(current))
    return [item.strip() for item in items]


def _event_property(event: _Event, line: _Line) -> None:
    name = line.name
    if name in ("DTSTART", "DTEND"):
        if (event.start if name == "DTSTART" else event.end) is not None:
            raise _fail(line.number, f"a second {name} in one event")
        when = (line.number, _date_value(line))
        if name == "DTSTART":
            event.start = when
        else:
            event.end = when
    elif name == "DURATION":
        match = _DURATION.fullmatch(line.value.strip().upper())
        if not match:
            raise _fail(line.number, f"DURATION {line.value!r} is not whole days (P<n>D or P<n>W)")
        weeks, days = match.groups()
        event.days = (line.number, int(weeks) * 7 if weeks else int(days))
    elif name == "RRULE":
        if event.rule is not None:
            raise _fail(line.number, "a second RRULE in one event")
        event.rule = (line.number, line.value.strip())
    elif name == "CATEGORIES":
        event.categories.extend(_split_text_list(line.value))
    elif name == "X-HDX-WORKDAY":
        value = line.value.strip().upper()
        if value in _WEEKDAY_CODES:
            event.workday = _WEEKDAY_CODES[value]
        elif value in {"0", "1", "2", "3", "4", "5", "6"}:
            event.workday = int(value)
        else:
            raise _fail(line.number, f"X-HDX-WORKDAY {line.value!r} is not a weekday 0-6 or MO..SU")
    elif name == "STATUS":
        event.cancelled = line.value.strip().upper() == "CANCELLED"
    elif name in _UNSUPPORTED:
        raise _fail(line.number, _UNSUPPORTED[name])
    # any other property (SUMMARY, UID, DTSTAMP, DESCRIPTION, TRANSP, ...) does not matter


def _add_years(day: date, years: int) -> date | None:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # February 29 in a common year, or past the year 9999
        return None


def _occurrences(event: _Event, start: date) -> list[date]:
    """The first days of the event's occurrences (RFC 5545 3.3.10, FREQ=YEARLY only)."""
    if event.rule is None:
        return [start]
    number, text = event.rule
    parts: dict[str, str] = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        key = key.strip().upper()
        if not eq or not key or key in parts:
            raise _fail(number, f"RRULE part {part!r} is not NAME=VALUE, or repeats")
        parts[key] = value.strip()
    if parts.get("FREQ", "").upper() != "YEARLY":
        raise _fail(number, f"RRULE {text!r}: only FREQ=YEARLY is supported")
    extra = sorted(set(parts) - {"FREQ", "COUNT", "UNTIL", "INTERVAL"})
    if extra:
        raise _fail(
            number,
            f"RRULE part {extra[0]} is not supported; only FREQ=YEARLY with COUNT, UNTIL "
            "or INTERVAL",
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise _fail(number, "RRULE has both COUNT and UNTIL")
    interval = 1
    if "INTERVAL" in parts:
        if not parts["INTERVAL"].isdigit() or int(parts["INTERVAL"]) < 1:
            raise _fail(number, f"RRULE INTERVAL {parts['INTERVAL']!r} is not a positive number")
        interval = int(parts["INTERVAL"])
    count: int | None = None
    until = date(max(OPEN_ENDED_UNTIL_YEAR, start.year), 12, 31)
    if "COUNT" in parts:
        if not parts["COUNT"].isdigit() or int(parts["COUNT"]) < 1:
            raise _fail(number, f"RRULE COUNT {parts['COUNT']!r} is not a positive number")
        count = int(parts["COUNT"])
        until = date.max
    if "UNTIL" in parts:
        value = parts["UNTIL"]
        if not _DATE.fullmatch(value):
            raise _fail(
                number, f"RRULE UNTIL {value!r} is not a date YYYYMMDD (the event is all-day)"
            )
        try:
            until = date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            raise _fail(number, f"RRULE UNTIL {value!r} is not a valid date") from None
        if until < start:
            raise _fail(number, f"RRULE UNTIL {value} is before DTSTART {start:%Y%m%d}")
    out: list[date] = []
    step = 0
    while start.year + step <= until.year and (count is None or len(out) < count):
        day = _add_years(start, step)
        if day is not None and day <= until:
            out.append(day)
        step += interval
    return out


def _event_days(event: _Event) -> tuple[list[date], int | None]:
    """The days an event covers, and the weekday it works (None for days off)."""
    if event.start is None:
        raise _fail(event.line, "the event has no DTSTART")
    start_line, start = event.start
    if event.end is not None and event.days is not None:
        raise _fail(event.end[0], "the event has both DTEND and DURATION")
    length = 1
    if event.end is not None:
        end_number, end = event.end
        if end <= start:
            raise _fail(end_number, f"DTEND {end:%Y%m%d} is not after DTSTART {start:%Y%m%d}")
        length = (end - start).days
    elif event.days is not None:
        if event.days[1] < 1:
            raise _fail(event.days[0], "DURATION must be at least one day")
        length = event.days[1]
    workday = event.workday
    if workday is None and any(c.upper() == "WORKDAY" for c in event.categories):
        workday = 0
    if event.cancelled:
        return [], workday
    days: list[date] = []
    for first in _occurrences(event, start):
        for offset in range(length):
            try:
                days.append(first + timedelta(days=offset))
            except OverflowError:
                raise _fail(start_line, "the event runs past the year 9999") from None
    return days, workday


def from_ical(text: str) -> Holidays:
    """Holidays from an iCalendar file of all-day events.

    Supported: folded lines; one VCALENDAR; VEVENTs with ``DTSTART;VALUE=DATE:YYYYMMDD`` (or
    ``DTSTART:YYYYMMDD``), an optional ``DTEND`` (exclusive) or ``DURATION:P<n>D``/``P<n>W``
    for multi-day events, an optional ``RRULE:FREQ=YEARLY`` with ``COUNT``, ``UNTIL`` (a
    date) or ``INTERVAL`` (February 29 repeats only in leap years; a rule with neither COUNT
    nor UNTIL is expanded through `OPEN_ENDED_UNTIL_YEAR`, 2100), and ``STATUS:CANCELLED`` (the
    event is skipped). Other components (VTIMEZONE, VTODO, ...) and other properties are
    ignored.

    An event is a transferred working day when it has ``X-HDX-WORKDAY:<weekday>`` (0-6 with
    0 = Monday, or MO..SU: whose hours the day works) or its ``CATEGORIES`` include
    ``WORKDAY`` (any case; then Monday's hours); otherwise each of its days is a day off.

    Args:
        text: the iCalendar text.

    Returns:
        The days off and transferred working days.

    Raises:
        InvalidArgument: field ``ical``, rule ``line N: <what is wrong>`` for anything
            malformed or unsupported, timed events included.
    """
    lines = _unfold(text)
    if not lines:
        raise _fail(1, "empty calendar; expected BEGIN:VCALENDAR")
    days_off: set[date] = set()
    workdays: dict[date, int] = {}
    stack: list[tuple[str, int]] = []  # open components with their BEGIN lines
    event: _Event | None = None
    seen_calendar = False
    for number, raw in lines:
        line = _content_line(number, raw)
        if not stack and (line.name, line.value.strip().upper()) != ("BEGIN", "VCALENDAR"):
            where = "after END:VCALENDAR" if seen_calendar else "before BEGIN:VCALENDAR"
            raise _fail(number, f"{raw[:60]!r} {where}")
        if line.name == "BEGIN":
            component = line.value.strip().upper()
            if not _NAME.fullmatch(component):
                raise _fail(number, f"BEGIN:{line.value} names no component")
            if component == "VCALENDAR" and stack:
                raise _fail(number, "a VCALENDAR inside another component")
            if component == "VEVENT" and len(stack) == 1:
                event = _Event(line=number)
            stack.append((component, number))
            seen_calendar = True
        elif line.name == "END":
            component = line.value.strip().upper()
            if not stack or stack[-1][0] != component:
                open_one = stack[-1][0] if stack else "nothing"
                raise _fail(number, f"END:{line.value} closes {open_one}")
            stack.pop()
            if component == "VEVENT" and event is not None and len(stack) == 1:
                days, workday = _event_days(event)
                if workday is None:
                    days_off.update(days)
                else:
                    workdays.update(dict.fromkeys(days, workday))
                event = None
        elif event is not None and len(stack) == 2:
            _event_property(event, line)
        elif (
            len(stack) == 1
            and line.name == "CALSCALE"
            and line.value.strip().upper() != "GREGORIAN"
        ):
            raise _fail(number, f"CALSCALE {line.value!r} is not supported (GREGORIAN only)")
    if stack:
        component, begun = stack[-1]
        raise _fail(lines[-1][0], f"BEGIN:{component} on line {begun} is never closed")
    return Holidays(days_off=frozenset(days_off), workdays=workdays)
