"""SLA alarms and the escalation map, on both backends: warnings and breaches fire at
their instant and once each, missed ones fire after downtime, paused clocks stay
silent, replies clear the first response, breached tickets move up a line to a free
engineer, and several processes sharing one PostgreSQL handle each alarm once."""

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from node.domain.roles import Role
from node.domain.sla import ClockState, ClockView, Timer
from node.domain.slapolicy import SlaConfig
from node.domain.ticket import HistoryEntry, Priority, Ticket, TicketDraft, Visibility
from node.domain.workflow import DEFAULT_WORKFLOW
from node.services.sla import SlaService
from node.services.tickets import TicketService
from node.store.database import Database
from tests.conftest import START, Desk

NOBODY = frozenset[str]()


# -- helpers -----------------------------------------------------------------------


def file(desk: Desk, login: str, category: str, tickets: TicketService | None = None) -> Ticket:
    service = tickets or desk.tickets
    draft = TicketDraft(category=category, title=f"{category} at {login}")
    return service.create(desk.actor(login), draft)


def assign(desk: Desk, key: str, assignee: str, tickets: TicketService | None = None) -> None:
    service = tickets or desk.tickets
    service.assign(desk.actor("sergey"), key, assignee, None, NOBODY)


def read(desk: Desk, key: str, tickets: TicketService | None = None) -> Ticket:
    return (tickets or desk.tickets).get(desk.actor("sergey"), key)


def history(desk: Desk, key: str) -> list[HistoryEntry]:
    return desk.tickets.history(desk.actor("sergey"), key)


def escalations(desk: Desk, key: str) -> list[str]:
    """The notes of the ticket's alarm entries, oldest first."""
    return [
        e.change.after
        for e in history(desk, key)
        if e.change.action == "escalated" and e.change.field == "sla"
    ]


def sla_changes(desk: Desk, key: str) -> list[tuple[str, str, str, str]]:
    """(action, field, before, after) of what the SLA engine changed on the ticket."""
    return [
        (e.change.action, e.change.field, e.change.before, e.change.after)
        for e in history(desk, key)
        if e.change.action == "sla"
    ]


def notifications(desk: Desk, ticket: Ticket) -> list[tuple[str, str, str]]:
    with desk.db.read() as tx:
        return tx.notifications(ticket.id)


def clock_of(ticket: Ticket, timer: Timer) -> ClockView:
    """The ticket's newest clock of timer (as `get` shows it, finished ones included)."""
    found = [c for c in ticket.clocks if c.timer is timer]
    assert found, f"{ticket.key} has no {timer} clock: {ticket.clocks}"
    return found[-1]


def service_with(desk: Desk, raw: Mapping[str, Any]) -> TicketService:
    """A ticket service over the desk's database and clock with an SLA configured by raw."""
    config = SlaConfig.from_config(raw, DEFAULT_WORKFLOW.kinds)
    sla = SlaService(config, DEFAULT_WORKFLOW)
    return TicketService(desk.db, desk.clock, sla=sla)


def move_to(desk: Desk, instant: datetime) -> None:
    desk.clock.advance(instant - desk.clock.now())


ALL_LEVELS = [
    "first_response at 75%",
    "first_response at 90%",
    "first_response breached",
    "resolution at 75%",
    "resolution at 90%",
    "resolution breached",
]


def levels(notes: list[str]) -> list[str]:
    """'first_response at 75%' of a note 'first_response at 75% of 15 min (...), due ...'."""
    return [n.split(" of ")[0] for n in notes]


# A stop-trade ticket (pos-down) runs the default "stop-trade" policy around the clock:
# first response 15 min, resolution 4 h, warnings at 75 % and 90 %.
FIRST_RESPONSE = timedelta(minutes=15)
RESOLUTION = timedelta(hours=4)


# -- 1. a warning fires at its instant -----------------------------------------------


def test_warning_fires_at_its_instant_and_not_before(desk: Desk) -> None:
    ticket = file(desk, "anna", "pos-down")
    assign(desk, ticket.key, "ivan")
    warning = START + FIRST_RESPONSE * 0.75
    assert read(desk, ticket.key).alarm_at == warning

    move_to(desk, warning - timedelta(microseconds=1))
    assert desk.tickets.fire_alarms() == 0
    assert escalations(desk, ticket.key) == []
    assert notifications(desk, ticket) == []

    move_to(desk, warning)
    assert desk.tickets.fire_alarms() == 1
    [note] = escalations(desk, ticket.key)
    assert note.startswith("first_response at 75% of 15 min (stop-trade)")
    [entry] = [e for e in history(desk, ticket.key) if e.change.action == "escalated"]
    assert (entry.actor, entry.at, entry.change.internal) == ("system", warning, True)
    assert notifications(desk, ticket) == [("ivan", "sla", f"{ticket.key}: {note}")]
    assert ("sla", "notified", "", "ivan") in sla_changes(desk, ticket.key)
    # Store staff never see the alarm: it is internal.
    seen_by_anna = desk.tickets.history(desk.actor("anna"), ticket.key)
    assert all(e.change.action != "escalated" for e in seen_by_anna)


