"""The import page's menu is 导入数据 / Import Data (it imports customers, contacts, interactions
and tickets): the view menu row is renamed, so every role that had the old menu entry (admin-
edited and UI-made roles too) keeps it.

Revision ID: a7c3e9d21f04
Revises: 17609fba9f6e
Create Date: 2026-11-30 06:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a7c3e9d21f04'
down_revision = '17609fba9f6e'
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    conn = op.get_bind()
    if not sa.inspect(conn).has_table("ab_view_menu"):
        return
    ids = {name: conn.execute(sa.text("SELECT id FROM ab_view_menu WHERE name = :n"), {"n": name}).scalar()
           for name in (old, new)}
    if ids[old] is None:
        return
    if ids[new] is None:
        conn.execute(sa.text("UPDATE ab_view_menu SET name = :new WHERE id = :id"), {"new": new, "id": ids[old]})
        return
    # both exist (the app started before this upgrade): the old entry's grants move to the new one
    for perm_id, old_pv in conn.execute(sa.text("SELECT permission_id, id FROM ab_permission_view WHERE view_menu_id = :v"),
                                        {"v": ids[old]}).all():
        new_pv = conn.execute(sa.text("SELECT id FROM ab_permission_view WHERE view_menu_id = :v AND permission_id = :p"),
                              {"v": ids[new], "p": perm_id}).scalar()
        if new_pv is not None:
            conn.execute(sa.text(
                "UPDATE ab_permission_view_role SET permission_view_id = :new WHERE permission_view_id = :old "
                "AND role_id NOT IN (SELECT role_id FROM ab_permission_view_role WHERE permission_view_id = :new)"),
                {"new": new_pv, "old": old_pv})
        conn.execute(sa.text("DELETE FROM ab_permission_view_role WHERE permission_view_id = :pv"), {"pv": old_pv})
        conn.execute(sa.text("DELETE FROM ab_permission_view WHERE id = :pv"), {"pv": old_pv})
    conn.execute(sa.text("DELETE FROM ab_view_menu WHERE id = :id"), {"id": ids[old]})


def upgrade():
    _rename("Import Customers", "Import Data")


def downgrade():
    _rename("Import Data", "Import Customers")
