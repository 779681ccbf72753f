"""Merging two customers: contacts, interactions and history move to the survivor, its empty
fields are filled, the merged one is gone and the merge is in the history; staff are refused;
a refused merge changes nothing."""
from __future__ import annotations

import uuid

from conftest import ADMIN_PASSWORD, USER_PASSWORD, csrf_token
from test_history import _jwt, _no
from test_i18n import visible


def _pair(app, owner: str | None = None):
    """Two customers: a (level A, contact, no remark) and b (remark, industry, contact, interaction),
    owned by ``owner`` (a username) when given, so that they lie in that user's row scope."""
    from app.extensions import db
    from app.models import Contact, Customer, DictionaryItem, Interaction
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    tag = uuid.uuid4().hex[:8]
    with app.app_context(), as_system_user():
        item = lambda t, c: db.session.query(DictionaryItem).filter_by(type_key=t, code=c).one()  # noqa: E731
        a = Customer(customer_no=next_number("customer"), name=f"甲{tag}", level=item("customer_level", "A"))
        a.contacts.append(Contact(name="甲联系人", phone=f"138{uuid.uuid4().int % 10**8:08d}"))
        b = Customer(customer_no=next_number("customer"), name=f"乙{tag}", remark="乙的备注",
                     industry=item("industry", "C"), level=item("customer_level", "B"))
        b.contacts.append(Contact(name="乙联系人", phone=f"139{uuid.uuid4().int % 10**8:08d}"))
        if owner:
            from app.extensions import appbuilder

            a.owner = b.owner = appbuilder.sm.find_user(username=owner)
            a.department = b.department = a.owner.department
        db.session.add_all([a, b])
        db.session.flush()
        db.session.add(Interaction(customer=b, key_points="谈过价格"))
        db.session.commit()
        return a.id, b.id


def _state(app, *ids):
    from app.extensions import db
    from app.models import Contact, Customer, FieldChange, Interaction

    with app.app_context():
        return {
            "customers": sorted((c.id, c.name, c.remark, c.industry_id) for c in db.session.query(Customer).filter(Customer.id.in_(ids))),
            "contacts": sorted((c.id, c.customer_id) for c in db.session.query(Contact).filter(Contact.customer_id.in_(ids))),
            "interactions": sorted((i.id, i.customer_id) for i in db.session.query(Interaction).filter(Interaction.customer_id.in_(ids))),
            "history": db.session.query(FieldChange).count(),
        }