def test_warning_of_an_unassigned_ticket_goes_to_the_line_supervisor(desk: Desk) -> None:
    tickets = service_with(
        desk,
        {
            "hours": {"business": {"mon-fri": "09:00-18:00"}},
            "lines": {"L1": {"people": ["ivan"], "supervisor": "sergey"}, "L2": {}},
            "escalation": [{"at": 75, "actions": ["notify"]}],
        },
    )
    ticket = file(desk, "anna", "pos-down", tickets)
    move_to(desk, START + FIRST_RESPONSE * 0.75)
    assert tickets.fire_alarms() == 1
    [note] = escalations(desk, ticket.key)
    assert notifications(desk, ticket) == [("sergey", "sla", f"{ticket.key}: {note}")]


# -- 2. each level fires once ----------------------------------------------------------


def test_each_level_fires_exactly_once(desk: Desk) -> None:
    ticket = file(desk, "anna", "pos-down")
    assign(desk, ticket.key, "ivan")
    move_to(desk, START + FIRST_RESPONSE * 0.75)
    assert desk.tickets.fire_alarms() == 1

    assert desk.tickets.fire_alarms() == 0
    assert desk.tickets.fire_alarms() == 0
    assert len(escalations(desk, ticket.key)) == 1
    assert len(notifications(desk, ticket)) == 1
    ninety = START + FIRST_RESPONSE * 0.9
    assert desk.tickets.next_alarm() == ninety
    assert read(desk, ticket.key).alarm_at == ninety

    move_to(desk, ninety)
    assert desk.tickets.fire_alarms() == 1
    assert desk.tickets.fire_alarms() == 0
    notes = escalations(desk, ticket.key)
    assert levels(notes) == [
        "first_response at 75%",
        "first_response at 90%",
    ]
    assert desk.tickets.next_alarm() == START + FIRST_RESPONSE


# -- 3. missed alarms after downtime -------------------------------------------------


def test_missed_alarms_fire_once_each_on_the_first_round(desk: Desk) -> None:
    ticket = file(desk, "anna", "pos-down")
    assign(desk, ticket.key, "ivan")
    # The node was down from just after filing until well past the resolution deadline.
    desk.clock.advance(RESOLUTION + timedelta(hours=1))

    assert desk.tickets.fire_alarms() == 1
    notes = escalations(desk, ticket.key)
    assert sorted(levels(notes)) == ALL_LEVELS
    assert desk.tickets.fire_alarms() == 0
    assert escalations(desk, ticket.key) == notes
    after = read(desk, ticket.key)
    assert after.alarm_at is None
    assert desk.tickets.next_alarm() is None
    # The default map moved it up a line at each breach.
    assert after.line == "L3"
    assert [c for c in sla_changes(desk, ticket.key) if c[1] == "line"] == [
        ("sla", "line", "L1", "L2"),
        ("sla", "line", "L2", "L3"),
    ]
    # Both clocks still run, breached, until an engineer replies and resolves.
    for timer in (Timer.FIRST_RESPONSE, Timer.RESOLUTION):
        clock = clock_of(after, timer)
        assert (clock.state, clock.breached) == (ClockState.RUNNING, True)


def test_missed_alarms_fire_in_the_order_they_fell_due(desk: Desk) -> None:
    ticket = file(desk, "anna", "pos-down")
    assign(desk, ticket.key, "ivan")
    desk.clock.advance(RESOLUTION + timedelta(hours=1))
    assert desk.tickets.fire_alarms() == 1
    assert levels(escalations(desk, ticket.key)) == ALL_LEVELS
    # As a node that stayed up: ivan was warned at 75 % and 90 % of the first response,
    # then the breach moved the ticket to L2, where nobody is told of later alarms.
    told = [(r, levels([body.split(": ", 1)[1]])[0]) for r, _, body in notifications(desk, ticket)]
    assert told == [
        ("ivan", "first_response at 75%"),
        ("ivan", "first_response at 90%"),
    ]


