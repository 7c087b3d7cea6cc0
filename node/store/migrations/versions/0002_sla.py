"""SLA clocks on tickets, support lines, finished clocks and notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from node.store.schema import FAR_FUTURE_SQL

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.add_column(sa.Column("line", sa.String(64), nullable=False, server_default="L1"))
        batch_op.add_column(
            sa.Column("sla_policy", sa.String(64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("sla_state", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column(
                "due_at", sa.DateTime(timezone=True), nullable=False, server_default=FAR_FUTURE_SQL
            )
        )
        batch_op.add_column(sa.Column("alarm_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_tickets_queue")
        batch_op.create_index(
            "ix_tickets_queue", ["stop_trade", "due_at", "priority", "created_at", "id"]
        )
        batch_op.create_index(batch_op.f("ix_tickets_alarm_at"), ["alarm_at"])
    op.create_table(
        "sla_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("timer", sa.String(32), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("target_minutes", sa.Float(), nullable=False),
        sa.Column("elapsed_minutes", sa.Float(), nullable=False),
        sa.Column("paused_minutes", sa.Float(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_sla_results_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_results")),
    )
    op.create_index(op.f("ix_sla_results_ticket_id"), "sla_results", ["ticket_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_notifications_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_ticket_id"), "notifications", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notifications_ticket_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_sla_results_ticket_id"), table_name="sla_results")
    op.drop_table("sla_results")
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_alarm_at"))
        batch_op.drop_index("ix_tickets_queue")
        batch_op.create_index("ix_tickets_queue", ["stop_trade", "priority", "created_at", "id"])
        for column in ("alarm_at", "due_at", "sla_state", "sla_policy", "line"):
            batch_op.drop_column(column)
