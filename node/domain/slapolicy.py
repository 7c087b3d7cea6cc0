"""SLA policies, the ordered rules that choose one for a ticket, and the escalation map.

The `[sla]` table of the config file describes them (see `SlaConfig.from_config`);
with none, the node runs `DEFAULT_SLA_CONFIG`: stop-trade tickets respond in 15
minutes and resolve in 4 hours around the clock, the others by priority on
Monday to Friday 09:00-18:00 in the store's time zone.

Policies are tried in order and the first active one whose conditions all hold
(ticket type, category, priority, store, region, client partner, stop-trade)
governs the ticket. A stop-trade ticket counts 24/7 whatever its policy's hours.

The escalation map says what happens when a clock reaches an alarm level
(a warning threshold of its policy, or the breach): per support line and level,
notify the assignee, reassign to the next person of the line who is on shift
and under their load, move the ticket to the next line (L1 -> L2 -> L3), raise
its priority, notify the line's supervisor.
"""

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from node.domain.calendar import Hours
from node.domain.errors import InvalidArgument
from node.domain.sla import ALWAYS_HOURS, Policy, Timer
from node.domain.ticket import Priority, TicketType

ALWAYS = ALWAYS_HOURS

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")


@dataclass(frozen=True, slots=True)
class Subject:
    """What a policy's conditions look at."""

    ticket_type: TicketType
    category: str
    priority: Priority
    store: str
    region: str
    stop_trade: bool
    partner: str = ""
    """The client partner that handed the ticket to this node, '' for the node's own."""


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions of a policy; an empty set means any value."""

    types: frozenset[TicketType] = frozenset()
    categories: frozenset[str] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    stores: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    partners: frozenset[str] = frozenset()
    stop_trade: bool | None = None

    def matches(self, s: Subject) -> bool:
        return (
            (not self.types or s.ticket_type in self.types)
            and (not self.categories or s.category in self.categories)
            and (not self.priorities or s.priority in self.priorities)
            and (not self.stores or s.store in self.stores)
            and (not self.regions or s.region in self.regions)
            and (not self.partners or s.partner in self.partners)
            and (self.stop_trade is None or s.stop_trade == self.stop_trade)
        )


@dataclass(frozen=True, slots=True)
class PolicyRule:
    policy: Policy
    match: Match
    active: bool = True


class Action(StrEnum):
    NOTIFY = "notify"
    REASSIGN = "reassign"
    NEXT_LINE = "next_line"
    RAISE_PRIORITY = "raise_priority"
    NOTIFY_SUPERVISOR = "notify_supervisor"


@dataclass(frozen=True, slots=True)
class Step:
    """What to do when a clock reaches a level.

    Attributes:
        level: a fraction of the target; 1.0 is the breach.
        line: only on tickets of this support line; None for any.
        timer: only for this timer; None for any.
    """

    level: float
    actions: tuple[Action, ...]
    line: str | None = None
    timer: Timer | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A support line: its engineers in escalation order and its supervisor."""

    name: str
    people: tuple[str, ...] = ()
    supervisor: str | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """When an engineer works and how much they carry.

    Attributes:
        hours: a name of the config's hours; on shift while they are open.
        max_open: skipped by reassignment while holding this many open tickets.
    """

    hours: str = ALWAYS
    timezone: str = "UTC"
    max_open: int | None = None


@dataclass(frozen=True, slots=True)
class EscalationMap:
    lines: tuple[Line, ...] = (Line("L1"), Line("L2"), Line("L3"))
    steps: tuple[Step, ...] = ()
    shifts: Mapping[str, Shift] = field(default_factory=dict)

    @property
    def first_line(self) -> str:
        return self.lines[0].name

    def line(self, name: str) -> Line:
        return next((line for line in self.lines if line.name == name), Line(name))

    def actions(self, line: str, timer: Timer, level: float) -> list[Action]:
        """The actions of every step for a clock of timer reaching level on line, in order."""
        found: list[Action] = []
        for step in self.steps:
            if step.level == level and step.line in (None, line) and step.timer in (None, timer):
                found += [a for a in step.actions if a not in found]
        return found

    def next_line(self, name: str) -> str | None:
        names = [line.name for line in self.lines]
        at = names.index(name) if name in names else -1
        return names[at + 1] if 0 <= at < len(names) - 1 else None

    def next_person(
        self, line: str, current: str | None, available: Callable[[str], bool]
    ) -> str | None:
        """The first available engineer of line after current, going round; None if nobody."""
        people = self.line(line).people
        start = people.index(current) + 1 if current in people else 0
        for login in people[start:] + people[:start]:
            if login != current and available(login):
                return login
        return None


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """Everything the SLA engine is configured with.

    Attributes:
        rules: policies in the order they are tried.
        hours: named working hours; `ALWAYS` is always among them.
        pauses: the timers each status pauses.
    """

    rules: tuple[PolicyRule, ...]
    hours: Mapping[str, Hours]
    pauses: Mapping[str, frozenset[Timer]]
    escalation: EscalationMap = EscalationMap()

    @property
    def policies(self) -> dict[str, Policy]:
        """Every policy by name, active or not (clocks of a withdrawn one still read it)."""
        return {rule.policy.name: rule.policy for rule in self.rules}

    def select(self, subject: Subject) -> Policy | None:
        """The first active policy whose conditions hold for subject."""
        for rule in self.rules:
            if rule.active and rule.match.matches(subject):
                return rule.policy
        return None

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], statuses: Collection[str]) -> "SlaConfig":
        """Reads the `[sla]` table of the config file.

        Args:
            raw: the table: `warnings`, `hours`, `pause`, `policies`, `lines`,
                `shifts`, `escalation` (see the README for an example).
            statuses: the workflow's status names, which `pause` must use.

        Raises:
            InvalidArgument: naming the entry and the rule it breaks.
        """
        hours = {ALWAYS: Hours.always()}
        for name, spec in _table("sla.hours", raw.get("hours", {})).items():
            hours[name] = Hours.parse(_table(f"sla.hours.{name}", spec))
        warnings = _warnings("sla.warnings", raw.get("warnings", [75, 90]))
        pauses = _pauses(raw.get("pause"), statuses)
        rules = _rules(raw.get("policies"), hours, warnings)
        escalation = _escalation(raw, hours)
        return cls(rules=rules, hours=hours, pauses=pauses, escalation=escalation)