def test_missed_alarms_of_interleaved_clocks_take_the_steps_a_running_node_would(
    desk: Desk,
) -> None:
    tickets = service_with(
        desk,
        {
            "policies": [
                {"name": "tight", "first_response": "60m", "resolution": "70m", "hours": "24/7"}
            ],
            "lines": {"L1": {"supervisor": "sergey"}, "L2": {"supervisor": "admin"}},
            "escalation": [
                {"at": "breach", "timer": "resolution", "actions": ["next_line"]},
                {
                    "at": 75,
                    "timer": "first_response",
                    "line": "L1",
                    "actions": ["notify_supervisor"],
                },
            ],
        },
    )
    ticket = file(desk, "boris", "scales", tickets)
    # Due at: first response 75 % 45 min, 90 % 54 min, breach 60 min;
    # resolution 75 % 52.5 min, 90 % 63 min, breach 70 min.
    desk.clock.advance(timedelta(hours=2))
    assert tickets.fire_alarms() == 1
    # At 45 min the ticket was still on L1: a node that stayed up told L1's supervisor.
    assert [n[0] for n in notifications(desk, ticket)] == ["sergey"]
    assert levels(escalations(desk, ticket.key)) == [
        "first_response at 75%",
        "resolution at 75%",
        "first_response at 90%",
        "first_response breached",
        "resolution at 90%",
        "resolution breached",
    ]
    assert read(desk, ticket.key, tickets).line == "L2"


# -- 4. paused clocks stay silent ------------------------------------------------------


def test_nothing_fires_while_paused_and_the_alarm_returns_later_by_the_paused_time(
    desk: Desk,
) -> None:
    # anna's scales ticket is P3 at a flagship store: first response 4 business hours,
    # Monday to Friday 09:00-18:00 Moscow time. Filed Monday 12:12 MSK (09:12 UTC).
    ticket = file(desk, "anna", "scales")
    assert ticket.priority is Priority.P3
    assert read(desk, ticket.key).alarm_at == START + timedelta(hours=3)  # 15:12 MSK

    desk.clock.advance(timedelta(hours=1))  # 13:12 MSK: 1 h used
    desk.tickets.transition(desk.actor("ivan"), ticket.key, "wait_requester", "")
    paused = read(desk, ticket.key)
    assert (paused.alarm_at, paused.due_at) == (None, None)
    assert desk.tickets.next_alarm() is None

    # Far past every deadline it had: Tuesday 11:12 MSK (08:12 UTC).
    desk.clock.advance(timedelta(hours=22))
    assert desk.tickets.fire_alarms() == 0
    assert escalations(desk, ticket.key) == []
    waiting = read(desk, ticket.key)
    assert waiting.alarm_at is None
    first = clock_of(waiting, Timer.FIRST_RESPONSE)
    # Business time paused: Monday 13:12-18:00 and Tuesday 09:00-11:12 MSK.
    assert first.state is ClockState.PAUSED
    assert (first.elapsed_s, first.paused_s) == (3600.0, 7 * 3600.0)

    desk.tickets.transition(desk.actor("ivan"), ticket.key, "resume", "")
    resumed = read(desk, ticket.key)
    # 2 business hours were left to the 75 % warning: Tuesday 13:12 MSK.
    expected = START + timedelta(days=1, hours=1)
    assert resumed.alarm_at == expected
    assert desk.tickets.next_alarm() == expected
    move_to(desk, expected - timedelta(seconds=1))
    assert desk.tickets.fire_alarms() == 0
    move_to(desk, expected)
    assert desk.tickets.fire_alarms() == 1
    [note] = escalations(desk, ticket.key)
    assert note.startswith("first_response at 75% of 240 min (p3)")


def test_a_stop_trade_clock_paused_around_the_clock_moves_its_alarm_by_the_pause(
    desk: Desk,
) -> None:
    ticket = file(desk, "anna", "pos-down")
    desk.clock.advance(timedelta(minutes=5))
    desk.tickets.transition(desk.actor("ivan"), ticket.key, "wait_requester", "")
    desk.clock.advance(timedelta(hours=6))
    assert desk.tickets.fire_alarms() == 0
    assert read(desk, ticket.key).alarm_at is None
    desk.tickets.transition(desk.actor("ivan"), ticket.key, "resume", "")
    assert read(desk, ticket.key).alarm_at == START + FIRST_RESPONSE * 0.75 + timedelta(hours=6)


# -- 5. the first reply ----------------------------------------------------------------


