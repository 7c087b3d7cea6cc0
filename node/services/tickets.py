"""Ticket use cases: file, read, list, change, move along the workflow, comment, watch."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from node.domain import paging, validation
from node.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from node.domain.priority import DEFAULT_MATRIX, PriorityMatrix
from node.domain.roles import STAFF, SYSTEM_ACTOR, Actor, Role
from node.domain.sla import REPLIED, ClockView
from node.domain.slapolicy import DEFAULT_SLA_CONFIG, SlaConfig
from node.domain.status import FINAL_KINDS, StatusKind
from node.domain.ticket import (
    Category,
    Change,
    Comment,
    HistoryEntry,
    QueuePosition,
    Ticket,
    TicketDraft,
    TicketPatch,
    TicketQuery,
    Tier,
    Visibility,
)
from node.domain.workflow import DEFAULT_WORKFLOW, Workflow
from node.services.changes import ChangeFeed, EventCursor
from node.services.clock import Clock
from node.services.sla import SlaService
from node.store.database import Database
from node.store.tx import Tx

DEFAULT_CONFIRM_WINDOW = timedelta(hours=72)
EVENT_BATCH = 500
AUTO_CLOSE_BATCH = 200
RECOMPUTE_BATCH = 5000
"""Tickets put under a new SLA configuration per transaction: a tenth of a second or so of
work, so other writers wait little between batches, and few enough commits (each syncs
the disk) to keep a pass over 100,000 tickets short."""
SLA_CONFIG_SETTING = "sla_config"
"""The node setting naming the SLA configuration open tickets were computed under."""
COMMENT_EXCERPT = 200
"""How much of a comment its history entry repeats."""
_FINGERPRINT_JSON = json.JSONEncoder(default=str)
"""`json.dumps(..., default=str)`, the encoder built once rather than per call."""


class TicketService:
    """Ticket use cases of one node.

    Args:
        db: the node's database.
        clock: the time source.
        workflow: statuses and transitions.
        matrix: priority at registration.
        confirm_window: how long a resolved ticket waits for the requester before it closes.
        feed: told after every committed change.
        sla: policies and clocks; the default SLA when not given.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        workflow: Workflow = DEFAULT_WORKFLOW,
        matrix: PriorityMatrix = DEFAULT_MATRIX,
        confirm_window: timedelta = DEFAULT_CONFIRM_WINDOW,
        feed: ChangeFeed | None = None,
        sla: SlaService | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.workflow = workflow
        self.matrix = matrix
        self.confirm_window = confirm_window
        self.feed = feed or ChangeFeed()
        self.sla = sla or SlaService(
            SlaConfig.from_config(DEFAULT_SLA_CONFIG, workflow.kinds), workflow
        )
        self.on_alarm: Callable[[datetime], None] = _ignore
        """Told, after commit, of every SLA alarm instant a change sets (the scheduler
        listens to wake early)."""
        self.on_record: list[Callable[[Tx, Actor, Ticket, list[Change]], None]] = []
        """Told, inside the transaction, of every change recorded on a ticket."""

    # -- filing and reading ------------------------------------------------------

    def create(self, actor: Actor, draft: TicketDraft) -> Ticket:
        """Files a ticket, or returns the one an earlier call with the same request id filed.

        Raises:
            InvalidArgument: a field breaks its rule or names an unknown category, store or user.
            PermissionDenied: a requester files for another store.
            AlreadyExists: the request id was used for a different ticket.
        """
        with self.db.write() as tx:
            return self.file(tx, actor, draft)

    def file(self, tx: Tx, actor: Actor, draft: TicketDraft) -> Ticket:
        """`create` in the caller's transaction (a partner's offer files one with its receipt)."""
        title = validation.title(draft.title)
        description = validation.description(draft.description)
        request_id = validation.request_id(draft.request_id)
        fingerprint = _fingerprint(draft)
        now = self.clock.now()
        requester, home = self._requester(tx, actor, draft.requester)
        category, store = tx.category_and_store(
            validation.code("category", draft.category),
            validation.code("store", _store_code(actor, draft.store, home)),
        )
        if category is None:
            raise InvalidArgument(
                "category", f"no such category {draft.category!r} in the catalogue"
            )
        if store is None:
            raise InvalidArgument("store", f"no such store {draft.store or home!r}")
        impact = draft.impact or category.impact
        urgency = draft.urgency or category.urgency
        stop_trade = category.stop_trade or draft.stop_trade
        ticket = Ticket(
            id=0,
            key="",
            title=title,
            description=description,
            ticket_type=draft.ticket_type or category.ticket_type,
            category=category.code,
            requester=requester,
            store=store.code,
            impact=impact,
            urgency=urgency,
            priority=self.matrix.priority(impact, urgency, store.tier, stop_trade),
            stop_trade=stop_trade,
            status=self.workflow.initial,
            created_at=now,
            updated_at=now,
            group=category.group,
            line=self.sla.config.escalation.first_line,
        )
        sla_changes = self.sla.start(ticket, store, now)
        changes = [Change("created", "status", "", ticket.status)]
        if ticket.group:
            changes.append(Change("assigned", "group", "", ticket.group))
        ticket_id = tx.insert_ticket(
            ticket, request_id, fingerprint, actor.login, changes + sla_changes
        )
        if ticket_id is None:
            return self._earlier(tx, requester, request_id, fingerprint)
        ticket.id, ticket.key = ticket_id, tx.key(ticket_id)
        self._publish(tx, ticket)
        return ticket

    def get(self, actor: Actor, key: str) -> Ticket:
        """The ticket with its clocks, finished ones included, and its links to partner nodes
        (who holds it there: the history says so already)."""
        with self.db.read() as tx:
            ticket = self._visible(tx, actor, key)
            self.sla.show(tx, [ticket], self.clock.now(), finished=True)
            ticket.links = tuple(tx.links.ticket_links(ticket.id))
            return ticket

    def list_tickets(
        self, actor: Actor, query: TicketQuery, *, include_closed: bool
    ) -> tuple[list[Ticket], str]:
        """Tickets in queue order and the token of the next page ('' on the last page).

        A requester sees only their own store's tickets, whatever the query says.
        """
        if actor.role is Role.REQUESTER:
            if query.store not in (None, actor.store):
                raise PermissionDenied("store: requesters list only their own store's tickets")
            query = replace(query, store=actor.store)
        if not query.statuses and not include_closed:
            query = replace(query, statuses=tuple(self.workflow.open_statuses()))
        unknown = [s for s in query.statuses if s not in self.workflow.kinds]
        if unknown:
            raise InvalidArgument("statuses", f"unknown status {unknown[0]!r}")
        with self.db.read() as tx:
            tickets = tx.list_tickets(replace(query, limit=query.limit + 1))
            more = len(tickets) > query.limit
            tickets = tickets[: query.limit]
            self.sla.show(tx, tickets, self.clock.now(), finished=False)
        return tickets, paging.encode(QueuePosition.of(tickets[-1])) if more else ""

    def transitions(self, actor: Actor, ticket: Ticket) -> list[str]:
        """Names of the transitions actor may take on ticket now."""
        return [t.name for t in self.workflow.available(ticket, actor)]

    # -- changing ----------------------------------------------------------------

    def update(self, actor: Actor, key: str, patch: TicketPatch) -> Ticket:
        """Changes the fields set in patch.

        Raises:
            PermissionDenied: not staff.
            FailedPrecondition: the ticket is closed or cancelled.
        """
        if not actor.is_staff:
            raise PermissionDenied(f"{actor.role} may not edit tickets; add a comment instead")
        with self.db.write() as tx:
            ticket = self.for_change(tx, actor, key)
            changes: list[Change] = []
            if patch.title is not None:
                changes += ticket.set("updated", "title", validation.title(patch.title))
            if patch.description is not None:
                description = validation.description(patch.description)
                changes += ticket.set("updated", "description", description)
            if patch.ticket_type is not None:
                changes += ticket.set("updated", "ticket_type", patch.ticket_type)
            if patch.category is not None:
                routed_by_category = ticket.group == _category(tx, ticket.category).group
                category = _category(tx, patch.category)
                changes += ticket.set("updated", "category", category.code)
                changes += ticket.set("updated", "stop_trade", category.stop_trade)
                if routed_by_category:
                    changes += ticket.set("assigned", "group", category.group)
            if patch.impact is not None:
                changes += ticket.set("updated", "impact", patch.impact)
            if patch.urgency is not None:
                changes += ticket.set("updated", "urgency", patch.urgency)
            if patch.priority is not None:
                changes += ticket.set("updated", "priority", patch.priority)
            elif {c.field for c in changes} & {"impact", "urgency", "category"}:
                store = tx.store(ticket.store)
                tier = store.tier if store else Tier.STANDARD
                priority = self.matrix.priority(
                    ticket.impact, ticket.urgency, tier, ticket.stop_trade
                )
                changes += ticket.set("updated", "priority", priority)
            self.record(tx, actor, ticket, changes)
            self._show(tx, ticket)
        return ticket

    def transition(self, actor: Actor, key: str, name: str, reason: str) -> Ticket:
        """Takes a named workflow transition (see `Workflow.apply` for the rules)."""
        now = self.clock.now()
        with self.db.write() as tx:
            ticket = self._visible(tx, actor, key, for_update=True)
            changes = self.workflow.apply(ticket, actor, name, reason, now)
            self.record(tx, actor, ticket, changes)
            self._show(tx, ticket)
        return ticket

    def assign(
        self,
        actor: Actor,
        key: str,
        assignee: str | None,
        group: str | None,
        co_assignees: frozenset[str],
    ) -> Ticket:
        """Sets the assignee (None: unassigned), the group (None: kept) and the co-assignees.

        Raises:
            InvalidArgument: a login that is not an active engineer, or an unknown group.
        """
        if not actor.is_staff:
            raise PermissionDenied(f"{actor.role} may not assign tickets")
        with self.db.write() as tx:
            ticket = self.for_change(tx, actor, key)
            if assignee is not None:
                _engineer(tx, "assignee", assignee)
            for login in sorted(co_assignees):
                _engineer(tx, "co_assignees", login)
            if assignee is not None and assignee in co_assignees:
                raise InvalidArgument("co_assignees", "must not contain the assignee")
            changes = ticket.set("assigned", "assignee", assignee)
            if group is not None:
                if tx.group(validation.code("group", group)) is None:
                    raise InvalidArgument("group", f"no such group {group!r}")
                changes += ticket.set("assigned", "group", group)
            changes += ticket.set("assigned", "co_assignees", co_assignees)
            self.record(tx, actor, ticket, changes)
            self._show(tx, ticket)
        return ticket

    def comment(self, actor: Actor, key: str, body: str, visibility: Visibility) -> Comment:
        """Adds a comment; internal comments are for engineers and never shown to store staff."""
        with self.db.write() as tx:
            ticket = self._visible(tx, actor, key, for_update=True)
            return self.remark(tx, actor, ticket, body, visibility)

    def remark(
        self, tx: Tx, actor: Actor, ticket: Ticket, body: str, visibility: Visibility
    ) -> Comment:
        """`comment` on a ticket read for update in the caller's transaction."""
        body = validation.comment_body(body)
        internal = visibility is Visibility.INTERNAL
        if internal and not actor.is_staff:
            raise PermissionDenied("visibility: only engineers write internal comments")
        self._require_open(ticket)
        comment = tx.add_comment(ticket.id, actor.login, visibility, body, self.clock.now())
        excerpt = body if len(body) <= COMMENT_EXCERPT else body[: COMMENT_EXCERPT - 1] + "…"
        action = REPLIED if actor.is_staff and not internal else "commented"
        self.record(tx, actor, ticket, [Change(action, visibility.value, "", excerpt, internal)])
        return comment

    def close_confirmed(self) -> int:
        """Closes tickets resolved longer than the confirmation window ago; returns how many."""
        now = self.clock.now()
        resolved = self.workflow.statuses_of(StatusKind.RESOLVED)
        closed = 0
        with self.db.write() as tx:
            for ticket_id in tx.resolved_before(
                resolved, now - self.confirm_window, AUTO_CLOSE_BATCH
            ):
                ticket = tx.ticket(ticket_id, for_update=True)
                assert ticket is not None
                closing = [
                    t.name
                    for t in self.workflow.available(ticket, SYSTEM_ACTOR)
                    if self.workflow.kind(t.target) is StatusKind.CLOSED
                ]
                if not closing:
                    continue
                changes = self.workflow.apply(ticket, SYSTEM_ACTOR, closing[0], "", now)
                self.record(tx, SYSTEM_ACTOR, ticket, changes)
                closed += 1
        return closed

    def fire_alarms(self) -> int:
        """Fires the SLA alarms due now and acts on the escalation map; returns how many
        tickets were escalated."""
        now = self.clock.now()
        with self.db.write() as tx:
            ticket_ids = tx.alarmed(now, AUTO_CLOSE_BATCH)
            for ticket_id in ticket_ids:
                ticket = tx.ticket(ticket_id, for_update=True)
                assert ticket is not None
                changes = self.sla.escalate(tx, ticket, now)
                self.record(tx, SYSTEM_ACTOR, ticket, changes)
        return len(ticket_ids)

    def recompute_sla(self) -> int:
        """Puts every open ticket under the present SLA configuration (see `SlaService.refresh`),
        a batch per transaction so the node keeps serving; returns how many it went through.

        Run when the configuration changed: a policy's targets or conditions, hours,
        holidays, a policy deactivated (its tickets fall to the next policy that
        matches, or to none, and its alarms are gone with it).
        """
        now, after, done = self.clock.now(), 0, 0
        open_statuses = self.workflow.open_statuses()
        while True:
            with self.db.write() as tx:
                stores = {store.code: store for store in tx.stores()}
                batch = tx.sla_rows(after, RECOMPUTE_BATCH, open_statuses)
                if not batch.ids:
                    return done
                found = self.sla.reschedule(batch, stores)
                tx.save_deadlines(found.ids, found.due_us, found.alarm_us)
                for ticket_id in found.others:
                    ticket = tx.ticket(ticket_id, for_update=True)
                    assert ticket is not None
                    finished: list[ClockView] = []
                    history = self.sla.refresh(ticket, stores[ticket.store], now, finished)
                    tx.save_sla([ticket])
                    tx.add_sla_results(ticket.id, finished)
                    if history:
                        tx.add_history(ticket.id, now, SYSTEM_ACTOR.login, history)
                tx.after_commit(self.feed.publish)
            after, done = batch.ids[-1], done + len(batch.ids)

    def adopt_sla_config(self, fingerprint: str) -> int | None:
        """Recomputes every open ticket's SLA when the node's SLA configuration is not the
        one they were last computed under (fingerprint names it); returns how many tickets
        it went through, None when nothing changed."""
        with self.db.read() as tx:
            if tx.setting(SLA_CONFIG_SETTING) == fingerprint:
                return None
        done = self.recompute_sla()
        with self.db.write() as tx:
            tx.put_setting(SLA_CONFIG_SETTING, fingerprint)
        return done

    def next_alarm(self) -> datetime | None:
        """When the earliest SLA alarm is due, if any clock will raise one."""
        with self.db.read() as tx:
            return tx.earliest_alarm()

    def next_auto_close(self) -> datetime | None:
        """When the earliest resolved ticket's confirmation window ends, if any is resolved."""
        with self.db.read() as tx:
            earliest = tx.earliest_resolved(self.workflow.statuses_of(StatusKind.RESOLVED))
        return None if earliest is None else earliest + self.confirm_window

    # -- history -----------------------------------------------------------------

    def comments(self, actor: Actor, key: str) -> list[Comment]:
        with self.db.read() as tx:
            ticket = self._visible(tx, actor, key)
            return tx.comments(ticket.id, include_internal=actor.role is not Role.REQUESTER)

    def history(self, actor: Actor, key: str) -> list[HistoryEntry]:
        with self.db.read() as tx:
            ticket = self._visible(tx, actor, key)
            return tx.history(
                ticket_id=ticket.id, include_internal=actor.role is not Role.REQUESTER
            )

    def start_cursor(self, after_id: int) -> EventCursor:
        """A cursor after after_id, or after the newest entry when after_id is 0."""
        if after_id < 0:
            raise InvalidArgument("after_event_id", "must not be negative")
        if after_id == 0:
            with self.db.read() as tx:
                after_id = tx.last_history_id()
        return EventCursor(after_id)

    def events(self, actor: Actor, cursor: EventCursor, ticket_key: str = "") -> list[HistoryEntry]:
        """History entries past cursor that actor may see.

        Args:
            actor: the watcher.
            cursor: moved past every entry read, seen by actor or not.
            ticket_key: of this ticket only, a key `get` has accepted for actor.
        """
        with self.db.read() as tx:
            entries = tx.history(
                after_id=cursor.position,
                also_ids=cursor.pending(self.clock.now()),
                limit=EVENT_BATCH,
            )
        fresh = cursor.advance(entries, self.clock.now())
        if ticket_key:
            fresh = [e for e in fresh if e.ticket_key == ticket_key]
        if actor.role is Role.REQUESTER:
            fresh = [e for e in fresh if not e.change.internal and e.store == actor.store]
        return fresh

    # -- helpers -----------------------------------------------------------------

    def _visible(self, tx: Tx, actor: Actor, key: str, *, for_update: bool = False) -> Ticket:
        ticket = tx.ticket(validation.ticket_number(key, tx.key_prefix), for_update=for_update)
        if ticket is None or (actor.role is Role.REQUESTER and ticket.store != actor.store):
            raise NotFound("ticket", key)
        return ticket

    def for_change(self, tx: Tx, actor: Actor, key: str) -> Ticket:
        """The open ticket actor may see, read for update in tx."""
        ticket = self._visible(tx, actor, key, for_update=True)
        self._require_open(ticket)
        return ticket

    def _require_open(self, ticket: Ticket) -> None:
        if self.workflow.kind(ticket.status) in FINAL_KINDS:
            raise FailedPrecondition(
                f"ticket {ticket.key} is {ticket.status}: it changes only after an admin reopens it"
            )

    def _publish(self, tx: Tx, ticket: Ticket) -> None:
        """Tells the feed, and the scheduler of ticket's next alarm, once tx commits."""
        tx.after_commit(self.feed.publish)
        alarm_at = ticket.alarm_at
        if alarm_at is not None:
            tx.after_commit(lambda: self.on_alarm(alarm_at))

    def _show(self, tx: Tx, ticket: Ticket) -> None:
        """Sets the live clocks of a ticket a use case changes and returns, unless moving
        them set them already."""
        if not ticket.clocks:
            self.sla.show(tx, [ticket], self.clock.now(), finished=False)

    def record(self, tx: Tx, actor: Actor, ticket: Ticket, changes: list[Change]) -> None:
        """Saves the changes actor made to ticket, with the SLA's, in its history, and tells
        `on_record` (the exchange reports them to the partners the ticket is linked to)."""
        if not changes:
            return
        ticket.updated_at = self.clock.now()
        changes = changes + self.sla.follow(tx, ticket, changes, ticket.updated_at)
        tx.save_ticket(ticket)
        tx.add_history(ticket.id, ticket.updated_at, actor.login, changes)
        for hook in self.on_record:
            hook(tx, actor, ticket, changes)
        self._publish(tx, ticket)

    def _requester(self, tx: Tx, actor: Actor, login: str) -> tuple[str, str | None]:
        """The requester's login and, for store staff, their store."""
        if not login or login == actor.login:
            return actor.login, actor.store
        if actor.role is Role.REQUESTER:
            raise PermissionDenied("requester: store staff file tickets only in their own name")
        user = tx.user(validation.code("requester", login))
        if user is None or not user.active:
            raise InvalidArgument("requester", f"no active user {login!r}")
        return user.login, user.store

    def _earlier(self, tx: Tx, requester: str, request_id: str, fingerprint: str) -> Ticket:
        """The ticket an earlier create with this request id filed (whose insert conflicted)."""
        found = tx.ticket_by_request(requester, request_id)
        assert found is not None, "a conflicting create is visible once it committed"
        ticket_id, earlier_fingerprint = found
        if earlier_fingerprint != fingerprint:
            raise AlreadyExists(
                f"request_id: {request_id!r} was used for {tx.key(ticket_id)} with other content"
            )
        ticket = tx.ticket(ticket_id)
        assert ticket is not None
        return ticket


