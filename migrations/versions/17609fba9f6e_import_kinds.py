"""import kinds: a batch's kind (customers / contacts / interactions); import items point at any record

Revision ID: 17609fba9f6e
Revises: ff222b9695d4
Create Date: 2026-11-30 05:52:12.356969

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '17609fba9f6e'
down_revision = 'ff222b9695d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_import_batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='customers', nullable=False))

    with op.batch_alter_table('crm_import_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entity', sa.String(length=20), server_default='customer', nullable=False))
        batch_op.add_column(sa.Column('entity_id', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('crm_import_item', schema=None) as batch_op:
        batch_op.drop_column('entity_id')
        batch_op.drop_column('entity')

    with op.batch_alter_table('crm_import_batch', schema=None) as batch_op:
        batch_op.drop_column('kind')
