"""ticket satisfaction, agent open ticket counter, reminders on tickets and feedback

Revision ID: 6b4a2bd5db5d
Revises: cbb9d4b28b83
Create Date: 2026-11-29 19:19:44.839890

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6b4a2bd5db5d'
down_revision = "cbb9d4b28b83"
branch_labels = None
depends_on = None



def upgrade():
    with op.batch_alter_table('crm_agent_profile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_tickets', sa.Integer(), server_default='0', nullable=False))
    # the counter starts from the real number of open tickets each agent handles
    op.execute(sa.text(
        "UPDATE crm_agent_profile SET open_tickets = (SELECT count(*) FROM crm_ticket t "
        "WHERE t.handler_id = crm_agent_profile.user_id AND t.status IN ('new', 'assigned', 'in_progress', "
        "'pending_review'))"))

    with op.batch_alter_table('crm_reminder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ticket_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('feedback_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_crm_reminder_feedback_id'), ['feedback_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_reminder_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_foreign_key('fk_crm_reminder_ticket_id', 'crm_ticket', ['ticket_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key('fk_crm_reminder_feedback_id', 'crm_feedback', ['feedback_id'], ['id'],
                                    ondelete='CASCADE')

    with op.batch_alter_table('crm_ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('satisfaction_score', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('satisfaction_comment', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('crm_ticket', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('satisfaction_comment')
        batch_op.drop_column('satisfaction_score')

    with op.batch_alter_table('crm_reminder', schema=None) as batch_op:
        batch_op.drop_constraint('fk_crm_reminder_feedback_id', type_='foreignkey')
        batch_op.drop_constraint('fk_crm_reminder_ticket_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_crm_reminder_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_crm_reminder_feedback_id'))
        batch_op.drop_column('feedback_id')
        batch_op.drop_column('ticket_id')

    with op.batch_alter_table('crm_agent_profile', schema=None) as batch_op:
        batch_op.drop_column('open_tickets')