def duration_s(field_name: str, value: object) -> float:
    """Seconds of a duration written as minutes (90) or with units ('4h', '1h30m', '15m')."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value * 60.0
    found = _DURATION.match(value) if isinstance(value, str) and value else None
    if found is None or not any(found.groups()) or value in ("0h", "0m"):
        raise InvalidArgument(
            field_name, f"{value!r} is not a duration: write minutes or '4h', '1h30m', '15m'"
        )
    hours_part, minutes_part = (int(g or 0) for g in found.groups())
    seconds = (hours_part * 60 + minutes_part) * 60.0
    if seconds <= 0:
        raise InvalidArgument(field_name, "must be longer than zero")
    return seconds


def _table(field_name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(field_name, "must be a table")
    return value


def _list(field_name: str, value: object) -> Sequence[Any]:
    if not isinstance(value, list):
        raise InvalidArgument(field_name, "must be a list")
    return value


def _known(field_name: str, value: object, allowed: Collection[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgument(field_name, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _warnings(field_name: str, value: object) -> tuple[float, ...]:
    percents = _list(field_name, value)
    if not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 100 for p in percents):
        raise InvalidArgument(field_name, "must be whole percents between 1 and 99")
    if list(percents) != sorted(set(percents)):
        raise InvalidArgument(field_name, "must be ascending without repeats")
    return tuple(p / 100 for p in percents)


def _level(field_name: str, value: object) -> float:
    if value == "breach":
        return 1.0
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100:
        return value / 100
    raise InvalidArgument(field_name, f"{value!r} is neither 'breach' nor a percent 1-99")


def _pauses(raw: object, statuses: Collection[str]) -> dict[str, frozenset[Timer]]:
    if raw is None:
        return {s: frozenset(Timer) for s in ("waiting_requester",) if s in statuses}
    pauses: dict[str, frozenset[Timer]] = {}
    for status, timers in _table("sla.pause", raw).items():
        _known("sla.pause", status, statuses)
        names = _list(f"sla.pause.{status}", timers)
        pauses[status] = frozenset(
            Timer(_known(f"sla.pause.{status}", t, list(Timer))) for t in names
        )
    return pauses


def _codes(field_name: str, value: object) -> frozenset[str]:
    items = _list(field_name, value)
    if not all(isinstance(i, str) and i for i in items):
        raise InvalidArgument(field_name, "must be a list of non-empty names")
    return frozenset(items)


def _match(field_name: str, raw: object) -> Match:
    table = _table(field_name, raw)
    unknown = set(table) - {
        "types", "categories", "priorities", "stores", "regions", "partners", "stop_trade"
    }  # fmt: skip
    if unknown:
        raise InvalidArgument(field_name, f"unknown condition {sorted(unknown)[0]!r}")
    stop_trade = table.get("stop_trade")
    if stop_trade is not None and not isinstance(stop_trade, bool):
        raise InvalidArgument(f"{field_name}.stop_trade", "must be true or false")
    types = _codes(f"{field_name}.types", table.get("types", []))
    priorities = _codes(f"{field_name}.priorities", table.get("priorities", []))
    return Match(
        types=frozenset(
            TicketType(_known(f"{field_name}.types", t, list(TicketType))) for t in types
        ),
        categories=_codes(f"{field_name}.categories", table.get("categories", [])),
        priorities=frozenset(
            Priority[_known(f"{field_name}.priorities", p, Priority.__members__)]
            for p in priorities
        ),
        stores=_codes(f"{field_name}.stores", table.get("stores", [])),
        regions=_codes(f"{field_name}.regions", table.get("regions", [])),
        partners=_codes(f"{field_name}.partners", table.get("partners", [])),
        stop_trade=stop_trade,
    )


def _rules(
    raw: object, hours: Mapping[str, Hours], warnings: tuple[float, ...]
) -> tuple[PolicyRule, ...]:
    if raw is None:
        raw = DEFAULT_POLICIES
    rules: list[PolicyRule] = []
    for index, entry in enumerate(_list("sla.policies", raw)):
        where = f"sla.policies[{index}]"
        table = _table(where, entry)
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"{where}.name", "must be a non-empty name")
        if any(rule.policy.name == name for rule in rules):
            raise InvalidArgument(f"{where}.name", f"{name!r} is defined twice")
        targets = {
            timer: duration_s(f"{where}.{timer}", table[timer]) for timer in Timer if timer in table
        }
        if not targets:
            raise InvalidArgument(where, "sets no target: give first_response, resolution or both")
        active = table.get("active", True)
        if not isinstance(active, bool):
            raise InvalidArgument(f"{where}.active", "must be true or false")
        policy = Policy(
            name=name,
            targets_s=targets,
            warnings=_warnings(f"{where}.warnings", table["warnings"])
            if "warnings" in table
            else warnings,
            hours=_known(f"{where}.hours", table.get("hours", "business"), hours),
        )
        rules.append(PolicyRule(policy, _match(f"{where}.match", table.get("match", {})), active))
    return tuple(rules)


def _escalation(raw: Mapping[str, Any], hours: Mapping[str, Hours]) -> EscalationMap:
    lines_raw = _table("sla.lines", raw.get("lines", {"L1": {}, "L2": {}, "L3": {}}))
    lines: list[Line] = []
    for name, entry in lines_raw.items():
        table = _table(f"sla.lines.{name}", entry)
        supervisor = table.get("supervisor")
        if supervisor is not None and (not isinstance(supervisor, str) or not supervisor):
            raise InvalidArgument(f"sla.lines.{name}.supervisor", "must be a login")
        people = _list(f"sla.lines.{name}.people", table.get("people", []))
        if not all(isinstance(p, str) and p for p in people):
            raise InvalidArgument(f"sla.lines.{name}.people", "must be a list of logins")
        lines.append(Line(name, tuple(people), supervisor))
    if not lines:
        raise InvalidArgument("sla.lines", "must name at least one support line")
    shifts: dict[str, Shift] = {}
    for login, entry in _table("sla.shifts", raw.get("shifts", {})).items():
        where = f"sla.shifts.{login}"
        table = _table(where, entry)
        max_open = table.get("max_open")
        if max_open is not None and (not isinstance(max_open, int) or max_open < 1):
            raise InvalidArgument(f"{where}.max_open", "must be a whole number above zero")
        timezone = table.get("timezone", "UTC")
        if not isinstance(timezone, str):
            raise InvalidArgument(f"{where}.timezone", "must be an IANA time zone name")
        shifts[login] = Shift(
            _known(f"{where}.hours", table.get("hours", ALWAYS), hours), timezone, max_open
        )
    steps: list[Step] = []
    line_names = [line.name for line in lines]
    for index, entry in enumerate(_list("sla.escalation", raw.get("escalation", DEFAULT_STEPS))):
        where = f"sla.escalation[{index}]"
        table = _table(where, entry)
        line = table.get("line")
        timer = table.get("timer")
        actions = _list(f"{where}.actions", table.get("actions", []))
        steps.append(
            Step(
                level=_level(f"{where}.at", table.get("at")),
                actions=tuple(Action(_known(f"{where}.actions", a, list(Action))) for a in actions),
                line=None if line is None else _known(f"{where}.line", line, line_names),
                timer=None
                if timer is None
                else Timer(_known(f"{where}.timer", timer, list(Timer))),
            )
        )
    return EscalationMap(lines=tuple(lines), steps=tuple(steps), shifts=shifts)


DEFAULT_HOURS: Mapping[str, Any] = {"business": {"mon-fri": "09:00-18:00"}}

DEFAULT_POLICIES: list[Mapping[str, Any]] = [
    {
        "name": "stop-trade",
        "hours": ALWAYS,
        "first_response": "15m",
        "resolution": "4h",
        "next_update": "1h",
        "match": {"stop_trade": True},
    },
    {
        "name": "p1",
        "first_response": "30m",
        "resolution": "8h",
        "next_update": "2h",
        "match": {"priorities": ["P1"]},
    },
    {"name": "p2", "first_response": "1h", "resolution": "16h", "match": {"priorities": ["P2"]}},
    {"name": "p3", "first_response": "4h", "resolution": "27h", "match": {"priorities": ["P3"]}},
    {"name": "p4", "first_response": "8h", "resolution": "45h"},
]
"""Resolution targets in business hours of a 9-hour day: 27h is three days, 45h five."""

DEFAULT_STEPS: list[Mapping[str, Any]] = [
    {"at": 75, "actions": ["notify"]},
    {"at": 90, "actions": ["notify", "notify_supervisor"]},
    {"at": "breach", "actions": ["next_line", "notify_supervisor"]},
]

DEFAULT_SLA_CONFIG: Mapping[str, Any] = {"hours": DEFAULT_HOURS}
