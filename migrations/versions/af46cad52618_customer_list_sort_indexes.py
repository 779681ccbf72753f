"""customer list sort indexes: (last_contact_at, id) and (owner_id, archived, last_contact_at, id)
for the list's ORDER BY last_contact_at DESC, id DESC (index-only operations: no table copy on SQLite)

Revision ID: af46cad52618
Revises: 4dc471a31e0c
Create Date: 2026-11-29 20:29:33.344045

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'af46cad52618'
down_revision = '4dc471a31e0c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_customer_last_contact_at'))
        batch_op.create_index('ix_crm_customer_last_contact_order', ['last_contact_at', 'id'], unique=False)
        batch_op.create_index('ix_crm_customer_owner_last_contact', ['owner_id', 'archived', 'last_contact_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_customer_owner_last_contact')
        batch_op.drop_index('ix_crm_customer_last_contact_order')
        batch_op.create_index(batch_op.f('ix_crm_customer_last_contact_at'), ['last_contact_at'], unique=False)
