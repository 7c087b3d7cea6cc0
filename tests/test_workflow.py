"""The ticket workflow: the rules of the field hold for any sequence of moves, and a
malformed workflow description is refused with the entry it got wrong."""

import copy
import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import config as configuration
from node.domain.errors import FailedPrecondition, InvalidArgument
from node.domain.roles import STAFF, SYSTEM_ACTOR, Actor, Role
from node.domain.status import FINAL_KINDS, StatusKind
from node.domain.ticket import Change, Level, Priority, Ticket, TicketType
from node.domain.workflow import DEFAULT_CONFIG, DEFAULT_WORKFLOW, Transition, Workflow

T0 = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)

ANNA = Actor("anna", Role.REQUESTER, "msk-001")
IVAN = Actor("ivan", Role.AGENT)
OLGA = Actor("olga", Role.AGENT)
SERGEY = Actor("sergey", Role.SUPERVISOR)
ADMIN = Actor("admin", Role.ADMIN)
ACTORS = [ANNA, IVAN, OLGA, SERGEY, ADMIN, SYSTEM_ACTOR]
STAFF_LOGINS = [a.login for a in ACTORS if a.role in STAFF]

NAMES = [t["name"] for t in DEFAULT_CONFIG["transitions"]]
BY_NAME: dict[str, Mapping[str, Any]] = {t["name"]: t for t in DEFAULT_CONFIG["transitions"]}
KIND_OF: dict[str, StatusKind] = {
    name: StatusKind(kind) for name, kind in DEFAULT_CONFIG["statuses"].items()
}


def make_ticket(
    status: str = "new",
    assignee: str | None = None,
    co_assignees: frozenset[str] = frozenset(),
    resolved_at: datetime | None = None,
    closed_at: datetime | None = None,
) -> Ticket:
    return Ticket(
        id=1,
        key="RET-1",
        title="POS does not work",
        description="",
        ticket_type=TicketType.INCIDENT,
        category="pos-down",
        requester="anna",
        store="msk-001",
        impact=Level.HIGH,
        urgency=Level.HIGH,
        priority=Priority.P1,
        stop_trade=True,
        status=status,
        created_at=T0,
        updated_at=T0,
        assignee=assignee,
        co_assignees=co_assignees,
        resolved_at=resolved_at,
        closed_at=closed_at,
    )


def resolved_ticket(assignee: str = "ivan") -> Ticket:
    return make_ticket("resolved", assignee=assignee, resolved_at=T0)


def closed_ticket() -> Ticket:
    return make_ticket("closed", assignee="ivan", resolved_at=T0, closed_at=T0)


def allowed_in(message: str) -> list[str]:
    """The transition names a refusal message offers instead."""
    _, _, tail = message.rpartition(": ")
    return [] if tail == "none" else tail.split(", ")


def available_names(ticket: Ticket, actor: Actor) -> list[str]:
    return [t.name for t in DEFAULT_WORKFLOW.available(ticket, actor)]


def expected_refusal(ticket: Ticket, actor: Actor, name: str) -> str | None:
    """A word the refusal message must carry, from the configuration and the rules of the
    field, or None when the move is allowed."""
    spec = BY_NAME[name]
    if ticket.status not in spec["from"]:
        return f"'{ticket.status}'"
    if actor.role.value not in spec["roles"]:
        return actor.role.value
    if KIND_OF[ticket.status] in FINAL_KINDS and actor.role is not Role.ADMIN:
        return "administrator"
    if KIND_OF[spec["to"]] is StatusKind.RESOLVED and not ticket.is_worked_by(actor.login):
        return "assignee"
    return None


# --- hypothesis: any sequence of moves keeps the rules of the field ---------------------------

REASONS = st.one_of(
    st.sampled_from(["", "   ", "\n", "part is on its way", "still broken"]),
    st.text(max_size=12),
)


Step = tuple[int, int, str]
"""How to choose the move (0, 1: among those offered; 2: any; 3: reassign), which one, reason."""

step = st.tuples(st.integers(0, 3), st.integers(0, 10_000), REASONS)
steps = st.lists(step, max_size=25)


