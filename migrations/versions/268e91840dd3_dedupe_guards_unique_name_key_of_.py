"""dedupe guards: unique name key of organisations and unique credit code

Revision ID: 268e91840dd3
Revises: e11af2637893
Create Date: 2026-11-29 16:10:32.713563

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '268e91840dd3'
down_revision = 'e11af2637893'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unique_name_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('unique_credit_code', sa.String(length=32), nullable=True))
    # Existing rows get a guard only as the first (lowest id) of their name / credit code, so an
    # older database holding duplicates still upgrades; those duplicates remain for merging.
    op.execute("""
        UPDATE crm_customer SET unique_name_key = name_key
        WHERE name_key IS NOT NULL
          AND id = (SELECT MIN(c2.id) FROM crm_customer c2 WHERE c2.name_key = crm_customer.name_key)
          AND (kind_id IS NULL OR kind_id NOT IN (
                SELECT i.id FROM crm_dictionary_item i WHERE i.code = 'person'))""")
    op.execute("""
        UPDATE crm_customer SET unique_credit_code = credit_code
        WHERE credit_code IS NOT NULL
          AND id = (SELECT MIN(c2.id) FROM crm_customer c2 WHERE c2.credit_code = crm_customer.credit_code)""")
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_customer_unique_name_key'), ['unique_name_key'], unique=True)
        batch_op.create_index(batch_op.f('ix_crm_customer_unique_credit_code'), ['unique_credit_code'], unique=True)


def downgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_customer_unique_credit_code'))
        batch_op.drop_index(batch_op.f('ix_crm_customer_unique_name_key'))
        batch_op.drop_column('unique_credit_code')
        batch_op.drop_column('unique_name_key')
