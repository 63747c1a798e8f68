"""retention: defection signals on profiles, shop baselines

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-02 05:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import partners.db

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("customer_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected_interval_days", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("risk_level", _ID(length=20), nullable=True))
        batch_op.add_column(sa.Column("risk_assessed_at", partners.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_customer_profiles_risk", ["tenant_id", "risk_level", "customer_id"], unique=False)
    op.create_table(
        "retention_baselines",
        sa.Column("tenant_id", _ID(length=40), nullable=False),
        sa.Column("typical_interval_days", sa.Float(), nullable=False),
        sa.Column("repeat_customers", sa.Integer(), nullable=False),
        sa.Column("computed_at", partners.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("retention_baselines")
    with op.batch_alter_table("customer_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_profiles_risk")
        batch_op.drop_column("risk_assessed_at")
        batch_op.drop_column("risk_level")
        batch_op.drop_column("expected_interval_days")
