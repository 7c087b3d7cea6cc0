"""Regional holidays for business-time calendars: from the `holidays` package (Russia's public
holidays and transferred working Saturdays) and from a strict iCalendar reader that names the
line of anything it refuses."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.calendars import OPEN_ENDED_UNTIL_YEAR, from_ical, from_package
from node.domain.calendar import Calendar, Holidays, Hours
from node.domain.errors import InvalidArgument

MOSCOW = ZoneInfo("Europe/Moscow")
OFFICE = Hours.parse({"mon-fri": "09:00-18:00"})

# ---------------------------------------------------------------------------------------------
# The holidays package


def test_russia_2026_holds_the_new_year_break_and_victory_day() -> None:
    ru = from_package("RU", [2026])
    assert date(2026, 1, 1) in ru.days_off
    assert date(2026, 5, 9) in ru.days_off  # a Saturday ...
    assert date(2026, 5, 11) in ru.days_off  # ... observed on Monday
    assert {date(2026, 1, d) for d in range(1, 10)} <= ru.days_off  # Jan 9 moved from Jan 3
    assert date(2026, 12, 31) in ru.days_off  # moved from Sunday, January 4
    assert all(d.year == 2026 for d in ru.days_off)
    assert dict(ru.workdays) == {}  # 2026 moves its days off from holidays: no worked Saturday


def test_russias_worked_saturdays_work_the_weekday_they_were_swapped_with() -> None:
    assert dict(from_package("RU", [2025]).workdays) == {date(2025, 11, 1): 0}
    assert dict(from_package("RU", [2024]).workdays) == {
        date(2024, 4, 27): 0,  # for Monday, April 29
        date(2024, 11, 2): 1,  # for Tuesday, April 30
        date(2024, 12, 28): 0,  # for Monday, December 30
    }
    both = from_package("ru", range(2024, 2026))
    assert set(both.workdays) == {date(2024, 4, 27), date(2024, 11, 2), date(2024, 12, 28)} | {
        date(2025, 11, 1)
    }


def test_a_moscow_store_works_the_transferred_saturday_and_rests_the_bridge_monday() -> None:
    calendar = Calendar(OFFICE, "Europe/Moscow", from_package("RU", [2025]))
    sat = datetime(2025, 11, 1, tzinfo=MOSCOW)
    assert calendar.between(sat, sat + timedelta(days=1)) == 9 * 3600
    assert calendar.between(sat + timedelta(days=2), sat + timedelta(days=4)) == 0  # Nov 3, 4
    friday_evening = datetime(2025, 10, 31, 17, tzinfo=MOSCOW)
    assert calendar.add(friday_evening, 4 * 3600) == datetime(2025, 11, 1, 12, tzinfo=MOSCOW)
    assert calendar.add(sat.replace(hour=17), 2 * 3600) == datetime(2025, 11, 5, 10, tzinfo=MOSCOW)


def test_an_unknown_country_or_subdivision_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        from_package("XX", [2026])
    assert caught.value.field == "holidays.country"
    with pytest.raises(InvalidArgument) as caught:
        from_package("RU", [2026], subdiv="NOPE")
    assert caught.value.field == "holidays.subdiv"
    with pytest.raises(InvalidArgument) as caught:
        from_package("RU", ["2026"])  # type: ignore[list-item]
    assert caught.value.field == "holidays.years"


def test_a_subdivision_adds_its_own_days() -> None:
    country = from_package("DE", [2026])
    bavaria = from_package("DE", [2026], subdiv="BY")
    assert country.days_off < bavaria.days_off
    assert date(2026, 1, 6) in bavaria.days_off - country.days_off  # Epiphany


# ---------------------------------------------------------------------------------------------
# iCalendar


def ics(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


GOOD = ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//hdx//holidays test//EN",
    "CALSCALE:GREGORIAN",
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Moscow",
    "BEGIN:STANDARD",
    "DTSTART:19700101T000000",
    "TZOFFSETFROM:+0300",
    "TZOFFSETTO:+0300",
    "END:STANDARD",
    "END:VTIMEZONE",
    "BEGIN:VEVENT",
    "UID:new-year@hdx",
    "DTSTART;VALUE=DATE:20260101",
    "DTEND;VALUE=DATE:20260109",
    "SUMMARY:New Year holidays\\, a long\r\n  break folded over two lines",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:victory@hdx",
    "DTSTA\r\n RT;VALUE=DA\r\n\tTE:20240509",
    "RRULE:FREQ=YEARLY;COUNT=3",
    "SUMMARY:Victory Day",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:russia-day@hdx",
    "DTSTART:20240612",
    "RRULE:FREQ=YEARLY;UNTIL=20250612",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:unity@hdx",
    "DTSTART;VALUE=DATE:20240104",
    "DURATION:P2D",
    "RRULE:FREQ=YEARLY",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:worked-saturday@hdx",
    "DTSTART;VALUE=DATE:20251101",
    "CATEGORIES:Official,workday",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:worked-saturday-2@hdx",
    "DTSTART;VALUE=DATE:20270220",
    "X-HDX-WORKDAY:FR",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:leap@hdx",
    "DTSTART;VALUE=DATE:20240229",
    "RRULE:FREQ=YEARLY;COUNT=2",
    "END:VEVENT",
    "BEGIN:VEVENT",
    "UID:cancelled@hdx",
    "DTSTART;VALUE=DATE:20260301",
    "STATUS:CANCELLED",
    "END:VEVENT",
    "END:VCALENDAR",
)


def test_ical_reads_folded_lines_multi_day_and_yearly_events_and_workdays() -> None:
    holidays = from_ical(GOOD)
    days_off = holidays.days_off
    assert {date(2026, 1, d) for d in range(1, 9)} <= days_off  # DTEND is exclusive
    assert date(2026, 1, 9) not in days_off
    assert {date(y, 5, 9) for y in (2024, 2025, 2026)} <= days_off  # COUNT=3
    assert date(2027, 5, 9) not in days_off
    assert {date(2024, 6, 12), date(2025, 6, 12)} <= days_off  # UNTIL is inclusive
    assert date(2026, 6, 12) not in days_off
    # an open-ended rule runs through OPEN_ENDED_UNTIL_YEAR, each occurrence two days long
    assert {date(2030, 1, 4), date(2030, 1, 5), date(OPEN_ENDED_UNTIL_YEAR, 1, 5)} <= days_off
    assert date(OPEN_ENDED_UNTIL_YEAR + 1, 1, 4) not in days_off
    # February 29 repeats only in leap years, and COUNT counts those that happen
    assert {date(2024, 2, 29), date(2028, 2, 29)} <= days_off
    assert date(2026, 3, 1) not in days_off  # cancelled
    assert dict(holidays.workdays) == {date(2025, 11, 1): 0, date(2027, 2, 20): 4}


def test_ical_accepts_bare_line_feeds_and_a_day_given_as_a_number() -> None:
    text = "\n".join(
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "DTSTART;VALUE=DATE:20260606",
            "X-HDX-WORKDAY:2",
            "END:VEVENT",
            "END:VCALENDAR",
        ]
    )
    assert from_ical(text) == Holidays(workdays={date(2026, 6, 6): 2})


BAD: list[tuple[str, list[str], int, str]] = [
    ("empty", [], 1, "empty calendar"),
    ("no calendar", ["BEGIN:VEVENT", "END:VEVENT"], 1, "before BEGIN:VCALENDAR"),
    ("no colon", ["BEGIN:VCALENDAR", "VERSION 2.0", "END:VCALENDAR"], 2, "no ':'"),
    ("fold first", [" BEGIN:VCALENDAR"], 1, "continuation"),
    (
        "timed event",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101T090000Z", "END:VEVENT"],
        3,
        "timed events are not supported",
    ),
    (
        "date-time value",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART;VALUE=DATE-TIME:20260101", "END:VEVENT"],
        3,
        "timed events are not supported",
    ),
    (
        "bad date",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART;VALUE=DATE:20261301", "END:VEVENT"],
        3,
        "not a valid date",
    ),
    (
        "short date",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART;VALUE=DATE:2026011", "END:VEVENT"],
        3,
        "not a date YYYYMMDD",
    ),
    (
        "no start",
        ["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", "SUMMARY:x", "END:VEVENT"],
        3,
        "no DTSTART",
    ),
    (
        "two starts",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101", "DTSTART:20260102"],
        4,
        "a second DTSTART",
    ),
    (
        "end before start",
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "DTSTART;VALUE=DATE:20260105",
            "DTEND;VALUE=DATE:20260105",
            "END:VEVENT",
        ],
        4,
        "not after DTSTART",
    ),
    (
        "monthly",
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "DTSTART:20260101",
            "RRULE:FREQ=MONTHLY",
            "END:VEVENT",
            "END:VCALENDAR",
        ],
        4,
        "only FREQ=YEARLY",
    ),
    (
        "byday",
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "DTSTART:20260101",
            "RRULE:FREQ=YEARLY;BYDAY=MO",
            "END:VEVENT",
        ],
        4,
        "BYDAY is not supported",
    ),
    (
        "count and until",
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "DTSTART:20260101",
            "RRULE:FREQ=YEARLY;COUNT=2;UNTIL=20300101",
            "END:VEVENT",
        ],
        4,
        "both COUNT and UNTIL",
    ),
    (
        "zero count",
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "DTSTART:20260101",
            "RRULE:FREQ=YEARLY;COUNT=0",
            "END:VEVENT",
        ],
        4,
        "not a positive number",
    ),
    (
        "bad workday",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101", "X-HDX-WORKDAY:7"],
        4,
        "X-HDX-WORKDAY",
    ),
    (
        "exdate",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101", "EXDATE:20270101"],
        4,
        "EXDATE is not supported",
    ),
    (
        "bad duration",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101", "DURATION:PT4H"],
        4,
        "whole days",
    ),
    (
        "mismatched end",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101", "END:VTODO"],
        4,
        "END:VTODO closes VEVENT",
    ),
    (
        "never closed",
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "DTSTART:20260101", "END:VEVENT"],
        4,
        "BEGIN:VCALENDAR on line 1 is never closed",
    ),
    (
        "after the end",
        ["BEGIN:VCALENDAR", "END:VCALENDAR", "DTSTART:20260101"],
        3,
        "after END:VCALENDAR",
    ),
    (
        "folded timed event",
        [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "SUMMARY:a long",
            "  summary",
            "DTSTART:20260101",
            " T120000",
            "END:VEVENT",
        ],
        5,
        "timed events are not supported",
    ),
]


@pytest.mark.parametrize(
    ("lines", "line", "what"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_malformed_ical_is_refused_with_its_line_number(
    lines: list[str], line: int, what: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        from_ical(ics(*lines) if lines else "")
    assert caught.value.field == "ical"
    assert caught.value.rule.startswith(f"line {line}: "), caught.value.rule
    assert what in caught.value.rule
