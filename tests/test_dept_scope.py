"""The supervisor's department scope ("of the department, or owned by one of its members")
as the supervisor's list shows it after every kind of write that can change it: single saves, an
owner moving department, a customer changing department, an import and its undo, a merge."""
from __future__ import annotations

import uuid

import pytest
from conftest import USER_PASSWORD, as_system, login
from test_import import csv_file, run_import
from test_scopes import listed_names


def _dept(key: str):
    from app.extensions import db
    from app.models import Department

    return db.session.query(Department).filter_by(key=key).one()


def _customer(app, name: str, owner: str | None, dept: str | None) -> int:
    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services.numbering import next_number

    with as_system(app):
        c = Customer(name=name, customer_no=next_number("customer"),
                     owner=appbuilder.sm.find_user(username=owner) if owner else None,
                     department=_dept(dept) if dept else None)
        db.session.add(c)
        db.session.commit()
        return c.id


def _move_user(app, username: str, dept: str) -> None:
    from app.extensions import appbuilder, db

    with app.app_context():
        appbuilder.sm.find_user(username=username).department = _dept(dept)
        db.session.commit()


def _set_department(app, customer_id: int, dept: str | None) -> None:
    from app.extensions import db
    from app.models import Customer

    with as_system(app):
        db.session.get(Customer, customer_id).department_id = _dept(dept).id if dept else None
        db.session.commit()


@pytest.fixture()
def team(app, make_user):
    """A sales supervisor and a sales staff member, and a service staff member (an outsider)."""
    return {"boss": make_user("sales_supervisor", "sales"), "member": make_user("sales_staff", "sales"),
            "outsider": make_user("sales_staff", "service"), "tag": uuid.uuid4().hex[:6]}


def test_supervisor_sees_department_by_either_rule_after_moves(app, client, team):
    tag = team["tag"]
    _customer(app, f"范围{tag}ours", team["outsider"], "sales")       # our department, an outsider's
    _customer(app, f"范围{tag}member", team["member"], "service")     # their department, a member's
    moved = _customer(app, f"范围{tag}moved", team["outsider"], "service")
    _customer(app, f"范围{tag}none", team["outsider"], "service")
    login(client, team["boss"], USER_PASSWORD)
    assert listed_names(client, tag) == {"ours", "member"}

    _set_department(app, moved, "sales")  # the customer joins the department
    assert listed_names(client, tag) == {"ours", "member", "moved"}
    _set_department(app, moved, None)
    assert listed_names(client, tag) == {"ours", "member"}

    _move_user(app, team["member"], "service")  # the owner leaves: their other-department customer goes
    assert listed_names(client, tag) == {"ours"}
    _move_user(app, team["outsider"], "sales")  # an outsider joins: all their customers come
    assert listed_names(client, tag) == {"ours", "moved", "none"}


def test_import_merge_and_undo_keep_the_scope(app, client, team, tmp_path):
    from app.extensions import db
    from app.models import Customer, ImportBatch
    from app.services.importer import undo_batch
    from app.services.merge import merge_customers

    tag = team["tag"]
    path = csv_file(tmp_path / "scope.csv", [["客户名称", "负责人", "所属部门"],
                                             [f"范围{tag}imported", team["member"], "客服部"],
                                             [f"范围{tag}foreign", team["outsider"], "客服部"]])
    report = run_import(app, path)
    assert report["status"] == "done" and report["rows_created"] == 2, report
    login(client, team["boss"], USER_PASSWORD)
    assert listed_names(client, tag) == {"imported"}  # by its owner only: a member

    # merge: the survivor (no owner, no department) takes the merged customer's owner and department
    survivor = _customer(app, f"范围{tag}survivor", None, None)
    merged = _customer(app, f"范围{tag}merged", team["member"], "service")
    assert listed_names(client, tag) == {"imported", "merged"}
    with as_system(app):
        merge_customers(survivor, merged)
    assert listed_names(client, tag) == {"imported", "survivor"}

    with as_system(app):
        from app.services.actor import system_user

        undo_batch(db.session.get(ImportBatch, report["batch"]), system_user())
        assert db.session.query(Customer).filter(Customer.name.like(f"范围{tag}%")).count() == 1
    assert listed_names(client, tag) == {"survivor"}

