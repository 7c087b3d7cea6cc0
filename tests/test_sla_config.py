"""A changed SLA configuration reaches the open tickets: `TicketService.recompute_sla`
and `adopt_sla_config`, on SQLite and PostgreSQL."""

import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli import wiring
from node.domain.errors import InvalidArgument
from node.domain.sla import ClockState, Timer
from node.domain.slapolicy import DEFAULT_POLICIES, SlaConfig
from node.domain.ticket import Ticket, TicketDraft, TicketQuery, Visibility
from node.domain.workflow import DEFAULT_WORKFLOW
from node.services.sla import SlaService
from node.services.tickets import TicketService
from tests.conftest import Desk

MONDAY = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)  # the FakeClock's start: 12:12 in Moscow


def service(desk: Desk, table: Mapping[str, Any]) -> TicketService:
    """The desk's tickets seen by a node restarted with table as its `[sla]` config."""
    config = SlaConfig.from_config(table, DEFAULT_WORKFLOW.kinds)
    return TicketService(desk.db, desk.clock, sla=SlaService(config, DEFAULT_WORKFLOW))


def file(desk: Desk, login: str, category: str) -> Ticket:
    return desk.tickets.create(desk.actor(login), TicketDraft(category=category, title=category))


def clock_of(ticket: Ticket, timer: Timer) -> Any:
    return next(c for c in ticket.clocks if c.timer is timer and c.state is not ClockState.MET)


def test_new_hours_move_the_deadlines_of_open_tickets(desk: Desk) -> None:
    scales = file(desk, "anna", "scales")  # P3 in Moscow: respond in 4 h, 09:00-18:00
    assert scales.due_at == MONDAY + timedelta(hours=4)  # 16:12 local
    shorter = service(desk, {"hours": {"business": {"mon-fri": "09:00-14:00"}}})

    assert shorter.recompute_sla() == 1

    moved = shorter.get(desk.actor("ivan"), scales.key)
    # 12:12-14:00 local is 1 h 48 min; the other 2 h 12 min run Tuesday from 09:00
    assert moved.due_at == datetime(2026, 11, 24, 8, 12, tzinfo=UTC)  # Tuesday 11:12 local
    listed, _ = shorter.list_tickets(desk.actor("ivan"), TicketQuery(), include_closed=False)
    assert [t.due_at for t in listed] == [moved.due_at]
    assert shorter.recompute_sla() == 1
    assert shorter.get(desk.actor("ivan"), scales.key).due_at == moved.due_at


def test_new_targets_keep_the_time_used_and_the_pauses(desk: Desk) -> None:
    ivan = desk.actor("ivan")
    scales = file(desk, "anna", "scales")
    desk.clock.advance(timedelta(hours=1))
    desk.tickets.transition(ivan, scales.key, "wait_requester", "")
    desk.clock.advance(timedelta(hours=1))
    desk.tickets.transition(ivan, scales.key, "resume", "")
    policies = [dict(p) for p in DEFAULT_POLICIES]
    p3 = next(p for p in policies if p["name"] == "p3")
    p3["first_response"] = "3h"
    tighter = service(
        desk, {"hours": {"business": {"mon-fri": "09:00-18:00"}}, "policies": policies}
    )

    tighter.recompute_sla()

    ticket = tighter.get(ivan, scales.key)
    first = clock_of(ticket, Timer.FIRST_RESPONSE)
    assert (first.target_s, first.elapsed_s, first.paused_s) == (3 * 3600, 3600, 3600)
    assert ticket.due_at == desk.clock.now() + timedelta(hours=2)


def test_deactivating_a_policy_clears_its_escalations(desk: Desk) -> None:
    ivan = desk.actor("ivan")
    pos = file(desk, "anna", "pos-down")  # stop-trade: respond in 15 min around the clock
    desk.tickets.assign(desk.actor("sergey"), pos.key, "ivan", None, frozenset())
    desk.clock.advance(timedelta(minutes=20))
    assert desk.tickets.fire_alarms() == 1
    breached = desk.tickets.get(ivan, pos.key)
    assert clock_of(breached, Timer.FIRST_RESPONSE).breached
    policies = [dict(p) for p in DEFAULT_POLICIES]
    for policy in policies:
        policy["active"] = policy["name"] not in ("stop-trade", "p1", "p2", "p3", "p4")
    nothing = service(
        desk, {"hours": {"business": {"mon-fri": "09:00-18:00"}}, "policies": policies}
    )

    nothing.recompute_sla()

    withdrawn = nothing.get(ivan, pos.key)
    assert withdrawn.sla.policy == ""
    assert (withdrawn.due_at, withdrawn.alarm_at) == (None, None)
    assert all(c.state is ClockState.STOPPED for c in withdrawn.clocks if c.ended_at)
    assert not [c for c in withdrawn.clocks if c.state in (ClockState.RUNNING, ClockState.PAUSED)]
    assert nothing.next_alarm() is None
    desk.clock.advance(timedelta(hours=8))
    assert nothing.fire_alarms() == 0
    last = nothing.history(ivan, pos.key)[-1]
    assert (last.actor, last.change.field, last.change.before, last.change.after) == (
        "system",
        "sla_policy",
        "stop-trade",
        "",
    )


