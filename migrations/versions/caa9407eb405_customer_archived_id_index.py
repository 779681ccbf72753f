"""customer archived id index: (archived, id) instead of (archived), so that PostgreSQL reads
the ids of a deep list page (OFFSET 49,950) by an index-only scan (bench/bench_list.py)

Revision ID: caa9407eb405
Revises: e4be346d65f1
Create Date: 2026-11-29 22:52:59.375880

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'caa9407eb405'
down_revision = 'e4be346d65f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_customer_archived'))
        batch_op.create_index('ix_crm_customer_archived_id', ['archived', 'id'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first():
        # an analysed database: without statistics of the new index SQLite's planner would read
        # customers through it in id order instead of starting from a search's few token rows
        op.execute("ANALYZE crm_customer")


def downgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_customer_archived_id')
        batch_op.create_index(batch_op.f('ix_crm_customer_archived'), ['archived'], unique=False)
