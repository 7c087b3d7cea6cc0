"""Ticket use cases through TicketService, on both backends: filing, the rules of the
field, editing and assigning, and the history every change leaves."""

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from node.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from node.domain.ticket import (
    HistoryEntry,
    Level,
    Priority,
    Ticket,
    TicketDraft,
    TicketPatch,
    TicketType,
    Visibility,
)
from node.services.tickets import DEFAULT_CONFIRM_WINDOW, TicketService
from node.store import schema
from node.store.database import Database
from tests.conftest import Desk


def file(
    desk: Desk,
    login: str,
    category: str = "other",
    *,
    store: str = "",
    requester: str = "",
    request_id: str = "",
    impact: Level | None = None,
    urgency: Level | None = None,
) -> Ticket:
    draft = TicketDraft(
        category=category,
        title=f"{category} at {login}",
        store=store,
        requester=requester,
        request_id=request_id,
        impact=impact,
        urgency=urgency,
    )
    return desk.tickets.create(desk.actor(login), draft)


def ticket_rows(db: Database) -> int:
    with db.read() as tx:
        return int(tx.conn.scalar(select(func.count()).select_from(schema.tickets)) or 0)


def changes(entries: list[HistoryEntry]) -> list[tuple[str, str, str, str, str]]:
    return [
        (e.actor, e.change.action, e.change.field, e.change.before, e.change.after) for e in entries
    ]


def in_progress(desk: Desk, assignee: str = "ivan", co: frozenset[str] = frozenset()) -> Ticket:
    """A ticket of boris (standard store) assigned to assignee and started."""
    ticket = file(desk, "boris", "scales")
    desk.tickets.assign(desk.actor("sergey"), ticket.key, assignee, None, co)
    return desk.tickets.transition(desk.actor(assignee), ticket.key, "start", "")


def resolved(desk: Desk) -> Ticket:
    ticket = in_progress(desk)
    return desk.tickets.transition(desk.actor("ivan"), ticket.key, "resolve", "")


# -- filing ------------------------------------------------------------------------


PRIORITIES = [
    # stop-trade is P1 whatever the matrix says: card-terminal is high x high (P2)
    ("boris", "card-terminal", Priority.P1),
    ("anna", "pos-down", Priority.P1),
    # the matrix at a standard store
    ("boris", "network-down", Priority.P2),
    ("boris", "scales", Priority.P3),
    ("boris", "access", Priority.P4),
    # a flagship store counts one impact level higher
    ("anna", "network-down", Priority.P1),
    ("anna", "access", Priority.P3),
]


def test_priority_comes_from_category_store_tier_and_stop_trade(desk: Desk) -> None:
    for login, category, expected in PRIORITIES:
        ticket = file(desk, login, category)
        stored = desk.tickets.get(desk.actor("ivan"), ticket.key)
        assert (ticket.priority, stored.priority) == (expected, expected), (login, category)
        stop_trade = category in ("card-terminal", "pos-down")
        assert (ticket.stop_trade, stored.stop_trade) == (stop_trade, stop_trade), category


def test_impact_and_urgency_override_the_category(desk: Desk) -> None:
    cases = [
        (Level.CRITICAL, Level.HIGH, Priority.P1),
        (Level.HIGH, None, Priority.P3),  # urgency stays the category's medium: 3 + 2
        (None, Level.CRITICAL, Priority.P2),  # impact stays medium: 2 + 4
        (Level.LOW, Level.LOW, Priority.P4),
    ]
    for impact, urgency, expected in cases:
        ticket = file(desk, "boris", "other", impact=impact, urgency=urgency)
        stored = desk.tickets.get(desk.actor("ivan"), ticket.key)
        wanted = (impact or Level.MEDIUM, urgency or Level.MEDIUM, expected)
        assert (ticket.impact, ticket.urgency, ticket.priority) == wanted
        assert (stored.impact, stored.urgency, stored.priority) == wanted


