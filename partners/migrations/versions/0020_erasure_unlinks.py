"""erasure unlinks

An erased customer's impressions stay (both sides' reports count them) but lose their customer, so
`impressions.customer_id` becomes nullable. Outbox events record the version of their payload's
shape, so that `consent.withdrawn` and `erasure.requested` can change shape (version 2) while
events written before keep rendering as version 1.

Revision ID: 0020
Revises: 0013
Create Date: 2026-12-02 05:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0020'
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('impressions', schema=None) as batch_op:
        batch_op.alter_column(
            'customer_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True
        )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload_version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_column('payload_version')
    # Impressions of erased customers have no customer any more: they cannot be kept under NOT NULL.
    op.execute("DELETE FROM impressions WHERE customer_id IS NULL")
    with op.batch_alter_table('impressions', schema=None) as batch_op:
        batch_op.alter_column(
            'customer_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False
        )
