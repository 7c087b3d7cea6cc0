"""The exchange: partners, their keys, links between tickets, the signed log of each link,
and the deadlines a ticket handed to this node was promised by

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("tickets", sa.Column("promised_respond_by", sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("promised_resolve_by", sa.DateTime(timezone=True)))
    op.create_table(
        "partners",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("plaintext", sa.Boolean(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("down_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("last_heard_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alert_ticket_id", ID, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=False, server_default=""),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["login"], ["users.login"], name=op.f("fk_partners_login_users")),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_partners")),
    )
    op.create_table(
        "node_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_node_keys")),
    )
    op.create_index(op.f("ix_node_keys_node_id"), "node_keys", ["node_id"])
    op.create_table(
        "links",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("ticket_id", ID, nullable=True),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("remote_ticket", sa.String(64), nullable=False, server_default=""),
        sa.Column("out_seq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("out_digest", sa.LargeBinary(), nullable=False, server_default=""),
        sa.Column("in_seq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("in_digest", sa.LargeBinary(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_by", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner"], ["partners.node_id"], name=op.f("fk_links_partner_partners")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_links_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
    )
    op.create_index(op.f("ix_links_ticket_id"), "links", ["ticket_id"])
    op.create_table(
        "link_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("link", sa.String(80), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("outbound", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("refused", sa.Text(), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["link"], ["links.id"], name=op.f("fk_link_events_link_links")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_events")),
        sa.UniqueConstraint(
            "link", "outbound", "seq", name=op.f("uq_link_events_link_outbound_seq")
        ),
    )
    op.create_index(
        op.f("ix_link_events_partner_pending_id"), "link_events", ["partner", "pending", "id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_link_events_partner_pending_id"), table_name="link_events")
    op.drop_table("link_events")
    op.drop_index(op.f("ix_links_ticket_id"), table_name="links")
    op.drop_table("links")
    op.drop_index(op.f("ix_node_keys_node_id"), table_name="node_keys")
    op.drop_table("node_keys")
    op.drop_table("partners")
    op.drop_column("tickets", "promised_resolve_by")
    op.drop_column("tickets", "promised_respond_by")