def test_a_ticket_is_routed_to_its_categorys_group(desk: Desk) -> None:
    pos = file(desk, "anna", "fiscal-printer")
    fridge = file(desk, "anna", "refrigeration")
    other = file(desk, "anna", "other")
    ivan = desk.actor("ivan")
    assert desk.tickets.get(ivan, pos.key).group == "pos"
    assert desk.tickets.get(ivan, fridge.key).group == "facilities"
    assert desk.tickets.get(ivan, other.key).group is None
    assert desk.tickets.get(ivan, pos.key).ticket_type is TicketType.INCIDENT
    assert desk.tickets.get(ivan, file(desk, "anna", "access").key).ticket_type is (
        TicketType.SERVICE_REQUEST
    )


def test_creation_is_recorded_in_history_with_actor_and_time(desk: Desk) -> None:
    ticket = file(desk, "anna", "pos-down")
    history = desk.tickets.history(desk.actor("ivan"), ticket.key)
    assert changes(history) == [
        ("anna", "created", "status", "", "new"),
        ("anna", "assigned", "group", "", "pos"),
        ("anna", "sla", "sla_policy", "", "stop-trade"),
    ]
    assert all(e.at == desk.clock.now() and e.ticket_key == ticket.key for e in history)
    assert all(e.store == "msk-001" for e in history)
    assert ticket.created_at == ticket.updated_at == desk.clock.now()
    assert ticket.status == "new" and ticket.assignee is None


