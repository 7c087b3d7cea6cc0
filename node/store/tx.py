"""One transaction's view of the database: methods take and return domain values."""

import functools
import json
import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

from node.domain.calendar import epoch_us
from node.domain.errors import Unavailable
from node.domain.roles import Actor, Role
from node.domain.sla import POLICY_FIELD, REPLIED, ClockState, ClockView, Timer
from node.domain.ticket import (
    FAR_FUTURE,
    Category,
    Change,
    Comment,
    Group,
    HistoryEntry,
    Level,
    Priority,
    QueuePosition,
    Store,
    Ticket,
    TicketQuery,
    TicketType,
    Tier,
    User,
    Visibility,
)
from node.store import schema as s
from node.store import slastate
from node.store.links import Links

_TICKET_FIELDS = {
    "title": s.tickets.c.title,
    "description": s.tickets.c.description,
    "ticket_type": s.tickets.c.ticket_type,
    "category": s.tickets.c.category_code,
    "requester": s.tickets.c.requester,
    "store": s.tickets.c.store_code,
    "impact": s.tickets.c.impact,
    "urgency": s.tickets.c.urgency,
    "priority": s.tickets.c.priority,
    "stop_trade": s.tickets.c.stop_trade,
    "status": s.tickets.c.status,
    "created_at": s.tickets.c.created_at,
    "updated_at": s.tickets.c.updated_at,
    "assignee": s.tickets.c.assignee,
    "group": s.tickets.c.group_code,
    "resolved_at": s.tickets.c.resolved_at,
    "closed_at": s.tickets.c.closed_at,
    "line": s.tickets.c.line,
    "alarm_at": s.tickets.c.alarm_at,
    "promised_respond_by": s.tickets.c.promised_respond_by,
    "promised_resolve_by": s.tickets.c.promised_resolve_by,
}
"""Ticket attribute → column, for the attributes stored as they are."""
_TICKET_KEYS = [(attr, column.key) for attr, column in _TICKET_FIELDS.items()]
_SLA_COLUMNS = ["due_at", "sla_policy", "sla_state"]
"""Columns of what the ticket holds of its SLA."""
_INSTANTS = [
    "created_at",
    "updated_at",
    "resolved_at",
    "closed_at",
    "due_at",
    "alarm_at",
    "promised_respond_by",
    "promised_resolve_by",
]
"""Columns of instants, which the raw statements bind and read back on each backend."""

# Statements of the hot paths, built once: building a statement costs more than running it.
_GROUP = select(s.groups).where(s.groups.c.code == bindparam("code"))
_USER = select(s.users).where(s.users.c.login == bindparam("login"))
_BY_REQUEST = select(s.tickets.c.id, s.tickets.c.request_sha256).where(
    s.tickets.c.requester == bindparam("requester"),
    s.tickets.c.request_id == bindparam("request_id"),
)
_SAVE_SLA = (
    update(s.tickets)
    .where(s.tickets.c.id == bindparam("ticket_id"))
    .values(
        sla_policy=bindparam("sla_policy"),
        sla_state=bindparam("sla_state"),
        due_at=bindparam("due_at"),
        alarm_at=bindparam("alarm_at"),
    )
)
_OPEN_TICKETS = (
    select(s.tickets)
    .where(
        s.tickets.c.id > bindparam("after_id"),
        s.tickets.c.status.in_(bindparam("statuses", expanding=True)),
    )
    .order_by(s.tickets.c.id)
    .limit(bindparam("limit"))
)
_CO_ASSIGNEES = select(s.co_assignees).where(
    s.co_assignees.c.ticket_id.in_(bindparam("ids", expanding=True))
)
# The statements of filing a ticket run on the DBAPI cursor: SQLAlchemy's work per
# execution costs more than the statements themselves. Written once with :name
# parameters (sqlite3's style), turned into psycopg's %(name)s below.
_CATALOGUE_COLUMNS = """c.code, c.name, c.ticket_type, c.impact, c.urgency, c.stop_trade,
    c.group_code, s.code, s.name, s.region, s.timezone, s.tier"""
_SQL_CATALOGUE = f"""
    SELECT {_CATALOGUE_COLUMNS}
    FROM (SELECT 1 AS one) AS anchor
    LEFT JOIN categories c ON c.code = :category
    LEFT JOIN stores s ON s.code = :store"""
# A token's user, and with it the category and store a call asks for (the user's own
# store when the call names none): one round trip where filing a ticket needs both.
_SQL_ACTOR_AND_CATALOGUE = f"""
    SELECT users.login, users.role, users.store_code, {_CATALOGUE_COLUMNS} FROM users
    JOIN api_tokens ON api_tokens.login = users.login
    LEFT JOIN categories c ON c.code = :category
    LEFT JOIN stores s ON s.code = COALESCE(NULLIF(:store, ''), users.store_code)
    WHERE api_tokens.token_sha256 = :digest AND api_tokens.revoked_at IS NULL
    AND users.active = :active"""
