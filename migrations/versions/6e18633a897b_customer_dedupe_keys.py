"""customer dedupe keys: Customer.name_key, Contact.phone_key (indexed), credit codes normalised

The keys of existing rows are computed here with the same functions the app uses
(app/services/dedupe.py), in id-ordered batches so that a million rows never sit in memory.
The indexes are created after the backfill (faster than maintaining them row by row).

Revision ID: 6e18633a897b
Revises: 3cf8c247a594
Create Date: 2026-11-22 08:00:46.951067

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6e18633a897b'
down_revision = '3cf8c247a594'
branch_labels = None
depends_on = None

BATCH = 5000


def _backfill(table_name: str, columns: tuple[str, ...], compute) -> None:
    """For every row, set the columns compute(row) returns (only the rows that change)."""
    conn = op.get_bind()
    table = sa.table(table_name, sa.column("id", sa.Integer), *(sa.column(c, sa.String) for c in columns))
    last_id = 0
    while True:
        rows = conn.execute(sa.select(table).where(table.c.id > last_id).order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        changes = []
        for row in rows:
            new = compute(row)
            if any(getattr(row, k) != v for k, v in new.items()):
                changes.append({"row_id": row.id, **{f"new_{k}": v for k, v in new.items()}})
        if changes:
            targets = [k[len("new_"):] for k in changes[0] if k != "row_id"]
            stmt = (table.update().where(table.c.id == sa.bindparam("row_id"))
                    .values({k: sa.bindparam(f"new_{k}") for k in targets}))
            conn.execute(stmt, changes)
        last_id = rows[-1].id


def upgrade():
    from app.services.dedupe import normalise_credit_code, normalise_name, normalise_phone

    with op.batch_alter_table('crm_contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_key', sa.String(length=40), nullable=True))
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=200), nullable=True))

    _backfill("crm_customer", ("name", "name_key", "credit_code"),
              lambda r: {"name_key": normalise_name(r.name) or None,
                         "credit_code": normalise_credit_code(r.credit_code) or None})
    _backfill("crm_contact", ("phone", "phone_key"),
              lambda r: {"phone_key": normalise_phone(r.phone) or None})

    with op.batch_alter_table('crm_contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_contact_phone_key'), ['phone_key'], unique=False)
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_customer_name_key'), ['name_key'], unique=False)


def downgrade():
    # Credit codes stay normalised: the original spelling is not kept and is not needed.
    with op.batch_alter_table('crm_customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_customer_name_key'))
        batch_op.drop_column('name_key')

    with op.batch_alter_table('crm_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_contact_phone_key'))
        batch_op.drop_column('phone_key')
