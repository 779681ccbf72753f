"""initials trigram tokens: crm_customer_token.token widened to 4 characters and every
customer's three-letter initials pieces (^htj) added, so that an initials search of three or
more letters reads the customers of its rarest three-letter piece instead of a two-letter one
(app/services/search_keys.py name_tokens; at 1,000,000 customers ^ht is carried by 74,000,
^htj by 21,000)

PostgreSQL widens the column in place (no rewrite) and inserts the new tokens; SQLite, which
cannot alter a column, rebuilds the table with the old and new tokens in primary-key order
(one sorted pass, as e4be346d65f1). At 1,000,000 customers this takes minutes.

Revision ID: ff222b9695d4
Revises: 5bae2b2accad
Create Date: 2026-11-30 04:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ff222b9695d4'
down_revision = '5bae2b2accad'
branch_labels = None
depends_on = None

# every three-letter piece of each customer's initials (name_initials: at most 200 letters)
SQLITE_POSITIONS = "WITH RECURSIVE pos(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM pos WHERE i < 198) "
SQLITE_TRIGRAMS = ("SELECT '^' || substr(c.name_initials, pos.i, 3), c.id FROM crm_customer c "
                   "JOIN pos ON pos.i <= length(c.name_initials) - 2")
POSTGRESQL_TRIGRAMS = ("SELECT DISTINCT '^' || substr(c.name_initials, i, 3), c.id FROM crm_customer c, "
                       "generate_series(1, length(c.name_initials) - 2) AS i")


def _sqlite_rebuild(width: int, rows: str, with_: str = "") -> None:
    op.create_table('crm_customer_token_new',
                    sa.Column('token', sa.String(length=width), nullable=False),
                    sa.Column('customer_id', sa.Integer(), nullable=False, autoincrement=False),
                    sa.PrimaryKeyConstraint('token', 'customer_id'), sqlite_with_rowid=False)
    op.execute(f"{with_}INSERT INTO crm_customer_token_new (token, customer_id) {rows} ORDER BY 1, 2")
    op.drop_table('crm_customer_token')
    op.rename_table('crm_customer_token_new', 'crm_customer_token')


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('crm_customer_token', 'token', existing_type=sa.String(length=3),
                        type_=sa.String(length=4), existing_nullable=False)
        op.execute(f"INSERT INTO crm_customer_token (token, customer_id) {POSTGRESQL_TRIGRAMS} ON CONFLICT DO NOTHING")
    else:
        _sqlite_rebuild(4, f"SELECT token, customer_id FROM crm_customer_token UNION {SQLITE_TRIGRAMS}", SQLITE_POSITIONS)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DELETE FROM crm_customer_token WHERE length(token) = 4")
        op.alter_column('crm_customer_token', 'token', existing_type=sa.String(length=4),
                        type_=sa.String(length=3), existing_nullable=False)
    else:
        _sqlite_rebuild(3, "SELECT token, customer_id FROM crm_customer_token WHERE length(token) < 4")
