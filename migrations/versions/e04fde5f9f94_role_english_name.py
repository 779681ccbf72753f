"""A role's English name (crm_role_policy.name_en, from roles.yaml `name_en`): seeded roles
read 销售部普通员工 on Chinese screens and Sales staff on English ones.

Revision ID: e04fde5f9f94
Revises: a7c3e9d21f04
Create Date: 2026-11-30 08:08:01.777543

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e04fde5f9f94'
down_revision = 'a7c3e9d21f04'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_role_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_en', sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table('crm_role_policy', schema=None) as batch_op:
        batch_op.drop_column('name_en')
