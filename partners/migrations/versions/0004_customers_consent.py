"""customers, purchases, interest profiles, consent ledger, outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:06:43.353552
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import partners.db

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _customers()
    _consent()
    _purchases_and_profiles()


def _customers() -> None:
    op.create_table('customers',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('email_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('email_encrypted', sa.Text(), nullable=True),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'external_id', name='uq_customers_external_id')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_email_hash', ['tenant_id', 'email_hash'], unique=False)
    op.create_table('customer_suppressions',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('value_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'kind', 'value_hash')
    )
    op.create_table('customer_disclosures',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('partner_tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('first_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', 'partner_tenant_id')
    )
    op.create_table('outbox_events',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', partners.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )


def _consent() -> None:
    op.create_table('consent_notices',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('partners', sa.JSON(), nullable=False),
    sa.Column('published_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'key', 'language', 'version', name='uq_consent_notices_version')
    )
    op.create_table('consent_events',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('partner', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('notice_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('confirms', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('occurred_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('origin_ip', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
    sa.Column('origin_user_agent', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('origin_page', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'notice_id'], ['consent_notices.tenant_id', 'consent_notices.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'customer_id', 'seq', 'purpose', name='uq_consent_events_seq'),
    sa.UniqueConstraint('tenant_id', 'event_id', 'purpose', name='uq_consent_events_event_id')
    )
    op.create_table('consent_states',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('partner', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('notice_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('decided_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', 'purpose', 'partner')
    )
    with op.batch_alter_table('consent_states', schema=None) as batch_op:
        batch_op.create_index('ix_consent_states_scope', ['tenant_id', 'purpose', 'partner', 'status'], unique=False)


def _purchases_and_profiles() -> None:
    op.create_table('purchases',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('ordered_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'order_id', name='uq_purchases_order_id')
    )
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.create_index('ix_purchases_customer', ['tenant_id', 'customer_id', 'ordered_at'], unique=False)
    op.create_table('purchase_lines',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('purchase_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('category_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'purchase_id'], ['purchases.tenant_id', 'purchases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'purchase_id', 'line_no')
    )
    op.create_table('customer_profiles',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('decay_ref', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    sa.Column('first_order_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_order_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('spend', sa.JSON(), nullable=False),
    sa.Column('format_weights', sa.JSON(), nullable=False),
    sa.Column('preferred_format', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('updated_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id')
    )
    op.create_table('customer_interests',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('category_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('affinity', sa.Float(), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    sa.Column('last_order_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('prices', sa.JSON(), nullable=False),
    sa.Column('price_currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
    sa.Column('price_low_minor', sa.BigInteger(), nullable=True),
    sa.Column('price_high_minor', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', 'category_id')
    )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_table('purchase_lines')
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.drop_index('ix_purchases_customer')

    op.drop_table('purchases')
    op.drop_table('customer_profiles')
    op.drop_table('customer_interests')
    op.drop_table('customer_disclosures')
    with op.batch_alter_table('consent_states', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_states_scope')

    op.drop_table('consent_states')
    op.drop_table('consent_events')
    op.drop_table('outbox_events')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_email_hash')

    op.drop_table('customers')
    op.drop_table('customer_suppressions')
    op.drop_table('consent_notices')
    # ### end Alembic commands ###