def _ignore(_at: datetime) -> None:
    """What a service no scheduler listens to does with an alarm instant."""


def _store_code(actor: Actor, code: str, home: str | None) -> str:
    """The ticket's store: the requester's own, or the one named by engineers."""
    if home:
        if code and code != home:
            if actor.role is Role.REQUESTER:
                raise PermissionDenied("store: requesters file only for their own store")
            raise InvalidArgument("store", f"the requester belongs to store {home!r}")
        return home
    if not code:
        raise InvalidArgument("store", "must be given by engineers and integrations")
    return code


def _category(tx: Tx, code: str) -> Category:
    category = tx.category(validation.code("category", code))
    if category is None:
        raise InvalidArgument("category", f"no such category {code!r} in the catalogue")
    return category


def _engineer(tx: Tx, field: str, login: str) -> None:
    user = tx.user(validation.code(field, login))
    if user is None or not user.active or user.role not in STAFF:
        raise InvalidArgument(field, f"{login!r} is not an active agent, supervisor or admin")


def _fingerprint(draft: TicketDraft) -> str:
    """A digest of what a create asks for, to tell a retry from a reuse of its request id."""
    content = (
        draft.category,
        draft.title,
        draft.description,
        draft.store,
        draft.ticket_type,
        draft.impact,
        draft.urgency,
        draft.requester,
    )
    return hashlib.sha256(_FINGERPRINT_JSON.encode(content).encode()).hexdigest()
