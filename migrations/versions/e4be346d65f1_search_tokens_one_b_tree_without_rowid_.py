"""search tokens: one B-tree (WITHOUT ROWID on SQLite), no customer_id index or foreign key;
no index on crm_customer.owner_id alone (ix_crm_customer_owner_last_contact starts with it)

The token table is rebuilt (SQLite cannot change a table to WITHOUT ROWID in place) and its rows
copied in primary-key order.

Revision ID: e4be346d65f1
Revises: af46cad52618
Create Date: 2026-11-29 22:42:48.239382

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4be346d65f1'
down_revision = 'af46cad52618'
branch_labels = None
depends_on = None


def _rebuild(old_shape: bool):
    columns = [sa.Column('token', sa.String(length=3), nullable=False),
               sa.Column('customer_id', sa.Integer(), nullable=False, autoincrement=False)]
    if old_shape:
        op.execute("DELETE FROM crm_customer_token WHERE customer_id NOT IN (SELECT id FROM crm_customer)")
        columns.append(sa.ForeignKeyConstraint(['customer_id'], ['crm_customer.id'], ondelete='CASCADE'))
    op.create_table('crm_customer_token_new', *columns, sa.PrimaryKeyConstraint('token', 'customer_id'),
                    sqlite_with_rowid=old_shape)
    op.execute("INSERT INTO crm_customer_token_new (token, customer_id) "
               "SELECT token, customer_id FROM crm_customer_token ORDER BY token, customer_id")
    op.drop_table('crm_customer_token')
    op.rename_table('crm_customer_token_new', 'crm_customer_token')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE crm_customer_token RENAME CONSTRAINT crm_customer_token_new_pkey TO crm_customer_token_pkey")
        if old_shape:
            op.execute("ALTER TABLE crm_customer_token RENAME CONSTRAINT crm_customer_token_new_customer_id_fkey "
                       "TO crm_customer_token_customer_id_fkey")
    if old_shape:
        op.create_index('ix_crm_customer_token_customer_id', 'crm_customer_token', ['customer_id'], unique=False)


def upgrade():
    _rebuild(old_shape=False)
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_customer_owner_id')


def downgrade():
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.create_index('ix_crm_customer_owner_id', ['owner_id'], unique=False)
    _rebuild(old_shape=True)
