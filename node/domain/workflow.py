"""A configurable ticket workflow and the rules of the field that no configuration lifts.

A workflow is a set of named statuses, each of one `StatusKind`, and named
transitions between them, each open to some roles. The node ships a default
(new → in progress → waiting on requester / partner → resolved → closed, and
cancelled); an organisation may describe its own in the config file.

Whatever the configuration, these rules hold, judged by the kinds of statuses:
- only the assignee or a co-assignee moves a ticket into a resolved status;
- only an administrator moves a ticket out of a closed or cancelled status;
- a requester acts only on tickets of their own store (checked by the services).
A refused transition raises `FailedPrecondition` naming the rule and listing the
transitions the caller may take instead.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.domain import validation
from node.domain.errors import FailedPrecondition, InvalidArgument
from node.domain.roles import STAFF, Actor, Role
from node.domain.status import FINAL_KINDS, StatusKind
from node.domain.ticket import Change, Ticket


@dataclass(frozen=True, slots=True)
class Transition:
    """A named move between statuses.

    Attributes:
        sources: the statuses it leaves from.
        roles: who may take it (further limited by the rules of the field).
        reason_required: the caller must say why (dispute, reopen, cancel).
    """

    name: str
    sources: frozenset[str]
    target: str
    roles: frozenset[Role]
    reason_required: bool = False


@dataclass(frozen=True, slots=True)
class Workflow:
    """Statuses by name with their kinds, the transitions, and the status new tickets get."""

    kinds: Mapping[str, StatusKind]
    transitions: tuple[Transition, ...]
    initial: str

    def kind(self, status: str) -> StatusKind:
        return self.kinds[status]

    def statuses_of(self, *kinds: StatusKind) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind in kinds]

    def open_statuses(self) -> list[str]:
        """The statuses of tickets not closed or cancelled."""
        return [name for name, kind in self.kinds.items() if kind not in FINAL_KINDS]

    def refusal(self, transition: Transition, ticket: Ticket, actor: Actor) -> str | None:
        """Why actor may not take transition on ticket now, or None if it may."""
        if ticket.status not in transition.sources:
            return f"'{transition.name}' does not leave from '{ticket.status}'"
        if actor.role not in transition.roles:
            roles = ", ".join(sorted(transition.roles))
            return f"'{transition.name}' is for {roles}, not {actor.role}"
        if self.kind(ticket.status) in FINAL_KINDS and actor.role is not Role.ADMIN:
            return f"only an administrator takes a ticket out of '{ticket.status}'"
        entering_resolved = self.kind(transition.target) is StatusKind.RESOLVED
        if entering_resolved and not ticket.is_worked_by(actor.login):
            return "only the assignee or a co-assignee may resolve"
        return None

    def available(self, ticket: Ticket, actor: Actor) -> list[Transition]:
        """The transitions actor may take on ticket now: of those leaving its status, the
        ones `refusal` lets through."""
        return [
            t
            for t in self.transitions
            if ticket.status in t.sources and self.refusal(t, ticket, actor) is None
        ]

    def apply(
        self, ticket: Ticket, actor: Actor, name: str, reason: str, now: datetime
    ) -> list[Change]:
        """Takes the named transition, returning the changes made.

        Args:
            ticket: changed in place.
            actor: who asks.
            name: the transition's name.
            reason: why; required by some transitions.
            now: the instant of the change.

        Raises:
            InvalidArgument: no transition has that name, or a required reason is missing.
            FailedPrecondition: a rule refuses it; the message lists what actor may do instead.
        """
        transition = next((t for t in self.transitions if t.name == name), None)
        if transition is None:
            names = ", ".join(t.name for t in self.transitions)
            raise InvalidArgument("transition", f"unknown transition {name!r}; known: {names}")
        refused = self.refusal(transition, ticket, actor)
        if refused is not None:
            allowed = ", ".join(t.name for t in self.available(ticket, actor)) or "none"
            raise FailedPrecondition(
                f"transition refused: {refused}; "
                f"allowed for {actor.login} from '{ticket.status}': {allowed}"
            )
        reason = validation.reason(reason, required=transition.reason_required)
        changes = self._enter(ticket, actor, transition.target, now)
        if reason:
            changes.append(Change("transition", "reason", "", reason))
        return changes

    def move(self, ticket: Ticket, actor: Actor, target: str, now: datetime) -> list[Change]:
        """Takes ticket to target through the fewest transitions, whoever they are open
        to: for what a partner node reports, which the link authorises rather than a role.
        Each step is recorded; no step when ticket is in target already.

        Raises:
            FailedPrecondition: no transitions lead from the ticket's status to target.
        """
        if target not in self.kinds:
            raise InvalidArgument("status", f"unknown status {target!r}")
        paths: dict[str, list[str]] = {ticket.status: []}
        frontier = [ticket.status]
        while frontier and target not in paths:
            step = []
            for status in frontier:
                for t in self.transitions:
                    if status in t.sources and t.target not in paths:
                        paths[t.target] = [*paths[status], t.target]
                        step.append(t.target)
            frontier = step
        if target not in paths:
            raise FailedPrecondition(f"no transitions lead from '{ticket.status}' to '{target}'")
        changes: list[Change] = []
        for status in paths[target]:
            changes += self._enter(ticket, actor, status, now)
        return changes

    def _enter(self, ticket: Ticket, actor: Actor, target: str, now: datetime) -> list[Change]:
        before = self.kind(ticket.status)
        after = self.kind(target)
        changes = ticket.set("transition", "status", target)
        taking_up = before is StatusKind.NEW and after is StatusKind.OPEN
        if taking_up and ticket.assignee is None and actor.role in STAFF:
            changes += ticket.set("assigned", "assignee", actor.login)
        if after is StatusKind.RESOLVED:
            ticket.resolved_at = now
        elif after not in FINAL_KINDS:
            ticket.resolved_at = None
        ticket.closed_at = now if after in FINAL_KINDS else None
        return changes

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Workflow":
        """Builds a workflow from its description in the config file.

        The description has `initial` (a status name), `statuses` (name → kind) and
        `transitions` (a list of tables with name, from, to, roles, reason_required).

        Raises:
            InvalidArgument: naming the entry (e.g. `workflow.transitions[2].to`) and the rule.
        """
        kinds = _statuses(config.get("statuses"))
        initial = config.get("initial")
        if not isinstance(initial, str) or kinds.get(initial) is not StatusKind.NEW:
            raise InvalidArgument("workflow.initial", "must name a status of kind 'new'")
        transitions = _transitions(config.get("transitions"), kinds)
        for status, kind in kinds.items():
            leaving = [t for t in transitions if status in t.sources]
            if kind not in FINAL_KINDS and not leaving:
                raise InvalidArgument("workflow.statuses", f"no transition leaves '{status}'")
            if kind in FINAL_KINDS and any(t.roles != {Role.ADMIN} for t in leaving):
                raise InvalidArgument(
                    "workflow.transitions", f"only admin may take a ticket out of '{status}'"
                )
        return cls(kinds=kinds, transitions=tuple(transitions), initial=initial)


def _statuses(raw: object) -> dict[str, StatusKind]:
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidArgument("workflow.statuses", "must be a non-empty table of name = kind")
    kinds: dict[str, StatusKind] = {}
    for name, kind in raw.items():
        validation.code("workflow.statuses", str(name))
        if not isinstance(kind, str) or kind not in set(StatusKind):
            allowed = ", ".join(StatusKind)
            raise InvalidArgument(f"workflow.statuses.{name}", f"kind must be one of {allowed}")
        kinds[str(name)] = StatusKind(kind)
    return kinds


def _names(field: str, raw: object, allowed: Iterable[str]) -> list[str]:
    allowed = set(allowed)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise InvalidArgument(field, "must be a non-empty list")
    unknown = [str(name) for name in raw if not isinstance(name, str) or name not in allowed]
    if unknown:
        raise InvalidArgument(field, f"unknown: {', '.join(unknown)}")
    return [str(name) for name in raw]


def _transitions(raw: object, kinds: Mapping[str, StatusKind]) -> list[Transition]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise InvalidArgument("workflow.transitions", "must be a non-empty list")
    result: list[Transition] = []
    for i, entry in enumerate(raw):
        where = f"workflow.transitions[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidArgument(where, "must be a table")
        name = validation.code(f"{where}.name", str(entry.get("name", "")))
        if any(t.name == name for t in result):
            raise InvalidArgument(f"{where}.name", f"{name!r} is defined twice")
        target = entry.get("to")
        if not isinstance(target, str) or target not in kinds:
            raise InvalidArgument(f"{where}.to", f"unknown status {target!r}")
        sources = _names(f"{where}.from", entry.get("from"), kinds)
        if target in sources:
            raise InvalidArgument(f"{where}.from", f"must not contain its own target {target!r}")
        roles = _names(f"{where}.roles", entry.get("roles"), (r.value for r in Role))
        reason_required = entry.get("reason_required", False)
        if not isinstance(reason_required, bool):
            raise InvalidArgument(f"{where}.reason_required", "must be true or false")
        result.append(
            Transition(
                name=name,
                sources=frozenset(sources),
                target=str(target),
                roles=frozenset(Role(r) for r in roles),
                reason_required=reason_required,
            )
        )
    return result


_OPEN = ["new", "in_progress", "waiting_requester", "waiting_partner"]
_STAFF = ["agent", "supervisor", "admin"]

DEFAULT_CONFIG: Mapping[str, Any] = {
    "initial": "new",
    "statuses": {
        "new": "new",
        "in_progress": "open",
        "waiting_requester": "waiting",
        "waiting_partner": "waiting",
        "resolved": "resolved",
        "closed": "closed",
        "cancelled": "cancelled",
    },
    "transitions": [
        {"name": "start", "from": ["new"], "to": "in_progress", "roles": _STAFF},
        {
            "name": "wait_requester",
            "from": ["new", "in_progress", "waiting_partner"],
            "to": "waiting_requester",
            "roles": _STAFF,
        },
        {
            "name": "wait_partner",
            "from": ["new", "in_progress", "waiting_requester"],
            "to": "waiting_partner",
            "roles": [*_STAFF, "system"],
        },
        {
            "name": "resume",
            "from": ["waiting_requester", "waiting_partner"],
            "to": "in_progress",
            "roles": [*_STAFF, "system"],
        },
        {"name": "resolve", "from": _OPEN, "to": "resolved", "roles": _STAFF},
        {"name": "confirm", "from": ["resolved"], "to": "closed", "roles": ["requester"]},
        {
            "name": "dispute",
            "from": ["resolved"],
            "to": "in_progress",
            "roles": ["requester"],
            "reason_required": True,
        },
        {"name": "auto_close", "from": ["resolved"], "to": "closed", "roles": ["system"]},
        {
            "name": "reopen",
            "from": ["closed"],
            "to": "in_progress",
            "roles": ["admin"],
            "reason_required": True,
        },
        {
            "name": "cancel",
            "from": _OPEN,
            "to": "cancelled",
            "roles": ["requester", "supervisor", "admin"],
            "reason_required": True,
        },
    ],
}

DEFAULT_WORKFLOW = Workflow.from_config(DEFAULT_CONFIG)
