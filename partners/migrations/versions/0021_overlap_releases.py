"""overlap releases per pair of retailers (differential privacy budget) replace daily snapshots

Revision ID: 0021
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import partners.db

revision: str = "0021"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overlap_releases",
        sa.Column("first_tenant_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("second_tenant_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=False),
        sa.Column("first_size", sa.Integer(), nullable=False),
        sa.Column("second_size", sa.Integer(), nullable=False),
        sa.Column("released_at", partners.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["first_tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["second_tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("first_tenant_id", "second_tenant_id", "number"),
    )
    # The daily snapshots held answers drawn under the old scheme (no budget): not carried over, so
    # every pair starts its budget with a fresh first release.
    op.drop_table("overlap_snapshots")


def downgrade() -> None:
    op.create_table(
        "overlap_snapshots",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("partnership_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=True),
        sa.Column("share_of_mine", sa.Float(), nullable=True),
        sa.Column("share_of_theirs", sa.Float(), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("computed_at", partners.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "partnership_id", "day"),
    )
    op.drop_table("overlap_releases")
