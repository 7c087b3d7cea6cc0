"""Tables of a node. Natural keys (login, store code, category code) are the foreign keys,
so rows read back into domain values without joins."""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids; on SQLite an INTEGER PRIMARY KEY, the rowid itself."""


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: timestamptz on PostgreSQL, naive UTC on SQLite; always aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


FAR_FUTURE_SQL = "9999-12-31 00:00:00"

settings = Table(
    "node_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("region", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
)

categories = Table(
    "categories",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("ticket_type", String(32), nullable=False),
    Column("impact", Integer, nullable=False),
    Column("urgency", Integer, nullable=False),
    Column("stop_trade", Boolean, nullable=False),
    Column("group_code", String(64), ForeignKey("groups.code"), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("login", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("store_code", String(64), ForeignKey("stores.code"), nullable=True),
    Column("active", Boolean, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("login", String(64), ForeignKey("users.login"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("ticket_type", String(32), nullable=False),
    Column("category_code", String(64), ForeignKey("categories.code"), nullable=False),
    Column("requester", String(64), ForeignKey("users.login"), nullable=False),
    Column("store_code", String(64), ForeignKey("stores.code"), nullable=False),
    Column("impact", Integer, nullable=False),
    Column("urgency", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("stop_trade", Boolean, nullable=False),
    Column("status", String(64), nullable=False),
    Column("assignee", String(64), ForeignKey("users.login"), nullable=True),
    Column("group_code", String(64), ForeignKey("groups.code"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("request_sha256", String(64), nullable=True),
    Column("line", String(64), nullable=False, server_default="L1"),
    Column("sla_policy", String(64), nullable=False, server_default=""),
    Column("sla_state", Text, nullable=False, server_default=""),
    Column("due_at", UtcDateTime, nullable=False, server_default=FAR_FUTURE_SQL),
    Column("alarm_at", UtcDateTime, nullable=True),
    Column("promised_respond_by", UtcDateTime, nullable=True),
    Column("promised_resolve_by", UtcDateTime, nullable=True),
    UniqueConstraint("requester", "request_id"),
    Index(None, "status"),
    Index(None, "store_code"),
    Index(None, "assignee"),
    Index(None, "alarm_at"),
    Index("ix_tickets_queue", "stop_trade", "due_at", "priority", "created_at", "id"),
)

co_assignees = Table(
    "ticket_co_assignees",
    metadata,
    Column("ticket_id", Id, ForeignKey("tickets.id"), primary_key=True),
    Column("login", String(64), ForeignKey("users.login"), primary_key=True),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("author", String(64), ForeignKey("users.login"), nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

history = Table(
    "ticket_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("field", String(64), nullable=False),
    Column("before", Text, nullable=False),
    Column("after", Text, nullable=False),
    Column("internal", Boolean, nullable=False),
)

sla_results = Table(
    "sla_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("timer", String(32), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("policy", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("target_minutes", Float, nullable=False),
    Column("elapsed_minutes", Float, nullable=False),
    Column("paused_minutes", Float, nullable=False),
    Column("breached", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=False),
)
"""Finished SLA clocks, durations in business minutes, for reports."""

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("recipient", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
)
"""Messages to people (SLA warnings and breaches), kept until an adapter delivers them."""

partners = Table(
    "partners",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("endpoint", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("login", String(64), ForeignKey("users.login"), nullable=False),
    Column("cert_pem", Text, nullable=False),
    Column("plaintext", Boolean, nullable=False),
    Column("terms", Text, nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("retry_at", UtcDateTime, nullable=True),
    Column("down_since", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("last_heard_at", UtcDateTime, nullable=True),
    Column("alert_ticket_id", Id, nullable=True),
    Column("lease_owner", String(64), nullable=False, server_default=""),
    Column("lease_until", UtcDateTime, nullable=True),
)
"""Nodes this one exchanges tickets with: their role (our contractor or our client), the
agreed terms (categories, times, status mapping; JSON), and the delivery state kept
between retries (backoff, outage, the process that delivers to them now)."""

node_keys = Table(
    "node_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("node_id", String(64), nullable=False, index=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
)
"""Every Ed25519 public key of this node and its partners, old ones included."""

links = Table(
    "links",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("partner", String(64), ForeignKey("partners.node_id"), nullable=False),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=True, index=True),
    Column("side", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("remote_ticket", String(64), nullable=False, server_default=""),
    Column("out_seq", Integer, nullable=False, server_default="0"),
    Column("out_digest", LargeBinary, nullable=False, server_default=""),
    Column("in_seq", Integer, nullable=False, server_default="0"),
    Column("in_digest", LargeBinary, nullable=False, server_default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("respond_by", UtcDateTime, nullable=True),
    Column("resolve_by", UtcDateTime, nullable=True),
)
"""Hand-offs: a ticket of ours linked to one on a partner (side: 'origin' when we handed it,
'partner' when it was handed to us), with each direction's chain head and the deadlines
agreed on it. One link per partner with no ticket carries the partners' own matters (key
announcements)."""

link_events = Table(
    "link_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("link", String(80), ForeignKey("links.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("outbound", Boolean, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("receipt", LargeBinary, nullable=True),
    Column("received_at", UtcDateTime, nullable=True),
    Column("pending", Boolean, nullable=False),
    Column("refused", Text, nullable=False, server_default=""),
    UniqueConstraint("link", "outbound", "seq"),
    Index(None, "partner", "pending", "id"),
)
"""The signed log of every link, both directions, each event as sent and its signed
receipt. Outbound events waiting for their receipt are the outbox (`pending`)."""