def drive(ticket: Ticket, sequence: list[Step]) -> set[str]:
    """Takes the moves of sequence, most of them among those offered to some actor, some at
    random, some reassigning the ticket; checks each move and returns the transitions taken."""
    taken: set[str] = set()
    now = T0
    for how, which, reason in sequence:
        now += timedelta(minutes=7)
        if how == 3:
            ticket.set("assigned", "assignee", STAFF_LOGINS[which % len(STAFF_LOGINS)])
            continue
        offered = [(a, n) for a in ACTORS for n in available_names(ticket, a)]
        if how < 2 and offered:
            actor, name = offered[which % len(offered)]
        else:
            actor, name = ACTORS[which % len(ACTORS)], NAMES[which // len(ACTORS) % len(NAMES)]
        status = ticket.status
        check_move(ticket, actor, name, reason, now)
        if ticket.status != status:
            taken.add(name)
    return taken


def check_move(ticket: Ticket, actor: Actor, name: str, reason: str, now: datetime) -> None:
    """Applies one move and checks everything the rules promise about it."""
    before = dataclasses.replace(ticket)
    offered = available_names(before, actor)
    refusal = expected_refusal(before, actor, name)
    spec = BY_NAME[name]
    try:
        changes = DEFAULT_WORKFLOW.apply(ticket, actor, name, reason, now)
    except FailedPrecondition as error:
        message = str(error)
        assert refusal is not None, f"{actor} should be allowed {name} from {before.status}"
        assert refusal in message
        assert name not in offered
        assert allowed_in(message) == offered
        assert ticket == before
        return
    except InvalidArgument as error:
        assert refusal is None, "a rule's refusal comes before the reason is checked"
        assert error.field == "reason"
        assert ticket == before
        if not reason.strip():
            assert spec.get("reason_required", False)
        return
    assert refusal is None, f"{actor} took {name} from {before.status}: {refusal}"
    assert name in offered
    assert not (spec.get("reason_required", False) and not reason.strip())

    after_kind = KIND_OF[ticket.status]
    before_kind = KIND_OF[before.status]
    assert ticket.status == spec["to"]
    if after_kind is StatusKind.RESOLVED:
        assert before.is_worked_by(actor.login)
    if before_kind in FINAL_KINDS:
        assert actor.role is Role.ADMIN

    # resolved_at: set iff resolved, or final having come from resolved
    if after_kind is StatusKind.RESOLVED:
        assert ticket.resolved_at == now
    elif after_kind in FINAL_KINDS:
        if before_kind is StatusKind.RESOLVED:
            assert ticket.resolved_at == before.resolved_at is not None
        else:
            assert ticket.resolved_at is None
    else:
        assert ticket.resolved_at is None
    assert ticket.closed_at == (now if after_kind in FINAL_KINDS else None)

    # assignment: 'start' takes an unassigned ticket; nothing else moves the assignee
    if name == "start" and before.assignee is None:
        assert ticket.assignee == actor.login
    elif before_kind is not StatusKind.NEW:
        assert ticket.assignee == before.assignee

    # the history records every field that changed, and the reason
    recorded = {(c.field, c.before, c.after) for c in changes}
    assert ("status", before.status, ticket.status) in recorded
    if ticket.assignee != before.assignee:
        assert ("assignee", before.assignee or "", ticket.assignee) in recorded
    if reason.strip():
        assert Change("transition", "reason", "", reason.strip()) in changes
    else:
        assert all(c.field != "reason" for c in changes)


@settings(max_examples=200, deadline=None)
@given(
    co_assignees=st.frozensets(st.sampled_from(STAFF_LOGINS), max_size=2),
    sequence=steps,
)
def test_any_sequence_of_moves_keeps_the_rules_of_the_field(
    co_assignees: frozenset[str], sequence: list[Step]
) -> None:
    drive(make_ticket(co_assignees=co_assignees), sequence)


@settings(max_examples=100, deadline=None)
@given(
    status=st.sampled_from(list(KIND_OF)),
    assignee=st.sampled_from([None, *STAFF_LOGINS]),
    co_assignees=st.frozensets(st.sampled_from(STAFF_LOGINS), max_size=2),
    actor=st.sampled_from(ACTORS),
    name=st.sampled_from(NAMES),
    reason=REASONS,
)
def test_one_move_from_any_status(
    *,
    status: str,
    assignee: str | None,
    co_assignees: frozenset[str],
    actor: Actor,
    name: str,
    reason: str,
) -> None:
    kind = KIND_OF[status]
    resolved = T0 if kind in (StatusKind.RESOLVED, StatusKind.CLOSED) else None
    closed = T0 if kind in FINAL_KINDS else None
    ticket = make_ticket(status, assignee, co_assignees, resolved, closed)
    check_move(ticket, actor, name, reason, T0 + timedelta(hours=1))


def test_random_sequences_reach_every_transition() -> None:
    """Guards the property test above: its moves do get taken, not only refused. (Hypothesis
    draws strings from the constants of the code base, so the examples shift as code is added:
    the margin of examples keeps every transition reached.)"""
    taken: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(sequence=st.lists(step, min_size=25, max_size=25))
    def run(sequence: list[Step]) -> None:
        taken.update(drive(make_ticket(), sequence))

    run()
    assert taken == set(NAMES)


# --- examples: the rules store staff and engineers meet every day ------------------------------


def test_requester_confirms_a_resolved_ticket_and_it_closes() -> None:
    ticket = resolved_ticket()
    now = T0 + timedelta(hours=2)
    DEFAULT_WORKFLOW.apply(ticket, ANNA, "confirm", "", now)
    assert DEFAULT_WORKFLOW.kind(ticket.status) is StatusKind.CLOSED
    assert ticket.closed_at == now
    assert ticket.resolved_at == T0, "closing keeps when it was resolved"


def test_dispute_needs_a_reason_and_sends_the_ticket_back_to_work() -> None:
    ticket = resolved_ticket()
    before = dataclasses.replace(ticket)
    for empty in ("", "   ", "\n\t"):
        with pytest.raises(InvalidArgument) as refused:
            DEFAULT_WORKFLOW.apply(ticket, ANNA, "dispute", empty, T0)
        assert refused.value.field == "reason"
        assert ticket == before

    changes = DEFAULT_WORKFLOW.apply(ticket, ANNA, "dispute", "  still no card payments ", T0)
    assert ticket.status == "in_progress"
    assert ticket.resolved_at is None
    assert ticket.closed_at is None
    assert ticket.assignee == "ivan", "the engineer who resolved keeps the ticket"
    assert Change("transition", "reason", "", "still no card payments") in changes


def test_an_agent_who_is_not_assigned_cannot_resolve() -> None:
    ticket = make_ticket("in_progress", assignee="ivan")
    before = dataclasses.replace(ticket)
    with pytest.raises(FailedPrecondition, match="assignee"):
        DEFAULT_WORKFLOW.apply(ticket, OLGA, "resolve", "", T0)
    assert ticket == before
    assert "resolve" not in available_names(ticket, OLGA)
    assert "resolve" not in available_names(ticket, SERGEY), "not even a supervisor"


def test_a_co_assignee_may_resolve() -> None:
    ticket = make_ticket("in_progress", assignee="ivan", co_assignees=frozenset({"olga"}))
    DEFAULT_WORKFLOW.apply(ticket, OLGA, "resolve", "", T0)
    assert ticket.status == "resolved"
    assert ticket.resolved_at == T0


def test_nobody_resolves_an_unassigned_ticket() -> None:
    for actor in ACTORS:
        assert "resolve" not in available_names(make_ticket("new"), actor)


def test_only_an_admin_reopens_a_closed_ticket() -> None:
    for actor in (ANNA, IVAN, SERGEY, SYSTEM_ACTOR):
        ticket = closed_ticket()
        with pytest.raises(FailedPrecondition):
            DEFAULT_WORKFLOW.apply(ticket, actor, "reopen", "the till died again", T0)
        assert ticket == closed_ticket()
        assert available_names(ticket, actor) == []

    ticket = closed_ticket()
    with pytest.raises(InvalidArgument) as refused:
        DEFAULT_WORKFLOW.apply(ticket, ADMIN, "reopen", "", T0)
    assert refused.value.field == "reason"

    now = T0 + timedelta(days=1)
    DEFAULT_WORKFLOW.apply(ticket, ADMIN, "reopen", "the till died again", now)
    assert DEFAULT_WORKFLOW.kind(ticket.status) not in FINAL_KINDS
    assert ticket.closed_at is None
    assert ticket.resolved_at is None


def test_a_cancelled_ticket_stays_cancelled_for_everyone_but_an_admin() -> None:
    for actor in ACTORS:
        if actor.role is not Role.ADMIN:
            ticket = make_ticket("cancelled", closed_at=T0)
            assert available_names(ticket, actor) == []


def test_a_refusal_lists_the_transitions_the_caller_may_take() -> None:
    ticket = make_ticket("in_progress", assignee="ivan")
    with pytest.raises(FailedPrecondition) as refused:
        DEFAULT_WORKFLOW.apply(ticket, IVAN, "confirm", "", T0)
    offered = allowed_in(str(refused.value))
    assert offered == available_names(ticket, IVAN)
    assert "resolve" in offered, "the assignee is told resolving is open to them"
    assert "confirm" not in offered

    with pytest.raises(FailedPrecondition) as refused:
        DEFAULT_WORKFLOW.apply(closed_ticket(), IVAN, "reopen", "", T0)
    assert str(refused.value).endswith(": none")


def test_start_assigns_an_unassigned_ticket_to_the_engineer() -> None:
    for actor in (IVAN, SERGEY, ADMIN):
        ticket = make_ticket()
        changes = DEFAULT_WORKFLOW.apply(ticket, actor, "start", "", T0)
        assert ticket.assignee == actor.login
        assert Change("assigned", "assignee", "", actor.login) in changes


def test_start_does_not_take_a_ticket_assigned_to_someone_else() -> None:
    ticket = make_ticket(assignee="olga")
    DEFAULT_WORKFLOW.apply(ticket, IVAN, "start", "", T0)
    assert ticket.status == "in_progress"
    assert ticket.assignee == "olga"


def test_a_requester_cannot_start_work() -> None:
    ticket = make_ticket()
    with pytest.raises(FailedPrecondition, match="requester"):
        DEFAULT_WORKFLOW.apply(ticket, ANNA, "start", "", T0)
    assert ticket.assignee is None


def test_the_system_closes_a_resolved_ticket_nobody_confirmed() -> None:
    ticket = resolved_ticket()
    DEFAULT_WORKFLOW.apply(ticket, SYSTEM_ACTOR, "auto_close", "", T0 + timedelta(hours=72))
    assert ticket.status == "closed"
    assert ticket.closed_at == T0 + timedelta(hours=72)


def test_an_unknown_transition_is_an_invalid_argument() -> None:
    ticket = make_ticket()
    with pytest.raises(InvalidArgument) as refused:
        DEFAULT_WORKFLOW.apply(ticket, IVAN, "teleport", "", T0)
    assert refused.value.field == "transition"
    assert ticket == make_ticket()


def test_the_rules_hold_whatever_the_configuration() -> None:
    """A configuration cannot open resolving to someone who does not work the ticket."""
    config = copy.deepcopy(dict(DEFAULT_CONFIG))
    for entry in config["transitions"]:
        if entry["name"] == "resolve":
            entry["roles"] = [r.value for r in Role]
    workflow = Workflow.from_config(config)
    ticket = make_ticket("in_progress", assignee="ivan")
    for actor in (ANNA, OLGA, SERGEY, ADMIN, SYSTEM_ACTOR):
        with pytest.raises(FailedPrecondition, match="assignee"):
            workflow.apply(ticket, actor, "resolve", "", T0)
    workflow.apply(ticket, IVAN, "resolve", "", T0)
    assert ticket.status == "resolved"


def test_only_an_admin_leaves_a_final_status_even_if_a_transition_lets_others() -> None:
    """A workflow built without from_config's checks still keeps closed tickets closed."""
    revive = Transition(
        "revive", frozenset({"closed", "cancelled"}), "in_progress", frozenset(Role)
    )
    workflow = dataclasses.replace(
        DEFAULT_WORKFLOW, transitions=(*DEFAULT_WORKFLOW.transitions, revive)
    )
    for actor in (ANNA, IVAN, SERGEY, SYSTEM_ACTOR):
        for ticket in (closed_ticket(), make_ticket("cancelled", closed_at=T0)):
            before = dataclasses.replace(ticket)
            with pytest.raises(FailedPrecondition, match="administrator"):
                workflow.apply(ticket, actor, "revive", "", T0)
            assert ticket == before
    ticket = closed_ticket()
    workflow.apply(ticket, ADMIN, "revive", "", T0)
    assert ticket.status == "in_progress"


# --- Workflow.from_config ----------------------------------------------------------------------


def to_config(workflow: Workflow) -> dict[str, Any]:
    """The description a workflow is built from, as the config file holds it."""

    def entry(t: Transition) -> dict[str, Any]:
        return {
            "name": t.name,
            "from": sorted(t.sources),
            "to": t.target,
            "roles": sorted(r.value for r in t.roles),
            "reason_required": t.reason_required,
        }

    return {
        "initial": workflow.initial,
        "statuses": {name: kind.value for name, kind in workflow.kinds.items()},
        "transitions": [entry(t) for t in workflow.transitions],
    }


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert isinstance(value, list)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def workflow_toml(config: Mapping[str, Any]) -> str:
    lines = ["[workflow]", f"initial = {toml_value(config['initial'])}", "", "[workflow.statuses]"]
    lines += [f"{name} = {toml_value(kind)}" for name, kind in config["statuses"].items()]
    for entry in config["transitions"]:
        lines += ["", "[[workflow.transitions]]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


def test_the_default_description_round_trips() -> None:
    rebuilt = Workflow.from_config(to_config(DEFAULT_WORKFLOW))
    assert rebuilt == DEFAULT_WORKFLOW
    assert to_config(rebuilt) == to_config(DEFAULT_WORKFLOW)


def test_the_default_description_round_trips_through_the_config_file(tmp_path: Path) -> None:
    text = workflow_toml(DEFAULT_CONFIG)
    parsed = configuration.parse(text, tmp_path, {})
    assert parsed.workflow is not None
    assert Workflow.from_config(parsed.workflow) == DEFAULT_WORKFLOW


def test_the_default_workflow_matches_its_description() -> None:
    assert DEFAULT_WORKFLOW.initial == DEFAULT_CONFIG["initial"]
    assert dict(DEFAULT_WORKFLOW.kinds) == KIND_OF
    assert [t.name for t in DEFAULT_WORKFLOW.transitions] == NAMES
    for t in DEFAULT_WORKFLOW.transitions:
        spec = BY_NAME[t.name]
        assert t.sources == frozenset(spec["from"])
        assert t.target == spec["to"]
        assert {r.value for r in t.roles} == set(spec["roles"])
        assert t.reason_required == spec.get("reason_required", False)


def default_copy() -> dict[str, Any]:
    return copy.deepcopy(dict(DEFAULT_CONFIG))


def transition(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in config["transitions"] if t["name"] == name)
    return found


Mutation = Callable[[dict[str, Any]], object]

MALFORMED: dict[str, Mutation] = {
    "no initial": lambda c: c.pop("initial"),
    "initial unknown": lambda c: c.update(initial="draft"),
    "initial not of kind new": lambda c: c.update(initial="in_progress"),
    "initial a list": lambda c: c.update(initial=["new"]),
    "no statuses": lambda c: c.pop("statuses"),
    "statuses empty": lambda c: c.update(statuses={}),
    "statuses a list": lambda c: c.update(statuses=["new", "closed"]),
    "unknown kind": lambda c: c["statuses"].update(waiting_partner="paused"),
    "kind a list": lambda c: c["statuses"].update(new=["new"]),
    "kind a table": lambda c: c["statuses"].update(new={"kind": "new"}),
    "bad status name": lambda c: c["statuses"].update({"On Hold": "waiting"}),
    "no transitions": lambda c: c.pop("transitions"),
    "transitions empty": lambda c: c.update(transitions=[]),
    "transitions a table": lambda c: c.update(transitions={"start": {}}),
    "transitions a string": lambda c: c.update(transitions="start"),
    "transition not a table": lambda c: c["transitions"].append("resolve"),
    "transition without name": lambda c: transition(c, "start").pop("name"),
    "duplicate name": lambda c: c["transitions"].append(dict(transition(c, "resolve"))),
    "unknown target": lambda c: transition(c, "start").update(to="working"),
    "target a list": lambda c: transition(c, "start").update(to=["in_progress"]),
    "no target": lambda c: transition(c, "start").pop("to"),
    "unknown source": lambda c: transition(c, "start").update({"from": ["draft"]}),
    "source a nested list": lambda c: transition(c, "start").update({"from": [["new"]]}),
    "sources a string": lambda c: transition(c, "start").update({"from": "new"}),
    "sources empty": lambda c: transition(c, "start").update({"from": []}),
    "source is the target": lambda c: transition(c, "resume").update(
        {"from": ["in_progress", "waiting_partner"]}
    ),
    "unknown role": lambda c: transition(c, "start").update(roles=["engineer"]),
    "role a table": lambda c: transition(c, "start").update(roles=[{"role": "agent"}]),
    "roles a string": lambda c: transition(c, "start").update(roles="agent"),
    "no roles": lambda c: transition(c, "start").pop("roles"),
    "reason_required a string": lambda c: transition(c, "dispute").update(reason_required="yes"),
    "reason_required a number": lambda c: transition(c, "dispute").update(reason_required=1),
    "dead-end status": lambda c: c["statuses"].update(on_hold="waiting"),
    "nothing leaves new": lambda c: c.update(
        transitions=[
            t for t in c["transitions"] if t["name"] != "cancel" and "new" not in t["from"]
        ]
    ),
    "supervisor reopens": lambda c: transition(c, "reopen").update(roles=["admin", "supervisor"]),
    "agent reopens cancelled": lambda c: c["transitions"].append(
        {"name": "restore", "from": ["cancelled"], "to": "in_progress", "roles": ["agent"]}
    ),
    "requester reopens closed": lambda c: c["transitions"].append(
        {"name": "unconfirm", "from": ["closed"], "to": "resolved", "roles": ["requester"]}
    ),
}


@pytest.mark.parametrize("mutate", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_description_is_refused_naming_the_entry(mutate: Mutation) -> None:
    config = default_copy()
    mutate(config)
    with pytest.raises(InvalidArgument) as refused:
        Workflow.from_config(config)
    assert refused.value.field.startswith("workflow"), refused.value.field


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.sampled_from(
        [*KIND_OF, *(k.value for k in StatusKind), *(r.value for r in Role), *NAMES, "", "X Y"]
    ),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=6) | scalars, inner, max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """The default description with a few entries replaced, deleted or added."""
    config = default_copy()
    for _ in range(draw(st.integers(1, 3))):
        # walk down to a random table or list
        node: Any = config
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and draw(st.booleans()):
                node = child
                continue
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[key] = draw(values)
            elif action == "delete":
                del node[key]
            elif isinstance(node, dict):
                node[draw(st.text(max_size=6) | st.sampled_from(list(KIND_OF)))] = draw(values)
            else:
                node.append(draw(values | st.just(copy.deepcopy(node[key]))))
            break
    return config


@settings(max_examples=200, deadline=None)
@given(config=mutated())
def test_a_mutated_description_gives_a_workflow_or_an_invalid_argument(
    config: dict[str, Any],
) -> None:
    try:
        workflow = Workflow.from_config(config)
    except InvalidArgument as error:
        assert error.field.startswith("workflow"), error.field
        return
    # whatever was accepted still keeps the rules the field depends on
    assert workflow.kind(workflow.initial) is StatusKind.NEW
    names = [t.name for t in workflow.transitions]
    assert len(names) == len(set(names))
    for status, kind in workflow.kinds.items():
        leaving = [t for t in workflow.transitions if status in t.sources]
        if kind in FINAL_KINDS:
            assert all(t.roles == {Role.ADMIN} for t in leaving)
        else:
            assert leaving, f"{status} is a dead end"
    for t in workflow.transitions:
        assert t.target in workflow.kinds
        assert t.sources <= set(workflow.kinds)
        assert t.target not in t.sources


@settings(max_examples=100, deadline=None)
@given(config=st.dictionaries(st.sampled_from(["initial", "statuses", "transitions"]), values))
def test_an_arbitrary_description_gives_a_workflow_or_an_invalid_argument(
    config: dict[str, Any],
) -> None:
    try:
        Workflow.from_config(config)
    except InvalidArgument as error:
        assert error.field.startswith("workflow"), error.field


def test_a_custom_workflow_from_the_config_file_is_used(tmp_path: Path) -> None:
    config = default_copy()
    config["statuses"]["on_site"] = "open"
    config["transitions"].append(
        {"name": "go_on_site", "from": ["in_progress"], "to": "on_site", "roles": ["agent"]}
    )
    transition(config, "resolve")["from"].append("on_site")
    parsed = configuration.parse(workflow_toml(config), tmp_path, {})
    assert parsed.workflow is not None
    assert tomllib.loads(workflow_toml(config))["workflow"] == config
    workflow = Workflow.from_config(parsed.workflow)
    ticket = make_ticket("in_progress", assignee="ivan")
    workflow.apply(ticket, IVAN, "go_on_site", "", T0)
    workflow.apply(ticket, IVAN, "resolve", "", T0)
    assert ticket.status == "resolved"