def test_first_public_reply_by_an_engineer_clears_first_response_alarms(desk: Desk) -> None:
    answered = file(desk, "anna", "pos-down")
    unanswered = file(desk, "anna", "pos-down")
    warning = START + FIRST_RESPONSE * 0.75

    desk.clock.advance(timedelta(minutes=2))
    desk.tickets.comment(desk.actor("anna"), unanswered.key, "Still down!", Visibility.PUBLIC)
    desk.tickets.comment(desk.actor("ivan"), unanswered.key, "Checking", Visibility.INTERNAL)
    assert read(desk, unanswered.key).alarm_at == warning
    assert clock_of(read(desk, unanswered.key), Timer.FIRST_RESPONSE).state is ClockState.RUNNING

    desk.clock.advance(timedelta(minutes=6))  # 8 min in, before the warning
    desk.tickets.comment(desk.actor("ivan"), answered.key, "On my way", Visibility.PUBLIC)
    replied = read(desk, answered.key)
    first = clock_of(replied, Timer.FIRST_RESPONSE)
    assert (first.state, first.breached) == (ClockState.MET, False)
    assert first.ended_at == START + timedelta(minutes=8)
    # What is left: the next update (1 h from the reply) and the resolution.
    assert replied.alarm_at == START + timedelta(minutes=8) + timedelta(hours=1) * 0.75

    move_to(desk, START + FIRST_RESPONSE + timedelta(minutes=1))
    assert desk.tickets.fire_alarms() == 1
    assert escalations(desk, answered.key) == []
    assert levels(escalations(desk, unanswered.key)) == [
        "first_response at 75%",
        "first_response at 90%",
        "first_response breached",
    ]


# -- 6. breach on L1 -------------------------------------------------------------------


ESCALATING: Mapping[str, Any] = {
    "warnings": [75],
    "hours": {"business": {"mon-fri": "09:00-18:00"}},
    "policies": [
        {
            "name": "p2",
            "first_response": "30m",
            "resolution": "2h",
            "hours": "24/7",
            "match": {"priorities": ["P2"]},
        },
        {
            "name": "p3",
            "first_response": "1h",
            "resolution": "4h",
            "hours": "24/7",
            "match": {"priorities": ["P3"]},
        },
        {"name": "other", "first_response": "8h", "resolution": "45h"},
    ],
    "lines": {
        "L1": {"people": ["ivan"], "supervisor": "sergey"},
        "L2": {"people": ["olga", "petr", "nina"], "supervisor": "admin"},
        "L3": {},
    },
    "shifts": {
        # 10:12 UTC on Monday is 20:12 in Vladivostok: olga's shift is over.
        "olga": {"hours": "business", "timezone": "Asia/Vladivostok"},
        "petr": {"max_open": 1},
        "nina": {"hours": "business", "timezone": "Europe/Moscow", "max_open": 3},
    },
    "escalation": [
        {"at": 75, "actions": ["notify"]},
        {
            "at": "breach",
            "line": "L1",
            "actions": ["next_line", "raise_priority", "notify_supervisor"],
        },
    ],
}


def test_breach_on_l1_moves_up_to_the_first_free_engineer_of_l2(desk: Desk) -> None:
    for login in ("petr", "nina"):
        desk.admin.add_user(login, login.title(), Role.AGENT, None)
    tickets = service_with(desk, ESCALATING)
    # petr already carries as many open tickets as he may.
    load = file(desk, "boris", "access", tickets)
    assign(desk, load.key, "petr", tickets)
    ticket = file(desk, "anna", "scales", tickets)
    assert (ticket.priority, ticket.sla.policy, ticket.line) == (Priority.P3, "p3", "L1")
    assign(desk, ticket.key, "ivan", tickets)

    desk.clock.advance(timedelta(minutes=45))
    assert tickets.fire_alarms() == 1
    assert [n[0] for n in notifications(desk, ticket)] == ["ivan"]

    desk.clock.advance(timedelta(minutes=15))  # 10:12 UTC: the first response is breached
    assert tickets.fire_alarms() == 1
    after = read(desk, ticket.key, tickets)
    assert (after.line, after.assignee) == ("L2", "nina")
    assert after.priority is Priority.P2
    assert after.sla.policy == "p2"
    changes = sla_changes(desk, ticket.key)
    for expected in [
        ("sla", "notified", "", "ivan"),
        ("sla", "line", "L1", "L2"),
        ("sla", "assignee", "ivan", "nina"),
        ("sla", "priority", "P3", "P2"),
        ("sla", "sla_policy", "p3", "p2"),
        ("sla", "notified", "", "admin"),
    ]:
        assert expected in changes, f"{expected} not in {changes}"
    notes = escalations(desk, ticket.key)
    assert levels(notes) == [
        "first_response at 75%",
        "first_response breached",
    ]
    assert [n[0] for n in notifications(desk, ticket)] == ["ivan", "admin"]
    # The resolution clock carried its hour over to p2's 2 h target: 75 % at 1.5 h.
    resolution = clock_of(after, Timer.RESOLUTION)
    assert (resolution.policy, resolution.target_s, resolution.elapsed_s) == ("p2", 7200.0, 3600.0)
    assert after.alarm_at == START + timedelta(minutes=90)
    # Nothing of the breach fires again under the new policy.
    assert tickets.fire_alarms() == 0
    assert read(desk, load.key, tickets).assignee == "petr"