def test_api_merge_moves_everything_fills_blanks_and_records_it(app, client):
    from app.extensions import db
    from app.models import Contact, Customer, FieldChange, Interaction

    a, b = _pair(app)
    a_no, b_no = _no(app, a), _no(app, b)
    auth = _jwt(client, "admin", ADMIN_PASSWORD)
    resp = client.post("/api/v1/customer/merge", json={"survivor_id": a, "merged_id": b}, headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["moved"] == {"crm_contact": 1, "crm_interaction": 1, "crm_ticket": 0, "crm_service_record": 0,
                                          "crm_attachment": 0}
    with app.app_context():
        assert db.session.get(Customer, b) is None
        survivor = db.session.get(Customer, a)
        assert survivor.remark == "乙的备注" and survivor.industry.code == "C"  # filled
        assert survivor.level.code == "A"  # its own value kept
        assert sorted(c.name for c in survivor.contacts) == ["乙联系人", "甲联系人"]
        assert db.session.query(Interaction).filter_by(customer_id=a).count() == 1
        rows = db.session.query(FieldChange).filter_by(customer_no=a_no).all()
        assert not db.session.query(FieldChange).filter_by(customer_no=b_no).count()  # all moved
        seen = {(r.action, r.entity, r.entity_id, r.field) for r in rows}
        assert ("create", "customer", b, "remark") in seen  # b's own history moved over
        assert ("merge", "customer", a, "merged_from") in seen and ("merge", "customer", b, "merged_into") in seen
        assert ("merge", "customer", a, "remark") in seen and ("merge", "contact", next(
            c.id for c in survivor.contacts if c.name == "乙联系人"), "customer") in seen
        assert ("merge", "customer", b, "name") in seen  # the merged customer's values kept in history
        assert {r.changed_by.username for r in rows if r.action == "merge"} == {"admin"}
    # and the survivor's page shows it
    admin = app.test_client()
    from conftest import login
    login(admin, "admin", ADMIN_PASSWORD)
    text = " | ".join(visible(admin.get(f"/customermodelview/show/{a}").get_data(as_text=True)))
    assert "合并 | 客户 " in text and "合并自" in text and "乙的备注" in text


def test_ui_merge_action_confirmation_and_merge(app, admin_client):
    from app.extensions import db
    from app.models import Customer

    a, b = _pair(app)
    page = admin_client.get("/customermodelview/list/").get_data(as_text=True)
    resp = admin_client.post("/customermodelview/action_post", data={
        "csrf_token": csrf_token(page), "action": "merge", "rowid": [str(a), str(b)]})
    assert resp.status_code == 302 and "/customermodelview/merge/" in resp.headers["Location"]
    confirm = admin_client.get(resp.headers["Location"])
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "合并客户" in html and "乙的备注" in html
    # without the CSRF token nothing happens
    url = resp.headers["Location"]
    assert admin_client.post(url, data={"survivor": str(b)}).status_code == 400
    assert len(_state(app, a, b)["customers"]) == 2
    resp = admin_client.post(url, data={"csrf_token": csrf_token(html), "survivor": str(b)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/customermodelview/show/{b}")
    with app.app_context():
        assert db.session.get(Customer, a) is None and db.session.get(Customer, b).remark == "乙的备注"
    # one row only is refused
    page = admin_client.get("/customermodelview/list/").get_data(as_text=True)
    resp = admin_client.post("/customermodelview/action_post", data={
        "csrf_token": csrf_token(page), "action": "merge", "rowid": [str(b)]}, follow_redirects=True)
    assert "请恰好选择两个客户进行合并" in resp.get_data(as_text=True)


def test_staff_are_refused_supervisors_may(app, client, make_user):
    staff_name = make_user("sales_staff", "sales")
    a, b = _pair(app, owner=staff_name)  # in the staff member's own scope: refused for lack of permission
    before = _state(app, a, b)
    staff = _jwt(client, staff_name, USER_PASSWORD)
    assert client.post("/api/v1/customer/merge", json={"survivor_id": a, "merged_id": b}, headers=staff).status_code == 403
    assert _state(app, a, b) == before
    boss = _jwt(client, make_user("sales_supervisor", "sales"), USER_PASSWORD)
    assert client.post("/api/v1/customer/merge", json={"survivor_id": a, "merged_id": b}, headers=boss).status_code == 200
    assert len(_state(app, a, b)["customers"]) == 1


def test_ui_merge_refused_for_staff(app, client, make_user):
    from conftest import login

    staff_name = make_user("sales_staff", "sales")
    a, b = _pair(app, owner=staff_name)
    login(client, staff_name, USER_PASSWORD)
    page = client.get("/customermodelview/list/").get_data(as_text=True)
    assert "action=merge" not in page.replace('"', "=")  # no action offered
    resp = client.get(f"/customermodelview/merge/?a={a}&b={b}")
    assert resp.status_code == 403
    token = csrf_token(client.get("/customermodelview/list/").get_data(as_text=True))
    resp = client.post(f"/customermodelview/merge/?a={a}&b={b}", data={"csrf_token": token, "survivor": str(a)})
    assert resp.status_code == 403 and len(_state(app, a, b)["customers"]) == 2


def test_refused_merges_change_nothing(app, client):
    a, b = _pair(app)
    before = _state(app, a, b)
    auth = _jwt(client, "admin", ADMIN_PASSWORD)
    for body, message in [({"survivor_id": a, "merged_id": a}, "客户不能与自身合并。"),
                          ({"survivor_id": a, "merged_id": 99999999}, "客户 99999999 不存在。"),
                          ({"survivor_id": "x", "merged_id": b}, "请选择要合并的两个客户。"),
                          ({}, "请选择要合并的两个客户。")]:  # in the user's language (admin: Chinese)
        resp = client.post("/api/v1/customer/merge", json=body, headers=auth)
        assert resp.status_code == 422, resp.get_data(as_text=True)
        assert resp.get_json()["message"] == [message], body
        assert _state(app, a, b) == before


def test_a_failure_midway_rolls_everything_back(app, monkeypatch):
    import pytest

    from app.services import merge

    a, b = _pair(app)
    before = _state(app, a, b)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(merge.history, "reassign_customer", boom)  # after contacts moved and b deleted
    with app.test_request_context("/"):
        from app.services.actor import as_system_user
        with as_system_user(), pytest.raises(RuntimeError):
            merge.merge_customers(a, b)
    assert _state(app, a, b) == before