_TICKET_COLUMNS = [column.key for column in _TICKET_FIELDS.values()] + [
    *_SLA_COLUMNS,
    "request_id",
    "request_sha256",
]
_SQL_INSERT_TICKET = (
    f"INSERT INTO tickets ({', '.join(_TICKET_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _TICKET_COLUMNS)}) "
    "ON CONFLICT (requester, request_id) DO NOTHING RETURNING id"
)
_HISTORY_COLUMNS = ["ticket_id", "at", "actor", "action", "field", "before", "after", "internal"]
_SQL_SLA_ROWS = """
    SELECT id, ticket_type, category_code, priority, store_code, stop_trade, sla_policy, sla_state,
           {due_at}, {alarm_at}, promised_respond_by IS NOT NULL OR promised_resolve_by IS NOT NULL
    FROM tickets WHERE id > :after_id AND {status} IN ({statuses}) ORDER BY id LIMIT :limit"""
# A pass over many tickets reads their deadlines as UTC text (SQLite stores them so) and
# converts a whole batch at once with numpy. SQLite would find the open tickets through the
# status index and sort every batch by id; '+' keeps it on the id order.
_SQL_SLA_ROWS_DIALECT = {
    "sqlite": {"due_at": "due_at", "alarm_at": "alarm_at", "status": "+status"},
    "postgresql": {
        "due_at": "to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
        "alarm_at": "to_char(alarm_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
        "status": "status",
    },
}
# It writes them back with positional parameters, which the drivers bind faster.
_SQL_SAVE_DEADLINES = {
    "sqlite": "UPDATE tickets SET due_at = ?, alarm_at = ? WHERE id = ?",
    "postgresql": "UPDATE tickets SET due_at = CAST(%s AS timestamp) AT TIME ZONE 'UTC',"
    " alarm_at = CAST(%s AS timestamp) AT TIME ZONE 'UTC' WHERE id = %s",
}
# PostgreSQL files a ticket and the history of its creation in one statement, one round
# trip: the history rows come from arrays of the changes' fields, in their order.
_SQL_FILE_TICKET = f"""
    WITH ticket AS ({_SQL_INSERT_TICKET}),
    history AS (
        INSERT INTO ticket_history ({", ".join(_HISTORY_COLUMNS)})
        SELECT ticket.id, :at, :actor, c.action, c.field, c.before, c.after, c.internal
        FROM ticket CROSS JOIN json_to_recordset(CAST(:changes AS json))
            AS c(n integer, action text, field text, before text, after text, internal boolean)
        ORDER BY c.n
    )
    SELECT id FROM ticket"""
_TICKET_ROW = [column.name for column in s.tickets.columns]
_TicketRow: Any = namedtuple("_TicketRow", _TICKET_ROW)  # type: ignore[misc]
"""A ticket's row as a raw statement reads it, its instants read back (`Tx.read_instant`)."""
_TICKET_INSTANTS = [n for n, name in enumerate(_TICKET_ROW) if name in _INSTANTS]
_SQL_TICKET = f"SELECT {', '.join(_TICKET_ROW)} FROM tickets WHERE id = :id"
_SQL_CO_ASSIGNEES = f"SELECT login FROM {s.co_assignees.name} WHERE ticket_id = :id"
_SAVED_COLUMNS = [key for _, key in _TICKET_KEYS] + _SLA_COLUMNS
_SQL_SAVE_TICKET = (
    f"UPDATE tickets SET {', '.join(f'{c} = :{c}' for c in _SAVED_COLUMNS)} WHERE id = :id"
)
_FAR_FUTURE_US = epoch_us(FAR_FUTURE)
Floats = NDArray[np.float64]
_NAMED = re.compile(r":([a-z_0-9]+)")


Kind = tuple[str, str, int, str, bool]
"""What a ticket's SLA policy is chosen by: its type, category, priority, store code and
stop-trade flag."""


@dataclass(frozen=True, slots=True)
class SlaBatch:
    """Tickets' SLA as stored, column by column, for a pass over many.

    Attributes:
        ids: the tickets' ids, ascending.
        kinds: each one's `Kind`.
        policies: the policy each one is under.
        states: each one's SLA state, as `slastate` stores it.
        due_us, alarm_us: each one's deadline and next alarm stored now, epoch
            microseconds; NaN for none.
        promised: deadlines were promised to a client node for it (see
            `Ticket.promised_resolve_by`).
    """

    ids: Sequence[int]
    kinds: Sequence[Kind]
    policies: Sequence[str]
    states: Sequence[str]
    due_us: Floats
    alarm_us: Floats
    promised: Sequence[bool]