def test_reassign_goes_round_the_line_to_the_next_free_engineer(desk: Desk) -> None:
    desk.admin.add_user("petr", "Petr", Role.AGENT, None)
    tickets = service_with(
        desk,
        {
            "warnings": [50],
            "hours": {"business": {"mon-fri": "09:00-18:00"}},
            "policies": [{"name": "fast", "first_response": "1h", "hours": "24/7"}],
            "lines": {"L1": {"people": ["olga", "ivan", "sergey", "petr"]}},
            "shifts": {
                "sergey": {"hours": "business", "timezone": "Asia/Vladivostok"},
                "olga": {"max_open": 1},
            },
            "escalation": [
                {"at": 50, "actions": ["reassign"]},
                {"at": "breach", "actions": ["reassign"]},
            ],
        },
    )
    ticket = file(desk, "anna", "pos-down", tickets)
    assign(desk, ticket.key, "ivan", tickets)
    # After ivan: sergey is off shift (20:42 in Vladivostok), so petr.
    desk.clock.advance(timedelta(minutes=30))
    assert tickets.fire_alarms() == 1
    assert read(desk, ticket.key, tickets).assignee == "petr"
    # After petr, going round: olga, who has room for this one ticket.
    desk.clock.advance(timedelta(minutes=30))
    assert tickets.fire_alarms() == 1
    assert read(desk, ticket.key, tickets).assignee == "olga"
    assert [c for c in sla_changes(desk, ticket.key) if c[1] == "assignee"] == [
        ("sla", "assignee", "ivan", "petr"),
        ("sla", "assignee", "petr", "olga"),
    ]


def test_reassign_with_nobody_free_keeps_the_assignee_and_says_so(desk: Desk) -> None:
    tickets = service_with(
        desk,
        {
            "policies": [
                {
                    "name": "fast",
                    "first_response": "1h",
                    "hours": "24/7",
                    "match": {"stop_trade": True},
                }
            ],
            "lines": {"L1": {"people": ["ivan", "olga"]}},
            "shifts": {"olga": {"max_open": 1}},
            "escalation": [{"at": "breach", "actions": ["reassign"]}],
        },
    )
    load = file(desk, "boris", "scales", tickets)  # under no policy: it never fires
    assign(desk, load.key, "olga", tickets)
    ticket = file(desk, "anna", "pos-down", tickets)
    assign(desk, ticket.key, "ivan", tickets)
    desk.clock.advance(timedelta(hours=1))
    assert tickets.fire_alarms() == 1
    assert read(desk, ticket.key, tickets).assignee == "ivan"
    assert ("sla", "assignee", "", "nobody of the line is free") in sla_changes(desk, ticket.key)


# -- 7. several processes, one PostgreSQL -------------------------------------------------


def test_several_processes_handle_each_alarm_once(desk: Desk) -> None:
    if desk.db.is_sqlite:
        pytest.skip("SQLite serves one node process; SKIP LOCKED sharing is PostgreSQL's")
    count = 60
    keys = [file(desk, "anna" if i % 2 else "boris", "pos-down").key for i in range(count)]
    desk.clock.advance(RESOLUTION + timedelta(minutes=1))
    databases = [Database(str(desk.db.url.render_as_string(hide_password=False))) for _ in "ab"]
    try:
        services = [TicketService(db, desk.clock) for db in databases]
        start = threading.Barrier(len(services))
        fired = [0] * len(services)
        errors: list[BaseException] = []

        def run(index: int) -> None:
            try:
                start.wait(timeout=30)
                for _ in range(5):
                    fired[index] += services[index].fire_alarms()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(services))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert sum(fired) == count, fired
        for key in keys:
            assert sorted(levels(escalations(desk, key))) == ALL_LEVELS, key
        assert desk.tickets.next_alarm() is None
    finally:
        for db in databases:
            db.dispose()
