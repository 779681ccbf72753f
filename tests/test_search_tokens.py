"""One-box search follows a customer's name through every write that changes or removes it:
an import (bulk insert), a rename, undoing the import, a merge. The name's search tokens have
no index on the customer and no foreign key (app/models/search.py): they are removed by
recomputing them from the stored name, so these tests also check none is left behind."""
from __future__ import annotations

import random

from sqlalchemy import select

from conftest import as_system
from test_import import csv_file, run_import


def _piece() -> str:
    """Four rare Chinese characters no other test's names contain."""
    return "".join(chr(random.randint(0x9A00, 0x9F00)) for _ in range(4))


def _found(q: str) -> set[int]:
    from app.extensions import db
    from app.services.search import text_match_ids

    return set(db.session.scalars(text_match_ids(q)))


def _tokens(cid: int) -> set[str]:
    from app.extensions import db
    from app.models import CustomerToken

    return set(db.session.scalars(select(CustomerToken.token).where(CustomerToken.customer_id == cid)))


def test_search_follows_rename_and_undo_of_an_import(app, tmp_path):
    from app.extensions import db
    from app.models import Customer, ImportBatch
    from app.services.actor import system_user
    from app.services.importer import undo_batch
    from app.services.search_keys import name_tokens

    old, new, other = _piece(), _piece(), _piece()
    report = run_import(app, csv_file(tmp_path / "t.csv", [["客户名称"], [f"{old}科技有限公司"], [f"{other}贸易有限公司"]]))
    assert report["status"] == "done", report["errors"]
    with as_system(app):
        a = db.session.scalar(select(Customer).where(Customer.name == f"{old}科技有限公司"))
        b = db.session.scalar(select(Customer.id).where(Customer.name == f"{other}贸易有限公司"))
        assert _found(old[1:3]) == {a.id} and _found(other) == {b}
        assert _tokens(a.id) == name_tokens(a.name, a.name_initials)
        a.name = f"{new}科技有限公司"
        db.session.commit()
        assert _found(old[:2]) == set() and _found(old) == set()  # the old name no longer finds it
        assert _found(new[2:]) == {a.id} and _found(f"{new}科技") == {a.id}
        assert _tokens(a.id) == name_tokens(a.name, a.name_initials)  # the old name's tokens are gone

        undo_batch(db.session.get(ImportBatch, report["batch"]), system_user())
        assert _found(new) == set() and _found(other) == set()
        assert _tokens(a.id) == set() and _tokens(b) == set()


def test_merged_away_customer_leaves_no_search_hit(app):
    from app.extensions import db
    from app.models import Customer
    from app.services import merge
    from app.services.numbering import next_number

    first, second = _piece(), _piece()
    with as_system(app):
        survivor = Customer(customer_no=next_number("customer"), name=f"{first}实业有限公司")
        merged = Customer(customer_no=next_number("customer"), name=f"{second}实业股份有限公司")
        db.session.add_all([survivor, merged])
        db.session.commit()
        survivor_id, merged_id = survivor.id, merged.id
        assert _found(second) == {merged_id}
    with as_system(app):
        merge.merge_customers(survivor_id, merged_id)
    with app.app_context():
        assert _found(second) == set() and _tokens(merged_id) == set()
        assert _found(first) == {survivor_id}
