"""attachments on interactions and tickets

crm_attachment.interaction_id / ticket_id: nullable, ON DELETE CASCADE; customer_id stays set.

Revision ID: cbb9d4b28b83
Revises: 458f62b8a2db
Create Date: 2026-11-29 19:20:33.889396

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cbb9d4b28b83'
down_revision = '458f62b8a2db'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_attachment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interaction_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ticket_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_crm_attachment_interaction_id'), ['interaction_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_attachment_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_foreign_key('fk_crm_attachment_interaction_id', 'crm_interaction', ['interaction_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key('fk_crm_attachment_ticket_id', 'crm_ticket', ['ticket_id'], ['id'], ondelete='CASCADE')


def downgrade():
    with op.batch_alter_table('crm_attachment', schema=None) as batch_op:
        batch_op.drop_constraint('fk_crm_attachment_ticket_id', type_='foreignkey')
        batch_op.drop_constraint('fk_crm_attachment_interaction_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_crm_attachment_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_crm_attachment_interaction_id'))
        batch_op.drop_column('ticket_id')
        batch_op.drop_column('interaction_id')