class Tx:
    """Repository methods bound to one open transaction.

    Args:
        conn: a connection inside a transaction.
        key_prefix: the node's ticket key prefix, to build keys from ids.
        writable: the transaction may write.
    """

    def __init__(self, conn: Connection, key_prefix: str, *, writable: bool = True) -> None:
        self.conn = conn
        self.key_prefix = key_prefix
        self.writable = writable
        self.committed: list[Callable[[], None]] = []
        self.committing: list[Callable[[], None]] = []
        self._catalogue: dict[tuple[str, str], tuple[Category | None, Store | None]] = {}
        self._co_assignees_known: dict[int, frozenset[str]] = {}
        """Ticket id → its co-assignees as this transaction read or wrote them."""
        """(category, store) → what `category_and_store` answers, read ahead with the actor."""

    @functools.cached_property
    def links(self) -> Links:
        """The exchange's partners, links and signed log, in this transaction."""
        return Links(self)

    @property
    def locks_rows(self) -> bool:
        """Whether `for_update` reads lock rows (PostgreSQL); on SQLite a write transaction
        holds the whole database from its start."""
        return self.conn.dialect.name != "sqlite"

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A transaction within this one: what the block wrote is undone if it raises, and
        what the transaction wrote before it stays.

        Raises:
            Unavailable: the database failed (the whole transaction is lost).
        """
        try:
            with self.conn.begin_nested():
                yield
        except OperationalError as error:
            raise unavailable(error) from error

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Calls callback once the transaction has committed (never if it rolls back)."""
        self.committed.append(callback)

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Calls callback inside the transaction once its work is done, before it commits
        (never if the work raises): to write what the work as a whole calls for."""
        self.committing.append(callback)

    def finish(self) -> None:
        """Runs the before_commit callbacks, those they add included."""
        while self.committing:
            self.committing.pop(0)()

    # -- settings and catalogue -------------------------------------------------

    def setting(self, name: str) -> str | None:
        return self.conn.scalar(select(s.settings.c.value).where(s.settings.c.name == name))

    def put_setting(self, name: str, value: str) -> None:
        self._upsert(s.settings, {"name": name, "value": value}, ["name"])

    def put_store(self, store: Store) -> None:
        row = {
            "code": store.code,
            "name": store.name,
            "region": store.region,
            "timezone": store.timezone,
            "tier": store.tier.value,
        }
        self._upsert(s.stores, row, ["code"])
        self._catalogue.clear()

    def store(self, code: str) -> Store | None:
        return self.category_and_store("", code)[1]

    def stores(self) -> list[Store]:
        return [_store(r) for r in self.conn.execute(select(s.stores).order_by(s.stores.c.code))]

    def put_group(self, group: Group) -> None:
        self._upsert(s.groups, {"code": group.code, "name": group.name}, ["code"])

    def group(self, code: str) -> Group | None:
        row = self.conn.execute(_GROUP, {"code": code}).first()
        return None if row is None else Group(row.code, row.name)

    def groups(self) -> list[Group]:
        rows = self.conn.execute(select(s.groups).order_by(s.groups.c.code))
        return [Group(r.code, r.name) for r in rows]

    def put_category(self, category: Category) -> None:
        row = {
            "code": category.code,
            "name": category.name,
            "ticket_type": category.ticket_type.value,
            "impact": int(category.impact),
            "urgency": int(category.urgency),
            "stop_trade": category.stop_trade,
            "group_code": category.group,
        }
        self._upsert(s.categories, row, ["code"])
        self._catalogue.clear()

    def category(self, code: str) -> Category | None:
        return self.category_and_store(code, "")[0]

    def category_and_store(self, category: str, store: str) -> tuple[Category | None, Store | None]:
        """A category and a store, read in one statement (filing a ticket needs both), or
        with the actor when `actor_for_token` was asked for them."""
        found = self._catalogue.get((category, store))
        if found is None and (category, "") in self._catalogue and ("", store) in self._catalogue:
            found = (self._catalogue[category, ""][0], self._catalogue["", store][1])
        if found is None:
            found = _catalogue(
                self._fetchone(_SQL_CATALOGUE, {"category": category, "store": store})
            )
            self._remember(category, store, found)
        return found

    def _remember(
        self, category: str, store: str, found: tuple[Category | None, Store | None]
    ) -> None:
        """Keeps what the catalogue answered for category and store, and for each alone,
        until the transaction changes the catalogue."""
        self._catalogue[category, store] = found
        if category:
            self._catalogue[category, ""] = (found[0], None)
        if store:
            self._catalogue["", store] = (None, found[1])

    def categories(self) -> list[Category]:
        rows = self.conn.execute(select(s.categories).order_by(s.categories.c.code))
        return [_category(r) for r in rows]

    # -- users and tokens --------------------------------------------------------

    def add_user(self, user: User) -> bool:
        """Adds a user; False if the login is taken."""
        row = {
            "login": user.login,
            "name": user.name,
            "role": user.role.value,
            "store_code": user.store,
            "active": user.active,
        }
        return self._insert_new(s.users, row, ["login"])

    def user(self, login: str) -> User | None:
        row = self.conn.execute(_USER, {"login": login}).first()
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        return [_user(r) for r in self.conn.execute(select(s.users).order_by(s.users.c.login))]

    def add_token(self, login: str, name: str, token_sha256: str, now: datetime) -> None:
        self.conn.execute(
            insert(s.api_tokens).values(
                token_sha256=token_sha256, login=login, name=name, created_at=now
            )
        )

    def revoke_tokens(self, login: str, now: datetime) -> int:
        result = self.conn.execute(
            update(s.api_tokens)
            .where(s.api_tokens.c.login == login, s.api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(s.api_tokens.c.id)
        )
        return len(result.all())

    def actor_for_token(
        self, token_sha256: str, category: str = "", store: str = ""
    ) -> Actor | None:
        """The active user a live token belongs to.

        Args:
            category: a category code this transaction will ask `category_and_store` for,
                read in the same statement ('' for none).
            store: the store code it will ask for with it; '' for the user's own store.
        """
        params = {"digest": token_sha256, "active": True, "category": category, "store": store}
        row = self._fetchone(_SQL_ACTOR_AND_CATALOGUE, params)
        if row is None:
            return None
        actor = Actor(row[0], Role(row[1]), row[2])
        self._remember(category, store or actor.store or "", _catalogue(row[3:]))
        return actor

    # -- tickets -----------------------------------------------------------------

    def insert_ticket(
        self,
        ticket: Ticket,
        request_id: str,
        request_sha256: str,
        actor: str,
        changes: Sequence[Change],
    ) -> int | None:
        """Inserts a new ticket with the history of its creation and returns its id.

        Args:
            actor: who filed it; the history entries are theirs, at the ticket's creation.
            changes: the history entries, in order.

        Returns:
            None when the requester already filed a ticket with this request id; then
            nothing is written.
        """
        values = self._bound_values(ticket)
        values["request_id"] = request_id or None
        values["request_sha256"] = request_sha256 if request_id else None
        if self.conn.dialect.name == "sqlite":
            row = self._fetchone(_SQL_INSERT_TICKET, values)
            if row is not None:
                self.add_history(row[0], ticket.created_at, actor, changes)
        else:
            values["at"], values["actor"] = values["created_at"], actor
            values["changes"] = json.dumps(
                [
                    {
                        "n": n,
                        "action": c.action,
                        "field": c.field,
                        "before": c.before,
                        "after": c.after,
                        "internal": c.internal,
                    }
                    for n, c in enumerate(changes)
                ]
            )
            row = self._fetchone(_SQL_FILE_TICKET, values)
        ticket_id: int | None = None if row is None else row[0]
        if ticket_id is not None:
            self._add_co_assignees(ticket_id, ticket.co_assignees)
            self._co_assignees_known[ticket_id] = ticket.co_assignees
        return ticket_id

    def ticket_by_request(self, requester: str, request_id: str) -> tuple[int, str] | None:
        """(ticket id, request fingerprint) of an earlier create with this request id."""
        params = {"requester": requester, "request_id": request_id}
        row = self.conn.execute(_BY_REQUEST, params).first()
        return None if row is None else (row.id, row.request_sha256)

    def ticket(self, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
        """The ticket with this id; for_update locks it until the transaction ends."""
        sql = self.for_update(_SQL_TICKET) if for_update else _SQL_TICKET
        row = self._fetchone(sql, {"id": ticket_id})
        if row is None:
            return None
        values = list(row)
        for n in _TICKET_INSTANTS:
            values[n] = self.read_instant(values[n])
        return self._ticket(_TicketRow(*values), self._co_assignees_of(ticket_id))

    def save_ticket(self, ticket: Ticket) -> None:
        """Writes every stored field of ticket, co-assignees included."""
        values = self._bound_values(ticket)
        values["id"] = ticket.id
        self.raw(_SQL_SAVE_TICKET, values)
        stored = self._co_assignees_of(ticket.id)
        gone = stored - ticket.co_assignees
        if gone:
            self.conn.execute(
                delete(s.co_assignees).where(
                    s.co_assignees.c.ticket_id == ticket.id, s.co_assignees.c.login.in_(gone)
                )
            )
        self._add_co_assignees(ticket.id, ticket.co_assignees - stored)
        self._co_assignees_known[ticket.id] = ticket.co_assignees

    def list_tickets(self, query: TicketQuery) -> list[Ticket]:
        """Tickets matching query, in queue order."""
        t = s.tickets.c
        conditions: list[ColumnElement[bool]] = []
        if query.statuses:
            conditions.append(t.status.in_(query.statuses))
        for column, value in (
            (t.assignee, query.assignee),
            (t.group_code, query.group),
            (t.store_code, query.store),
            (t.category_code, query.category),
        ):
            if value is not None:
                conditions.append(column == value)
        if query.priority is not None:
            conditions.append(t.priority == int(query.priority))
        if query.stop_trade_only:
            conditions.append(t.stop_trade.is_(true()))
        if query.after is not None:
            conditions.append(_after(query.after))
        rows = self.conn.execute(
            select(s.tickets)
            .where(*conditions)
            .order_by(t.stop_trade.desc(), t.due_at, t.priority, t.created_at, t.id)
            .limit(query.limit)
        ).all()
        co = self._co_assignees([r.id for r in rows])
        return [self._ticket(r, co.get(r.id, frozenset())) for r in rows]

    def resolved_before(self, statuses: Sequence[str], cutoff: datetime, limit: int) -> list[int]:
        """Ids of tickets in statuses that were resolved at or before cutoff."""
        t = s.tickets.c
        query = (
            select(t.id)
            .where(t.status.in_(statuses), t.resolved_at <= cutoff)
            .order_by(t.resolved_at)
            .limit(limit)
        )
        return list(self.conn.scalars(query))

    def earliest_resolved(self, statuses: Sequence[str]) -> datetime | None:
        t = s.tickets.c
        earliest: datetime | None = self.conn.scalar(
            select(func.min(t.resolved_at)).where(t.status.in_(statuses))
        )
        return earliest

    # -- SLA ---------------------------------------------------------------------

    def open_tickets(self, after_id: int, limit: int, statuses: Sequence[str]) -> list[Ticket]:
        """Tickets in statuses with ids above after_id, in id order, for their SLA only:
        co-assignees are not read, so save them with `save_sla`, never `save_ticket`."""
        rows = self.conn.execute(
            _OPEN_TICKETS, {"after_id": after_id, "limit": limit, "statuses": list(statuses)}
        )
        return [self._ticket(row, frozenset()) for row in rows]

    def save_sla(self, tickets: Sequence[Ticket]) -> None:
        """Writes what tickets hold of their SLA: policy, state, deadline and next alarm."""
        if tickets:
            self.conn.execute(
                _SAVE_SLA,
                [
                    {
                        "ticket_id": ticket.id,
                        "sla_policy": ticket.sla.policy,
                        "sla_state": slastate.encode(ticket.sla),
                        "due_at": ticket.due_at or FAR_FUTURE,
                        "alarm_at": ticket.alarm_at,
                    }
                    for ticket in tickets
                ],
            )

    def sla_rows(self, after_id: int, limit: int, statuses: Sequence[str]) -> SlaBatch:
        """What the SLA of tickets in statuses with ids above after_id depends on, by id,
        with the deadlines and alarms stored now."""
        cursor = self._cursor()
        marks = ", ".join(f":s{i}" for i in range(len(statuses)))
        params: dict[str, Any] = {f"s{i}": status for i, status in enumerate(statuses)}
        dialect = _SQL_SLA_ROWS_DIALECT[self.conn.dialect.name]
        sql = _SQL_SLA_ROWS.format(statuses=marks, **dialect)
        cursor.execute(self._sql(sql), {**params, "after_id": after_id, "limit": limit})
        rows = cursor.fetchall()
        due_us = _us_of_text([row[8] for row in rows])
        return SlaBatch(
            ids=[row[0] for row in rows],
            kinds=[row[1:6] for row in rows],
            policies=[row[6] for row in rows],
            states=[row[7] for row in rows],
            due_us=np.where(due_us < _FAR_FUTURE_US, due_us, np.nan),
            alarm_us=_us_of_text([row[9] for row in rows]),
            promised=[bool(row[10]) for row in rows],
        )

    def save_deadlines(self, ids: Sequence[int], due_us: Floats, alarm_us: Floats) -> None:
        """Writes the deadlines and next alarms (epoch microseconds, NaN for none) of tickets
        whose SLA state stays as it is."""
        if len(ids):
            due_at = _text_of_us(np.where(np.isnan(due_us), _FAR_FUTURE_US, due_us))
            rows = zip(due_at, _text_of_us(alarm_us), ids, strict=True)
            self._cursor().executemany(_SQL_SAVE_DEADLINES[self.conn.dialect.name], rows)

    def alarmed(self, now: datetime, limit: int) -> list[int]:
        """Ids of tickets with an SLA alarm due at now, earliest first, locked for this
        transaction; on PostgreSQL those another transaction holds are skipped, so
        several processes share the work without doing any of it twice."""
        t = s.tickets.c
        query = (
            select(t.id)
            .where(t.alarm_at <= now)
            .order_by(t.alarm_at, t.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self.conn.scalars(query))

    def earliest_alarm(self) -> datetime | None:
        earliest: datetime | None = self.conn.scalar(select(func.min(s.tickets.c.alarm_at)))
        return earliest

    def open_load(self, login: str, statuses: Sequence[str]) -> int:
        """How many tickets in statuses login is the assignee of."""
        t = s.tickets.c
        query = select(func.count()).where(t.assignee == login, t.status.in_(statuses))
        return int(self.conn.scalar(query) or 0)

    def add_sla_results(self, ticket_id: int, clocks: Sequence[ClockView]) -> None:
        """Records finished clocks, in business minutes."""
        if clocks:
            self.conn.execute(
                insert(s.sla_results),
                [
                    {
                        "ticket_id": ticket_id,
                        "timer": c.timer.value,
                        "cycle": c.cycle,
                        "policy": c.policy,
                        "state": c.state.value,
                        "target_minutes": c.target_s / 60,
                        "elapsed_minutes": c.elapsed_s / 60,
                        "paused_minutes": c.paused_s / 60,
                        "breached": c.breached,
                        "started_at": c.started_at,
                        "ended_at": c.ended_at,
                    }
                    for c in clocks
                ],
            )

    def sla_results(self, ticket_id: int) -> list[ClockView]:
        """The ticket's finished clocks, oldest first."""
        r = s.sla_results.c
        rows = self.conn.execute(
            select(s.sla_results).where(r.ticket_id == ticket_id).order_by(r.id)
        )
        return [
            ClockView(
                timer=Timer(row.timer),
                cycle=row.cycle,
                policy=row.policy,
                state=ClockState(row.state),
                target_s=row.target_minutes * 60,
                elapsed_s=row.elapsed_minutes * 60,
                paused_s=row.paused_minutes * 60,
                started_at=row.started_at,
                ended_at=row.ended_at,
            )
            for row in rows
        ]

    def sla_history(self, ticket_id: int) -> list[tuple[datetime, str, str, str]]:
        """(at, action, field, after) of the ticket's history entries that move its clocks."""
        h = s.history.c
        rows = self.conn.execute(
            select(h.at, h.action, h.field, h.after)
            .where(
                h.ticket_id == ticket_id,
                or_(h.field.in_(["status", POLICY_FIELD]), h.action == REPLIED),
            )
            .order_by(h.id)
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def add_notification(
        self, ticket_id: int, recipient: str, kind: str, body: str, now: datetime
    ) -> None:
        self.conn.execute(
            insert(s.notifications).values(
                ticket_id=ticket_id, recipient=recipient, kind=kind, body=body, created_at=now
            )
        )

    def notifications(self, ticket_id: int) -> list[tuple[str, str, str]]:
        """(recipient, kind, body) of the notifications about a ticket, oldest first."""
        n = s.notifications.c
        rows = self.conn.execute(
            select(n.recipient, n.kind, n.body).where(n.ticket_id == ticket_id).order_by(n.id)
        )
        return [(row[0], row[1], row[2]) for row in rows]

    # -- history and comments ----------------------------------------------------

    def add_history(
        self, ticket_id: int, at: datetime, actor: str, changes: Iterable[Change]
    ) -> None:
        """Records changes made at `at` by actor as history entries, in their order, with
        one statement: each statement lets go of the GIL and must win it back, and
        executemany does so once per row."""
        at_bound = self.bind_instant(at)
        params: dict[str, Any] = {"ticket_id": ticket_id, "at": at_bound, "actor": actor}
        count = 0
        for count, c in enumerate(changes, 1):
            params[f"action{count}"], params[f"field{count}"] = c.action, c.field
            params[f"before{count}"], params[f"after{count}"] = c.before, c.after
            params[f"internal{count}"] = c.internal
        if count:
            self._cursor().execute(self._sql(_insert_history(count)), params)

    def history(
        self,
        *,
        ticket_id: int | None = None,
        after_id: int = 0,
        also_ids: Sequence[int] = (),
        store: str | None = None,
        include_internal: bool = True,
        limit: int | None = None,
    ) -> list[HistoryEntry]:
        """History entries in id order.

        Args:
            ticket_id: of this ticket only.
            after_id: with ids above this one ...
            also_ids: ... or among these (entries a reader may have skipped while their
                transactions were still open).
            store: of this store's tickets only.
            include_internal: with internal entries.
            limit: at most this many.
        """
        h = s.history.c
        position = h.id > after_id
        if also_ids:
            position = or_(position, h.id.in_(also_ids))
        query = select(s.history, s.tickets.c.store_code).join(
            s.tickets, s.tickets.c.id == h.ticket_id
        )
        conditions: list[ColumnElement[bool]] = [position]
        if ticket_id is not None:
            conditions.append(h.ticket_id == ticket_id)
        if store is not None:
            conditions.append(s.tickets.c.store_code == store)
        if not include_internal:
            conditions.append(h.internal.is_(false()))
        rows = self.conn.execute(query.where(*conditions).order_by(h.id).limit(limit))
        return [
            HistoryEntry(
                id=r.id,
                ticket_key=self.key(r.ticket_id),
                store=r.store_code,
                at=r.at,
                actor=r.actor,
                change=Change(r.action, r.field, r.before, r.after, r.internal),
            )
            for r in rows
        ]

    def last_history_id(self) -> int:
        return self.conn.scalar(select(func.max(s.history.c.id))) or 0

    def last_change(self, ticket_id: int, field: str) -> str:
        """The latest value a ticket's history gave field ('' if none)."""
        h = s.history.c
        query = (
            select(h.after)
            .where(h.ticket_id == ticket_id, h.field == field)
            .order_by(h.id.desc())
            .limit(1)
        )
        return self.conn.scalar(query) or ""

    def last_comment(self, ticket_id: int, author: str) -> str:
        """The body of author's latest public comment on a ticket."""
        c = s.comments.c
        query = (
            select(c.body)
            .where(c.ticket_id == ticket_id, c.author == author, c.visibility == "public")
            .order_by(c.id.desc())
            .limit(1)
        )
        return self.conn.scalar(query) or ""

    def add_comment(
        self, ticket_id: int, author: str, visibility: Visibility, body: str, at: datetime
    ) -> Comment:
        comment_id = self.conn.scalar(
            insert(s.comments)
            .values(
                ticket_id=ticket_id,
                author=author,
                visibility=visibility.value,
                body=body,
                created_at=at,
            )
            .returning(s.comments.c.id)
        )
        assert comment_id is not None
        return Comment(comment_id, self.key(ticket_id), author, visibility, body, at)

    def comments(self, ticket_id: int, *, include_internal: bool) -> list[Comment]:
        c = s.comments.c
        query = select(s.comments).where(c.ticket_id == ticket_id)
        if not include_internal:
            query = query.where(c.visibility == Visibility.PUBLIC.value)
        rows = self.conn.execute(query.order_by(c.id))
        return [
            Comment(
                r.id, self.key(ticket_id), r.author, Visibility(r.visibility), r.body, r.created_at
            )
            for r in rows
        ]

    # -- helpers -----------------------------------------------------------------

    def key(self, ticket_id: int) -> str:
        return f"{self.key_prefix}-{ticket_id}"

    def _ticket(self, row: Any, co: frozenset[str]) -> Ticket:
        """The ticket of a row of the tickets table, a `Row` or a `_TicketRow`."""
        return Ticket(
            id=row.id,
            key=self.key(row.id),
            title=row.title,
            description=row.description,
            ticket_type=TicketType(row.ticket_type),
            category=row.category_code,
            requester=row.requester,
            store=row.store_code,
            impact=Level(row.impact),
            urgency=Level(row.urgency),
            priority=Priority(row.priority),
            stop_trade=bool(row.stop_trade),
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            assignee=row.assignee,
            group=row.group_code,
            co_assignees=co,
            resolved_at=row.resolved_at,
            closed_at=row.closed_at,
            line=row.line,
            sla=slastate.decode(row.sla_state, row.status, row.sla_policy),
            due_at=None if row.due_at >= FAR_FUTURE else row.due_at,
            alarm_at=row.alarm_at,
            promised_respond_by=row.promised_respond_by,
            promised_resolve_by=row.promised_resolve_by,
        )

    def _co_assignees(self, ticket_ids: Sequence[int]) -> dict[int, frozenset[str]]:
        if not ticket_ids:
            return {}
        rows = self.conn.execute(_CO_ASSIGNEES, {"ids": list(ticket_ids)})
        result: dict[int, set[str]] = {}
        for r in rows:
            result.setdefault(r.ticket_id, set()).add(r.login)
        return {k: frozenset(v) for k, v in result.items()}

    def _bound_values(self, ticket: Ticket) -> dict[str, Any]:
        """The stored columns of ticket, as the raw statements bind them."""
        values = _ticket_values(ticket)
        for name in _INSTANTS:
            values[name] = self.bind_instant(values[name])
        return values

    def _co_assignees_of(self, ticket_id: int) -> frozenset[str]:
        """A ticket's co-assignees, read once per transaction (it writes them itself, with
        the ticket locked)."""
        known = self._co_assignees_known.get(ticket_id)
        if known is None:
            rows = self.raw(_SQL_CO_ASSIGNEES, {"id": ticket_id})
            known = self._co_assignees_known[ticket_id] = frozenset(row[0] for row in rows)
        return known

    def _add_co_assignees(self, ticket_id: int, logins: Iterable[str]) -> None:
        rows = [{"ticket_id": ticket_id, "login": login} for login in sorted(logins)]
        if rows:
            self.conn.execute(insert(s.co_assignees), rows)

    def _cursor(self) -> Any:
        return self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def _sql(self, sql: str) -> str:
        return sql if self.conn.dialect.name == "sqlite" else _pyformat(sql)

    def raw(self, sql: str, params: dict[str, Any] | Sequence[dict[str, Any]]) -> Any:
        """Runs sql, with sqlite3's :name parameters, on the driver's own cursor and returns
        the cursor; a sequence of parameter dicts runs it once for each.

        The hot paths' statements run so: SQLAlchemy's work per execution costs more than
        the statements themselves. They bind instants with `bind_instant` and read them
        back with `read_instant`; booleans read back as ints on SQLite.
        """
        cursor = self._cursor()
        if isinstance(params, dict):
            cursor.execute(self._sql(sql), params)
        else:
            cursor.executemany(self._sql(sql), params)
        return cursor

    def for_update(self, sql: str) -> str:
        """sql (a SELECT) locking the rows it reads, where rows lock (`locks_rows`)."""
        return sql + " FOR UPDATE" if self.locks_rows else sql

    def _fetchone(self, sql: str, params: dict[str, Any]) -> Any:
        return self.raw(sql, params).fetchone()

    def bind_instant(self, value: datetime | None) -> datetime | str | None:
        """An instant as the raw statements bind it on this backend: on SQLite as
        SQLAlchemy stores a datetime there, which is what reads it back."""
        if value is None or self.conn.dialect.name != "sqlite":
            return value
        if value.tzinfo is UTC:  # most are: the text without the offset
            return value.isoformat(" ", "microseconds")[:26]
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    @staticmethod
    def read_instant(value: datetime | str | None) -> datetime | None:
        """An instant a raw statement read: SQLite's text of UTC, or PostgreSQL's timestamptz."""
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def _dialect_insert(self, table: Any) -> Any:
        module = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        return module.insert(table)

    def _upsert(self, table: Any, row: dict[str, Any], keys: list[str]) -> None:
        """Inserts row, or updates its other columns where one with the same keys is; row
        holds no instants (it is bound as it is)."""
        self.raw(_upsert(table.name, tuple(row), tuple(keys)), row)

    def _insert_new(self, table: Any, row: dict[str, Any], keys: list[str]) -> bool:
        stmt = self._dialect_insert(table).values(row).on_conflict_do_nothing(index_elements=keys)
        return self.conn.execute(stmt.returning(table.c[keys[0]])).first() is not None


def unavailable(error: DBAPIError) -> Unavailable:
    """The error a call gets while the database cannot be reached: its reason, on one line."""
    return Unavailable("database: " + " ".join(str(error.orig or error).split()))


@functools.cache
def _insert_history(count: int) -> str:
    """The INSERT of count history entries of one ticket, actor and instant, with the
    parameters ticket_id, at, actor and, numbered from 1, action, field, before, after
    and internal. Its rows get ascending ids in their order."""
    rows = ", ".join(
        f"(:ticket_id, :at, :actor, :action{n}, :field{n}, :before{n}, :after{n}, :internal{n})"
        for n in range(1, count + 1)
    )
    return f"INSERT INTO ticket_history ({', '.join(_HISTORY_COLUMNS)}) VALUES {rows}"


@functools.cache
def _upsert(table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    """The INSERT of a row of columns into table that updates the row with the same keys."""
    changed = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {changed}"
    )


@functools.cache
def _pyformat(sql: str) -> str:
    """sql with psycopg's %(name)s parameters for sqlite3's :name ones."""
    return _NAMED.sub(r"%(\1)s", sql)


def _ticket_values(ticket: Ticket) -> dict[str, Any]:
    values = {}
    for attr, key in _TICKET_KEYS:
        value = getattr(ticket, attr)
        values[key] = value.value if isinstance(value, Enum) else value
    values["due_at"] = ticket.due_at or FAR_FUTURE
    values["sla_policy"] = ticket.sla.policy
    values["sla_state"] = slastate.encode(ticket.sla)
    return values


def _us_of_text(texts: Sequence[str | None]) -> Floats:
    """Epoch microseconds of UTC instants written 'YYYY-MM-DD HH:MM:SS.ffffff'; NaN for None."""
    stamps = np.array(texts, dtype="datetime64[us]")
    return np.where(np.isnat(stamps), np.nan, stamps.astype(np.int64).astype(np.float64))


def _text_of_us(us: Floats) -> list[str | None]:
    """UTC instants in epoch microseconds (NaN for none) as 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    missing = np.isnan(us)
    stamps = np.where(missing, 0, us).astype(np.int64).astype("datetime64[us]")
    texts = np.strings.replace(np.datetime_as_string(stamps, unit="us"), "T", " ").tolist()
    return [None if none else text for none, text in zip(missing.tolist(), texts, strict=True)]


def _after(position: QueuePosition) -> ColumnElement[bool]:
    """Rows after position in queue order (stop_trade desc, due_at, priority, age, id)."""
    t = s.tickets.c
    # only non-stop-trade rows come after a stop-trade position (SQLAlchemy refuses `<` on a
    # Python bool, and booleans have no order on every backend)
    later_kind = t.stop_trade.is_(false()) if position.stop_trade else false()
    keys = [
        (t.due_at, position.due_at),
        (t.priority, int(position.priority)),
        (t.created_at, position.created_at),
        (t.id, position.id),
    ]
    later: ColumnElement[bool] = keys[-1][0] > keys[-1][1]
    for column, value in reversed(keys[:-1]):
        later = or_(column > value, and_(column == value, later))
    return or_(later_kind, and_(t.stop_trade == position.stop_trade, later))


def _catalogue(row: Sequence[Any]) -> tuple[Category | None, Store | None]:
    """The category and store of a row of `_CATALOGUE_COLUMNS` (None where not found)."""
    code, name, ticket_type, impact, urgency, stop_trade, group = row[:7]
    found = None
    if code is not None:
        kind, levels = TicketType(ticket_type), (Level(impact), Level(urgency))
        found = Category(code, name, kind, *levels, stop_trade=bool(stop_trade), group=group)
    code, name, region, timezone, tier = row[7:]
    return found, None if code is None else Store(code, name, region, timezone, Tier(tier))


def _store(row: Row[Any]) -> Store:
    return Store(row.code, row.name, row.region, row.timezone, Tier(row.tier))


def _category(row: Row[Any]) -> Category:
    return Category(
        code=row.code,
        name=row.name,
        ticket_type=TicketType(row.ticket_type),
        impact=Level(row.impact),
        urgency=Level(row.urgency),
        stop_trade=row.stop_trade,
        group=row.group_code,
    )


def _user(row: Row[Any]) -> User:
    return User(row.login, row.name, Role(row.role), row.store_code, row.active)
