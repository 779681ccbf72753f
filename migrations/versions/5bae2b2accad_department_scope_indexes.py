"""department scope indexes: (department_id, archived, id) instead of (department_id), and
(owner_id, department_id), so that a supervisor's list reads the department's customers in id
order from an index alone and its members' customers filed elsewhere by a few index ranges
(app/security/scopes.py department_clause, bench/bench_list.py)

Revision ID: 5bae2b2accad
Revises: caa9407eb405
Create Date: 2026-11-30 01:41:36.641007

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5bae2b2accad'
down_revision = 'caa9407eb405'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_customer_department_id'))
        batch_op.create_index('ix_crm_customer_department_archived_id', ['department_id', 'archived', 'id'], unique=False)
        batch_op.create_index('ix_crm_customer_owner_department', ['owner_id', 'department_id'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first():
        op.execute("ANALYZE crm_customer")  # an analysed database: statistics of the new indexes too


def downgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_customer_owner_department')
        batch_op.drop_index('ix_crm_customer_department_archived_id')
        batch_op.create_index(batch_op.f('ix_crm_customer_department_id'), ['department_id'], unique=False)