def test_requester_files_only_for_their_own_store(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    assert ticket.store == "vvo-002"
    assert ticket.requester == "boris"
    explicit = file(desk, "boris", "scales", store="vvo-002")
    assert explicit.store == "vvo-002"
    with pytest.raises(PermissionDenied, match="store"):
        file(desk, "boris", "scales", store="msk-001")
    with pytest.raises(PermissionDenied, match="requester"):
        file(desk, "boris", "scales", requester="anna")
    assert ticket_rows(desk.db) == 2


def test_staff_and_systems_must_name_the_store(desk: Desk) -> None:
    for login in ("ivan", "sergey", "pos"):
        with pytest.raises(InvalidArgument) as refused:
            file(desk, login, "monitoring")
        assert refused.value.field == "store"
        assert ticket_rows(desk.db) == 0
    ticket = file(desk, "pos", "monitoring", store="vvo-002")
    assert (ticket.store, ticket.requester) == ("vvo-002", "pos")
    ticket = file(desk, "ivan", "monitoring", store="msk-001")
    assert (ticket.store, ticket.requester) == ("msk-001", "ivan")


def test_staff_files_on_behalf_of_a_store_user(desk: Desk) -> None:
    ticket = file(desk, "pos", "pos-down", store="msk-001", requester="anna")
    assert ticket.requester == "anna"
    assert ticket.store == "msk-001"
    # the store user sees it as their own; the history names who really filed it
    anna = desk.actor("anna")
    assert desk.tickets.get(anna, ticket.key).requester == "anna"
    assert desk.tickets.history(anna, ticket.key)[0].actor == "pos"


def test_unknown_or_bad_fields_are_refused_by_name(desk: Desk) -> None:
    cases = [
        (TicketDraft("no-such-thing", "Scales", store="vvo-002"), "category"),
        (TicketDraft("Bad Code!", "Scales", store="vvo-002"), "category"),
        (TicketDraft("scales", "Scales", store="spb-999"), "store"),
        (TicketDraft("scales", "Scales", store="vvo-002", requester="nobody"), "requester"),
        (TicketDraft("scales", "  ", store="vvo-002"), "title"),
        (TicketDraft("scales", "Scales", store="vvo-002", request_id="has space"), "request_id"),
    ]
    for draft, field in cases:
        with pytest.raises(InvalidArgument) as refused:
            desk.tickets.create(desk.actor("ivan"), draft)
        assert refused.value.field == field, draft
    assert ticket_rows(desk.db) == 0


def test_a_retried_create_returns_the_same_ticket(desk: Desk) -> None:
    first = file(desk, "anna", "pos-down", request_id="pos-17:0001")
    desk.clock.advance(timedelta(minutes=5))
    again = file(desk, "anna", "pos-down", request_id="pos-17:0001")
    assert again.key == first.key
    assert again.created_at == first.created_at
    assert ticket_rows(desk.db) == 1
    assert len(desk.tickets.history(desk.actor("ivan"), first.key)) == 3


def test_a_request_id_reused_for_other_content_is_refused(desk: Desk) -> None:
    first = file(desk, "anna", "pos-down", request_id="r-1")
    with pytest.raises(AlreadyExists, match=first.key):
        file(desk, "anna", "fiscal-printer", request_id="r-1")
    with pytest.raises(AlreadyExists):
        file(desk, "anna", "pos-down", request_id="r-1", impact=Level.LOW)
    assert ticket_rows(desk.db) == 1


def test_request_ids_belong_to_their_requester_and_are_optional(desk: Desk) -> None:
    anna = file(desk, "anna", "scales", request_id="r-1")
    boris = file(desk, "boris", "scales", request_id="r-1")
    assert anna.key != boris.key
    # without a request id, two identical tickets are two tickets
    first, second = file(desk, "anna", "scales"), file(desk, "anna", "scales")
    assert len({anna.key, first.key, second.key}) == 3
    assert ticket_rows(desk.db) == 4


def test_concurrent_creates_with_one_request_id_file_one_ticket(desk: Desk) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    keys: list[str] = []
    errors: list[BaseException] = []
    anna = desk.actor("anna")
    draft = TicketDraft(category="pos-down", title="POS does not work", request_id="pos-1:42")

    def create() -> None:
        barrier.wait()
        try:
            keys.append(desk.tickets.create(anna, draft).key)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    assert len(keys) == threads
    assert len(set(keys)) == 1
    assert ticket_rows(desk.db) == 1
    assert len(desk.tickets.history(desk.actor("ivan"), keys[0])) == 3


# -- rules of the field ------------------------------------------------------------


def test_only_the_assignee_resolves(desk: Desk) -> None:
    ticket = in_progress(desk)
    for login in ("olga", "sergey", "admin"):
        with pytest.raises(FailedPrecondition, match="assignee"):
            desk.tickets.transition(desk.actor(login), ticket.key, "resolve", "")
    for login in ("boris", "pos"):
        with pytest.raises(FailedPrecondition):
            desk.tickets.transition(desk.actor(login), ticket.key, "resolve", "")
    with pytest.raises(InvalidArgument) as refused:
        desk.tickets.transition(desk.actor("ivan"), ticket.key, "teleport", "")
    assert refused.value.field == "transition"
    assert desk.tickets.get(desk.actor("ivan"), ticket.key).status == "in_progress"
    done = desk.tickets.transition(desk.actor("ivan"), ticket.key, "resolve", "")
    assert done.status == "resolved"
    assert done.resolved_at == desk.clock.now()


def test_a_co_assignee_resolves_too(desk: Desk) -> None:
    ticket = in_progress(desk, co=frozenset({"olga"}))
    assert desk.tickets.get(desk.actor("olga"), ticket.key).co_assignees == frozenset({"olga"})
    assert "resolve" in desk.tickets.transitions(desk.actor("olga"), ticket)
    assert "resolve" not in desk.tickets.transitions(desk.actor("sergey"), ticket)
    done = desk.tickets.transition(desk.actor("olga"), ticket.key, "resolve", "")
    assert done.status == "resolved"


def test_starting_a_new_ticket_assigns_the_engineer(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    started = desk.tickets.transition(desk.actor("olga"), ticket.key, "start", "")
    assert started.assignee == "olga"
    history = desk.tickets.history(desk.actor("olga"), ticket.key)
    assert changes(history[-2:]) == [
        ("olga", "transition", "status", "new", "in_progress"),
        ("olga", "assigned", "assignee", "", "olga"),
    ]


def test_requester_confirms_the_fix(desk: Desk) -> None:
    ticket = resolved(desk)
    for login in ("ivan", "sergey", "pos"):  # nobody confirms for the store
        with pytest.raises(FailedPrecondition):
            desk.tickets.transition(desk.actor(login), ticket.key, "confirm", "")
    desk.clock.advance(timedelta(hours=1))
    closed = desk.tickets.transition(desk.actor("boris"), ticket.key, "confirm", "")
    assert closed.status == "closed"
    assert closed.closed_at == desk.clock.now()
    stored = desk.tickets.get(desk.actor("ivan"), ticket.key)
    assert (stored.status, stored.closed_at) == ("closed", desk.clock.now())
    last = desk.tickets.history(desk.actor("ivan"), ticket.key)[-1]
    assert changes([last]) == [("boris", "transition", "status", "resolved", "closed")]


def test_requester_disputes_with_a_reason(desk: Desk) -> None:
    ticket = resolved(desk)
    boris = desk.actor("boris")
    with pytest.raises(InvalidArgument) as refused:
        desk.tickets.transition(boris, ticket.key, "dispute", "  ")
    assert refused.value.field == "reason"
    assert desk.tickets.get(boris, ticket.key).status == "resolved"
    desk.clock.advance(timedelta(minutes=30))
    reopened = desk.tickets.transition(boris, ticket.key, "dispute", "still misweighs")
    assert reopened.status == "in_progress"
    assert reopened.resolved_at is None
    assert changes(desk.tickets.history(boris, ticket.key)[-2:]) == [
        ("boris", "transition", "status", "resolved", "in_progress"),
        ("boris", "transition", "reason", "", "still misweighs"),
    ]
    # a disputed ticket is no longer waiting for automatic closure
    desk.clock.advance(DEFAULT_CONFIRM_WINDOW * 2)
    assert desk.tickets.close_confirmed() == 0
    assert desk.tickets.next_auto_close() is None


def test_resolved_tickets_close_after_the_confirmation_window(desk: Desk) -> None:
    assert desk.tickets.next_auto_close() is None
    ticket = resolved(desk)
    resolved_at = desk.clock.now()
    waiting = in_progress(desk)  # not resolved: never closed automatically
    assert desk.tickets.next_auto_close() == resolved_at + DEFAULT_CONFIRM_WINDOW

    desk.clock.advance(DEFAULT_CONFIRM_WINDOW - timedelta(seconds=1))
    assert desk.tickets.close_confirmed() == 0
    assert desk.tickets.get(desk.actor("ivan"), ticket.key).status == "resolved"

    desk.clock.advance(timedelta(seconds=1))
    assert desk.tickets.close_confirmed() == 1
    closed = desk.tickets.get(desk.actor("ivan"), ticket.key)
    assert (closed.status, closed.closed_at) == ("closed", desk.clock.now())
    last = desk.tickets.history(desk.actor("ivan"), ticket.key)[-1]
    assert changes([last]) == [("system", "transition", "status", "resolved", "closed")]
    assert last.at == desk.clock.now()
    assert desk.tickets.get(desk.actor("ivan"), waiting.key).status == "in_progress"
    assert desk.tickets.next_auto_close() is None
    assert desk.tickets.close_confirmed() == 0


def test_the_confirmation_window_is_configurable(desk: Desk) -> None:
    service = TicketService(desk.db, desk.clock, confirm_window=timedelta(hours=1))
    first = resolved(desk)
    desk.clock.advance(timedelta(minutes=20))
    second = resolved(desk)
    assert service.next_auto_close() == first.resolved_at + timedelta(hours=1)  # type: ignore[operator]
    desk.clock.advance(timedelta(minutes=40))
    assert service.close_confirmed() == 1
    assert service.next_auto_close() == second.resolved_at + timedelta(hours=1)  # type: ignore[operator]
    ivan = desk.actor("ivan")
    assert desk.tickets.get(ivan, first.key).status == "closed"
    assert desk.tickets.get(ivan, second.key).status == "resolved"


def test_a_closed_ticket_is_frozen_until_an_admin_reopens_it(desk: Desk) -> None:
    ticket = resolved(desk)
    desk.tickets.transition(desk.actor("boris"), ticket.key, "confirm", "")
    before = desk.tickets.history(desk.actor("ivan"), ticket.key)
    sergey, admin = desk.actor("sergey"), desk.actor("admin")
    with pytest.raises(FailedPrecondition):
        desk.tickets.update(sergey, ticket.key, TicketPatch(title="Renamed"))
    with pytest.raises(FailedPrecondition):
        desk.tickets.assign(sergey, ticket.key, "olga", None, frozenset())
    with pytest.raises(FailedPrecondition):
        desk.tickets.comment(desk.actor("boris"), ticket.key, "thanks", Visibility.PUBLIC)
    with pytest.raises(FailedPrecondition):
        desk.tickets.comment(admin, ticket.key, "note", Visibility.INTERNAL)
    for login in ("ivan", "sergey", "boris"):
        with pytest.raises(FailedPrecondition):
            desk.tickets.transition(desk.actor(login), ticket.key, "reopen", "wrong fix")
    assert desk.tickets.history(desk.actor("ivan"), ticket.key) == before

    with pytest.raises(InvalidArgument) as refused:
        desk.tickets.transition(admin, ticket.key, "reopen", "")
    assert refused.value.field == "reason"
    reopened = desk.tickets.transition(admin, ticket.key, "reopen", "fix did not hold")
    assert reopened.status == "in_progress"
    assert reopened.closed_at is None
    assert changes(desk.tickets.history(admin, ticket.key)[len(before) :]) == [
        ("admin", "transition", "status", "closed", "in_progress"),
        ("admin", "transition", "reason", "", "fix did not hold"),
    ]
    updated = desk.tickets.update(sergey, ticket.key, TicketPatch(title="Renamed"))
    assert updated.title == "Renamed"


def test_a_cancelled_ticket_is_frozen_too(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    with pytest.raises(FailedPrecondition):
        desk.tickets.transition(desk.actor("ivan"), ticket.key, "cancel", "duplicate")
    cancelled = desk.tickets.transition(desk.actor("boris"), ticket.key, "cancel", "duplicate")
    assert cancelled.status == "cancelled"
    with pytest.raises(FailedPrecondition):
        desk.tickets.update(desk.actor("sergey"), ticket.key, TicketPatch(title="x"))
    with pytest.raises(FailedPrecondition):
        desk.tickets.comment(desk.actor("boris"), ticket.key, "hello", Visibility.PUBLIC)


def test_every_change_is_in_history_with_who_when_and_before_after(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    created = desk.clock.now()
    sergey, ivan, boris = desk.actor("sergey"), desk.actor("ivan"), desk.actor("boris")
    steps: list[Callable[[], object]] = [
        lambda: desk.tickets.assign(sergey, ticket.key, "ivan", None, frozenset()),
        lambda: desk.tickets.update(ivan, ticket.key, TicketPatch(title="Scales at checkout 2")),
        lambda: desk.tickets.transition(ivan, ticket.key, "start", ""),
        lambda: desk.tickets.comment(boris, ticket.key, "any news?", Visibility.PUBLIC),
        lambda: desk.tickets.transition(ivan, ticket.key, "resolve", ""),
    ]
    times = []
    for step in steps:
        desk.clock.advance(timedelta(minutes=7))
        times.append(desk.clock.now())
        step()
    history = desk.tickets.history(desk.actor("ivan"), ticket.key)
    assert changes(history) == [
        ("boris", "created", "status", "", "new"),
        ("boris", "assigned", "group", "", "facilities"),
        ("boris", "sla", "sla_policy", "", "p3"),
        ("sergey", "assigned", "assignee", "", "ivan"),
        ("ivan", "updated", "title", "scales at boris", "Scales at checkout 2"),
        ("ivan", "transition", "status", "new", "in_progress"),
        ("boris", "commented", "public", "", "any news?"),
        ("ivan", "transition", "status", "in_progress", "resolved"),
    ]
    assert [e.at for e in history] == [created, created, created, *times]
    assert [e.id for e in history] == sorted({e.id for e in history})
    final = desk.tickets.get(desk.actor("ivan"), ticket.key)
    assert final.updated_at == times[-1]


# -- update and assign -------------------------------------------------------------


def test_agents_adjust_priority_by_hand_and_the_sla_policy_follows(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    assert (ticket.priority, ticket.sla.policy) == (Priority.P3, "p3")
    raised = desk.tickets.update(desk.actor("ivan"), ticket.key, TicketPatch(priority=Priority.P1))
    assert raised.priority is Priority.P1
    stored = desk.tickets.get(desk.actor("ivan"), ticket.key)
    assert (stored.priority, stored.sla.policy) == (Priority.P1, "p1")
    history = desk.tickets.history(desk.actor("ivan"), ticket.key)
    assert changes(history[-2:]) == [
        ("ivan", "updated", "priority", "P3", "P1"),
        ("ivan", "sla", "sla_policy", "p3", "p1"),
    ]


def test_store_staff_and_systems_may_not_edit_or_assign(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    for login in ("boris", "pos"):
        with pytest.raises(PermissionDenied):
            desk.tickets.update(desk.actor(login), ticket.key, TicketPatch(title="mine"))
        with pytest.raises(PermissionDenied):
            desk.tickets.assign(desk.actor(login), ticket.key, "ivan", None, frozenset())
    stored = desk.tickets.get(desk.actor("ivan"), ticket.key)
    assert (stored.title, stored.assignee) == ("scales at boris", None)


def test_an_impact_change_recomputes_priority(desk: Desk) -> None:
    cases = [
        ("boris", Level.CRITICAL, None, Priority.P2),  # 4 + 2
        ("boris", Level.HIGH, None, Priority.P3),  # 3 + 2: unchanged
        ("anna", Level.HIGH, None, Priority.P2),  # flagship: raised to 4, + 2
        ("anna", Level.LOW, Level.LOW, Priority.P4),  # flagship: raised to 2, + 1
    ]
    ivan = desk.actor("ivan")
    for login, impact, urgency, expected in cases:
        ticket = file(desk, login, "other")
        assert ticket.priority is Priority.P3
        updated = desk.tickets.update(ivan, ticket.key, TicketPatch(impact=impact, urgency=urgency))
        stored = desk.tickets.get(ivan, ticket.key)
        assert (updated.priority, stored.impact, stored.priority) == (expected, impact, expected)
        fields = [e.change.field for e in desk.tickets.history(ivan, ticket.key)]
        assert "impact" in fields
        assert ("priority" in fields) is (expected is not Priority.P3), (login, impact)


def test_a_category_change_updates_stop_trade_and_priority(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    ivan = desk.actor("ivan")
    stop = desk.tickets.update(ivan, ticket.key, TicketPatch(category="pos-down"))
    assert (stop.category, stop.stop_trade, stop.priority) == ("pos-down", True, Priority.P1)
    stored = desk.tickets.get(ivan, ticket.key)
    assert (stored.stop_trade, stored.priority) == (True, Priority.P1)
    back = desk.tickets.update(ivan, ticket.key, TicketPatch(category="other"))
    assert (back.stop_trade, back.priority) == (False, Priority.P3)
    assert changes(desk.tickets.history(ivan, ticket.key)[3:7]) == [
        ("ivan", "updated", "category", "scales", "pos-down"),
        ("ivan", "updated", "stop_trade", "False", "True"),
        ("ivan", "assigned", "group", "facilities", "pos"),
        ("ivan", "updated", "priority", "P3", "P1"),
    ]
    with pytest.raises(InvalidArgument) as refused:
        desk.tickets.update(ivan, ticket.key, TicketPatch(category="nope"))
    assert refused.value.field == "category"


def test_an_update_that_changes_nothing_leaves_no_history(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    before = desk.tickets.history(desk.actor("ivan"), ticket.key)
    desk.clock.advance(timedelta(minutes=1))
    same = desk.tickets.update(desk.actor("ivan"), ticket.key, TicketPatch(title=ticket.title))
    assert same.updated_at == ticket.updated_at
    assert desk.tickets.history(desk.actor("ivan"), ticket.key) == before


def test_assign_sets_assignee_group_and_co_assignees(desk: Desk) -> None:
    ticket = file(desk, "boris", "scales")
    sergey = desk.actor("sergey")
    assigned = desk.tickets.assign(sergey, ticket.key, "ivan", "it", frozenset({"olga"}))
    assert (assigned.assignee, assigned.group, assigned.co_assignees) == (
        "ivan",
        "it",
        frozenset({"olga"}),
    )
    stored = desk.tickets.get(sergey, ticket.key)
    assert (stored.assignee, stored.group, stored.co_assignees) == (
        "ivan",
        "it",
        frozenset({"olga"}),
    )
    assert changes(desk.tickets.history(sergey, ticket.key)[3:]) == [
        ("sergey", "assigned", "assignee", "", "ivan"),
        ("sergey", "assigned", "group", "facilities", "it"),
        ("sergey", "assigned", "co_assignees", "", "olga"),
    ]
    unassigned = desk.tickets.assign(sergey, ticket.key, None, None, frozenset())
    assert (unassigned.assignee, unassigned.group, unassigned.co_assignees) == (
        None,
        "it",
        frozenset(),
    )
    stored = desk.tickets.get(sergey, ticket.key)
    assert (stored.assignee, stored.co_assignees) == (None, frozenset())


def test_assignees_must_be_active_engineers_and_groups_known(desk: Desk) -> None:
    cases = [
        ("anna", frozenset[str](), "assignee"),  # a requester
        ("pos", frozenset[str](), "assignee"),  # an integration
        ("nobody", frozenset[str](), "assignee"),
        ("ivan", frozenset({"boris"}), "co_assignees"),
        ("ivan", frozenset({"nobody"}), "co_assignees"),
        ("ivan", frozenset({"ivan"}), "co_assignees"),
    ]
    ticket = file(desk, "boris", "scales")
    with desk.db.write() as tx:
        tx.conn.execute(
            update(schema.users).where(schema.users.c.login == "olga").values(active=False)
        )
    cases += [("olga", frozenset(), "assignee"), ("ivan", frozenset({"olga"}), "co_assignees")]
    for assignee, co, field in cases:
        with pytest.raises(InvalidArgument) as refused:
            desk.tickets.assign(desk.actor("sergey"), ticket.key, assignee, None, co)
        assert refused.value.field == field, (assignee, co)
    with pytest.raises(InvalidArgument) as refused:
        desk.tickets.assign(desk.actor("sergey"), ticket.key, "ivan", "plumbing", frozenset())
    assert refused.value.field == "group"
    stored = desk.tickets.get(desk.actor("ivan"), ticket.key)
    assert (stored.assignee, stored.group, stored.co_assignees) == (None, "facilities", frozenset())
    assert len(desk.tickets.history(desk.actor("ivan"), ticket.key)) == 3
    # a supervisor and an admin may be assigned as well as agents
    assigned = desk.tickets.assign(
        desk.actor("sergey"), ticket.key, "sergey", None, frozenset({"admin", "ivan"})
    )
    assert (assigned.assignee, assigned.co_assignees) == ("sergey", frozenset({"admin", "ivan"}))


def test_a_new_category_reroutes_a_ticket_nobody_moved_by_hand(desk: Desk) -> None:
    ivan, sergey = desk.actor("ivan"), desk.actor("sergey")
    routed = desk.tickets.create(ivan, TicketDraft("scales", "Labels", store="msk-001"))
    moved = desk.tickets.create(ivan, TicketDraft("scales", "Labels", store="msk-001"))
    desk.tickets.assign(sergey, moved.key, None, "it", frozenset())

    assert desk.tickets.update(ivan, routed.key, TicketPatch(category="pos-down")).group == "pos"
    assert desk.tickets.update(ivan, moved.key, TicketPatch(category="pos-down")).group == "it"
