"""idempotency claims renewed while their request runs

Revision ID: 0018
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import partners.db

revision: str = "0018"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("renewed_at", partners.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("renewed_at")