def test_a_policy_deactivated_hands_its_tickets_to_the_next_that_matches(desk: Desk) -> None:
    ivan = desk.actor("ivan")
    scales = file(desk, "anna", "scales")
    desk.tickets.comment(ivan, scales.key, "looking at it", Visibility.PUBLIC)
    policies = [dict(p) for p in DEFAULT_POLICIES]
    next(p for p in policies if p["name"] == "p3")["active"] = False
    fallback = service(
        desk, {"hours": {"business": {"mon-fri": "09:00-18:00"}}, "policies": policies}
    )

    fallback.recompute_sla()

    moved = fallback.get(ivan, scales.key)
    assert moved.sla.policy == "p4"
    resolution = clock_of(moved, Timer.RESOLUTION)
    assert (resolution.policy, resolution.target_s) == ("p4", 45 * 3600)


def test_a_configuration_is_adopted_once(desk: Desk) -> None:
    file(desk, "anna", "scales")
    file(desk, "boris", "pos-down")
    assert desk.tickets.adopt_sla_config("first") == 2
    assert desk.tickets.adopt_sla_config("first") is None
    assert desk.tickets.adopt_sla_config("second") == 2


def test_the_readme_example_is_a_valid_configuration() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("### SLA", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    table = tomllib.loads(example)["sla"]
    config = SlaConfig.from_config(table, DEFAULT_WORKFLOW.kinds)
    assert [rule.policy.name for rule in config.rules] == ["stop-trade", "standard"]
    assert config.hours["extended"].week[6] == ((480, 780), (840, 1320))
    assert config.escalation.next_line("L1") == "L2"
    assert set(table["holidays"]) == {"Saint Petersburg", "Moscow"}


def test_a_renamed_policy_takes_over_the_clocks_of_the_old_name(desk: Desk) -> None:
    ivan = desk.actor("ivan")
    scales = file(desk, "anna", "scales")
    desk.clock.advance(timedelta(hours=1))
    policies = [dict(p) for p in DEFAULT_POLICIES]
    next(p for p in policies if p["name"] == "p3")["name"] = "standard"
    renamed = service(
        desk, {"hours": {"business": {"mon-fri": "09:00-18:00"}}, "policies": policies}
    )

    renamed.recompute_sla()

    moved = renamed.get(ivan, scales.key)
    assert moved.sla.policy == "standard"
    first = clock_of(moved, Timer.FIRST_RESPONSE)
    assert (first.policy, first.elapsed_s) == ("standard", 3600)
    assert moved.due_at == desk.clock.now() + timedelta(hours=3)
    assert renamed.history(ivan, scales.key)[-1].change.after == "standard"


def test_holidays_come_per_region_from_the_package_or_an_ical_file(tmp_path: Path) -> None:
    (tmp_path / "moscow.ics").write_text(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261230\r\n"
        "SUMMARY:Office closed\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    table = {
        "Saint Petersburg": {"country": "RU", "years": [2026]},
        "Moscow": {"ical": "moscow.ics"},
    }
    regions = wiring.holidays(table, tmp_path)
    assert date(2026, 1, 1) in regions["Saint Petersburg"].days_off
    assert regions["Moscow"].days_off == frozenset({date(2026, 12, 30)})


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"Moscow": {"country": "RU"}}, "sla.holidays.Moscow.years"),
        ({"Moscow": {"country": "RU", "ical": "x.ics", "years": [2026]}}, "sla.holidays.Moscow"),
        ({"Moscow": {"ical": "missing.ics"}}, "sla.holidays.Moscow.ical"),
        ({"Moscow": "RU"}, "sla.holidays.Moscow"),
        ({"Moscow": {"country": "XX", "years": [2026]}}, "holidays.country"),
    ],
)
def test_bad_holiday_sources_are_refused_naming_the_entry(
    tmp_path: Path, table: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        wiring.holidays(table, tmp_path)
    assert refused.value.field == field
