"""retention: defection signals on profiles, shop baselines, surveys, holdouts, offer targeting by risk and value band

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
        sa.Column("ltv_currency", _ID(length=3), nullable=True),
        sa.Column("ltv_median_minor", sa.BigInteger(), nullable=True),
        sa.Column("ltv_top_minor", sa.BigInteger(), nullable=True),
        sa.Column("computed_at", partners.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    # Offers may target churn-risk levels and lifetime-value bands (empty: any).
    for table in ("offer_versions", "live_offers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in ("risk_levels", "lifetime_value_bands"):
                batch_op.add_column(sa.Column(column, sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    # Surveys, their versions, per-customer links, responses and answers.
    op.create_table('surveys',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('thank_you_offer', sa.Boolean(), nullable=False),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    op.create_table('customer_defections',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('response_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('answered_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id')
    )
    op.create_table('survey_versions',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('survey_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('intro', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'survey_id'], ['surveys.tenant_id', 'surveys.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'survey_id', 'version')
    )
    op.create_table('survey_links',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('survey_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('expires_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', partners.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'survey_id', 'version'], ['survey_versions.tenant_id', 'survey_versions.survey_id', 'survey_versions.version'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    op.create_table('survey_responses',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('link_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('survey_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('answered_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'link_id'], ['survey_links.tenant_id', 'survey_links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'link_id', name='uq_survey_responses_link')
    )
    op.create_index('ix_survey_responses_version', 'survey_responses', ['tenant_id', 'survey_id', 'version'], unique=False)
    op.create_table('survey_answers',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('response_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('question_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('choice_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'response_id'], ['survey_responses.tenant_id', 'survey_responses.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'response_id', 'question_id', 'position')
    )

    # Holdouts and the groups customers were drawn into.
    op.create_table('holdouts',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('partnership_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('offer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('share_bps', sa.Integer(), nullable=False),
    sa.Column('started_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', partners.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'partnership_id'], ['partnerships.tenant_id', 'partnerships.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    op.create_index('uq_holdouts_running', 'holdouts', ['tenant_id', 'partnership_id', 'offer_id'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
    op.create_table('holdout_assignments',
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('holdout_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('held_out', sa.Boolean(), nullable=False),
    sa.Column('first_eligible_at', partners.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'holdout_id'], ['holdouts.tenant_id', 'holdouts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'holdout_id', 'customer_id')
    )
    op.create_index('ix_holdout_assignments_time', 'holdout_assignments', ['tenant_id', 'holdout_id', 'first_eligible_at'], unique=False)


def downgrade() -> None:
    op.drop_index("ix_holdout_assignments_time", table_name="holdout_assignments")
    op.drop_table("holdout_assignments")
    op.drop_index("uq_holdouts_running", table_name="holdouts")
    op.drop_table("holdouts")
    op.drop_table("survey_answers")
    op.drop_index("ix_survey_responses_version", table_name="survey_responses")
    op.drop_table("survey_responses")
    op.drop_table("survey_links")
    op.drop_table("survey_versions")
    op.drop_table("customer_defections")
    op.drop_table("surveys")
    for table in ("live_offers", "offer_versions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("lifetime_value_bands")
            batch_op.drop_column("risk_levels")
    op.drop_table("retention_baselines")
    with op.batch_alter_table("customer_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_profiles_risk")
        batch_op.drop_column("risk_assessed_at")
        batch_op.drop_column("risk_level")
        batch_op.drop_column("expected_interval_days")
