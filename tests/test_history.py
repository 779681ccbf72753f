"""Field history (修改记录): creates, updates and deletes of customers and contacts through the
form, the API and a plain service/job write are recorded with who, when, which field, old and new
value; dictionary fields read as their names; the customer page's history tab lists them newest
first; and nobody, not even the admin, can change or delete history through any route."""
from __future__ import annotations

import re
import uuid

import pytest

from conftest import ADMIN_PASSWORD, USER_PASSWORD, csrf_token
from test_i18n import visible


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _item(code: str, type_key: str):
    from app.extensions import db
    from app.models import DictionaryItem

    return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one()


def _no(app, customer_id: int) -> str:
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        return db.session.get(Customer, customer_id).customer_no


def _changes(app, customer: int | str, **where) -> list:
    """(action, entity, field, old, new, actor username) of a customer's history, newest first."""
    from app.extensions import db
    from app.models import FieldChange

    no = customer if isinstance(customer, str) else _no(app, customer)
    with app.app_context():
        q = db.session.query(FieldChange).filter_by(customer_no=no, **where).order_by(FieldChange.id.desc())
        return [(c.action, c.entity, c.field, c.old_value, c.new_value,
                 c.changed_by.username if c.changed_by else None) for c in q]


@pytest.fixture()
def api_client(admin_client):
    page = admin_client.get("/customermodelview/add").get_data(as_text=True)
    admin_client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(page)
    return admin_client


def _jwt(client, username, password):
    resp = client.post("/api/v1/security/login", json={"username": username, "password": password,
                                                         "provider": "db", "refresh": False})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _form_add(app, client, name: str, **fields) -> int:
    from app.extensions import db
    from app.models import Customer

    page = client.get("/customermodelview/add").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "name": name, **fields}
    resp = client.post("/customermodelview/add", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    with app.app_context():
        return db.session.query(Customer.id).filter_by(name=name).scalar()


# -- recording --------------------------------------------------------------------------------

def test_form_create_update_delete_are_recorded(app, admin_client):
    with app.app_context():
        industry, level_a, level_b = (_item("C", "industry").id, _item("A", "customer_level").id,
                                      _item("B", "customer_level").id)
        industry_name, a_name, b_name = (_item("C", "industry").name, _item("A", "customer_level").name,
                                         _item("B", "customer_level").name)
    name = _unique("史记")
    cid = _form_add(app, admin_client, name, industry=str(industry), level=str(level_a), remark="初次")
    no = _no(app, cid)
    created = _changes(app, cid)
    assert {(a, e, f, o, n, u) for a, e, f, o, n, u in created} >= {
        ("create", "customer", "name", None, name, "admin"),
        ("create", "customer", "industry", None, industry_name, "admin"),
        ("create", "customer", "level", None, a_name, "admin"),
        ("create", "customer", "remark", None, "初次", "admin")}
    assert all(a == "create" for a, *_ in created)

    page = admin_client.get(f"/customermodelview/edit/{cid}").get_data(as_text=True)
    owner = re.search(r'<option(?=[^>]*\bselected\b)[^>]*value="(\d+)"', page.split('name="owner"')[1]).group(1)
    resp = admin_client.post(f"/customermodelview/edit/{cid}", data={  # the form as the browser sends it
        "csrf_token": csrf_token(page), "name": name, "industry": str(industry), "level": str(level_b),
        "remark": "改过", "owner": owner})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    updates = _changes(app, cid, action="update")
    # only what really changed, dictionary values by name
    assert sorted((f, o, n) for _a, _e, f, o, n, _u in updates) == [("level", a_name, b_name), ("remark", "初次", "改过")]

    from app.extensions import db
    from app.models import FieldChange
    with app.app_context():
        sets = {c.changeset for c in db.session.query(FieldChange).filter_by(customer_no=no, action="update")}
    assert len(sets) == 1  # one save, one change set

    page = admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True)
    resp = admin_client.post(f"/customermodelview/delete/{cid}", data={"csrf_token": csrf_token(page)})
    assert resp.status_code == 302
    deleted = _changes(app, no, action="delete")
    assert ("delete", "customer", "name", name, None, "admin") in deleted
    assert ("delete", "customer", "level", b_name, None, "admin") in deleted


def test_api_create_update_and_contact_changes_are_recorded(app, api_client):
    from app.extensions import db
    from app.models import Contact

    with app.app_context():
        src_id, src_name = _item("exhibition", "customer_source").id, _item("exhibition", "customer_source").name
    name = _unique("接口史")
    resp = api_client.post("/api/v1/customer/", json={"name": name, "source": src_id, "main_business": "轴承"})
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    assert ("create", "customer", "source", None, src_name, "admin") in _changes(app, cid)
    resp = api_client.put(f"/api/v1/customer/{cid}", json={"name": name, "main_business": "齿轮"})
    assert resp.status_code == 200, resp.get_json()
    assert _changes(app, cid, action="update") == [("update", "customer", "main_business", "轴承", "齿轮", "admin")]

    first, second = (f"139{uuid.uuid4().int % 10**8:08d}" for _ in range(2))  # numbers no other test uses
    resp = api_client.post("/api/v1/contact/", json={"customer": cid, "name": "赵六", "phone": first})
    assert resp.status_code == 201, resp.get_json()
    contact = resp.get_json()["id"]
    assert ("create", "contact", "phone", None, first, "admin") in _changes(app, cid)
    resp = api_client.put(f"/api/v1/contact/{contact}", json={"customer": cid, "name": "赵六", "phone": second})
    assert resp.status_code == 200, resp.get_json()
    assert ("update", "contact", "phone", first, second, "admin") in _changes(app, cid)
    resp = api_client.delete(f"/api/v1/contact/{contact}")
    assert resp.status_code == 200
    assert ("delete", "contact", "name", "赵六", None, "admin") in _changes(app, cid)
    with app.app_context():
        assert db.session.get(Contact, contact) is None


def test_direct_write_without_a_user_is_recorded_as_the_system_user(app):
    """A job, import or service writes with no one logged in: the system user is the actor;
    archiving is recorded as such."""
    from app.extensions import db
    from app.models import Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=_unique("后台"), staff_count=5)
        db.session.add(c)
        db.session.commit()
        cid = c.id
        c.staff_count = 7
        db.session.commit()
        c.archived = True
        db.session.commit()
    rows = _changes(app, cid)
    assert rows[0] == ("archive", "customer", "archived", "false", "true", "system")
    assert rows[1] == ("update", "customer", "staff_count", "5", "7", "system")
    assert ("create", "customer", "staff_count", None, "5", "system") in rows


def test_a_failed_save_leaves_no_history(app):
    from app.extensions import db
    from app.models import Customer, FieldChange
    from app.services.actor import as_system_user

    with app.app_context(), as_system_user():
        before = db.session.query(FieldChange).count()
        db.session.add(Customer(customer_no=None, name=_unique("失败")))  # customer_no is NOT NULL
        with pytest.raises(Exception):
            db.session.commit()
        db.session.rollback()
        assert db.session.query(FieldChange).count() == before


# -- the history tab ----------------------------------------------------------------------------

def test_history_tab_shows_changes_newest_first_in_chinese(app, admin_client):
    with app.app_context():
        a_name, c_name = _item("A", "customer_level").name, _item("C", "customer_level").name
        level_a, level_c = _item("A", "customer_level").id, _item("C", "customer_level").id
    name = _unique("页签")
    cid = _form_add(app, admin_client, name, level=str(level_a), main_business="第一版")
    for text in ("第二版", "第三版"):
        page = admin_client.get(f"/customermodelview/edit/{cid}").get_data(as_text=True)
        assert admin_client.post(f"/customermodelview/edit/{cid}", data={
            "csrf_token": csrf_token(page), "name": name, "level": str(level_c), "main_business": text},
        ).status_code == 302
    html = admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True)
    text = visible(html)
    assert "修改记录" in text  # the tab
    joined = " | ".join(text)
    third, second, first = (joined.index("第二版 | 第三版"), joined.index("第一版 | 第二版"),
                            joined.index("新增 | 客户 " + _no(app, cid) + " " + name + " | 主营业务 | 第一版 | 查看"))
    assert third < second < first, "newest first"
    assert f"{a_name} | {c_name}" in joined  # dictionary values by name, old then new
    assert f"管理员 Admin | 修改 | 客户 {_no(app, cid)} {name} | 客户等级 | {a_name} | {c_name}" in joined  # who, what


def test_history_api_is_readable(app, client):
    auth = _jwt(client, "admin", ADMIN_PASSWORD)
    name = _unique("接口读")
    resp = client.post("/api/v1/customer/", json={"name": name, "remark": "甲"}, headers=auth)
    cid = resp.get_json()["id"]
    client.put(f"/api/v1/customer/{cid}", json={"name": name, "remark": "乙"}, headers=auth)
    q = f"(filters:!((col:customer_no,opr:eq,value:'{_no(app, cid)}')))"
    resp = client.get(f"/api/v1/customer_history/?q={q}", headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    rows = resp.get_json()["result"]
    assert rows[0]["action"] == "update" and rows[0]["field"] == "remark"
    assert (rows[0]["old_value"], rows[0]["new_value"]) == ("甲", "乙")
    assert rows[0]["changed_by"]["username"] == "admin"
    assert {r["action"] for r in rows[1:]} == {"create"}
    one = client.get(f"/api/v1/customer_history/{rows[0]['id']}", headers=auth)
    assert one.status_code == 200 and one.get_json()["result"]["new_value"] == "乙"


# -- nobody edits or deletes history -----------------------------------------------------------

def test_no_route_changes_history_not_even_for_admin(app, admin_client):
    from app.extensions import db
    from app.models import FieldChange

    name = _unique("不可改")
    cid = _form_add(app, admin_client, name, remark="原值")
    with app.app_context():
        row = db.session.query(FieldChange).filter_by(customer_no=_no(app, cid), field="remark").one()
        pk, before = row.id, (row.old_value, row.new_value, row.field)
    token = csrf_token(admin_client.get("/customermodelview/add").get_data(as_text=True))
    for method, path in [("post", "/customerhistory/add"), ("get", "/customerhistory/add"),
                         ("post", f"/customerhistory/edit/{pk}"), ("get", f"/customerhistory/edit/{pk}"),
                         ("post", f"/customerhistory/delete/{pk}"), ("get", f"/customerhistory/delete/{pk}"),
                         ("post", "/customerhistory/action_post")]:
        resp = getattr(admin_client, method)(path, data={"csrf_token": token, "new_value": "篡改", "rowid": pk,
                                                         "action": "delete"})
        assert resp.status_code == 404, (method, path, resp.status_code)  # no such route at all
    assert admin_client.get(f"/customerhistory/show/{pk}").status_code == 200  # (the view is there)
    client = app.test_client()  # no session cookie: the JWT alone
    auth = _jwt(client, "admin", ADMIN_PASSWORD)
    for method, path in [("post", "/api/v1/customer_history/"), ("put", f"/api/v1/customer_history/{pk}"),
                         ("delete", f"/api/v1/customer_history/{pk}"), ("delete", "/api/v1/customer_history/")]:
        resp = getattr(client, method)(path, json={"new_value": "篡改"}, headers=auth)
        assert resp.status_code == 405, (method, path, resp.status_code)
    assert client.get(f"/api/v1/customer_history/{pk}", headers=auth).status_code == 200
    with app.app_context():
        row = db.session.get(FieldChange, pk)
        assert (row.old_value, row.new_value, row.field) == before
        from app.extensions import appbuilder
        perms = {pv.permission.name for pv in db.session.query(appbuilder.sm.permissionview_model)
                 if pv.view_menu.name in ("CustomerHistoryView", "CustomerHistoryApi")}
    assert perms == {"can_list", "can_show", "can_get", "can_info"}
    # and the tab offers no edit or delete buttons
    html = admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True)
    assert "/customerhistory/edit/" not in html and "/customerhistory/delete/" not in html


def test_staff_read_history_but_cannot_write_it(app, client, make_user):
    username = make_user("sales_staff", "sales")
    auth = _jwt(client, username, USER_PASSWORD)
    resp = client.post("/api/v1/customer/", json={"name": _unique("员工史")}, headers=auth)
    cid = resp.get_json()["id"]
    q = f"(filters:!((col:customer_no,opr:eq,value:'{_no(app, cid)}')))"
    resp = client.get(f"/api/v1/customer_history/?q={q}", headers=auth)
    assert resp.status_code == 200 and resp.get_json()["result"][0]["changed_by"]["username"] == username
    pk = resp.get_json()["result"][0]["id"]
    assert client.delete(f"/api/v1/customer_history/{pk}", headers=auth).status_code == 405


def test_history_follows_row_and_column_scope(app, client, make_user):
    """A salesperson reads the history of their own customers only, and customer service never
    sees changes to the amounts hidden from them."""
    from decimal import Decimal

    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    owner, other = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    service = make_user("service_staff", "service")
    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=_unique("范围历史"),
                     owner=appbuilder.sm.find_user(username=owner))
        db.session.add(c)
        db.session.commit()
        c.total_amount, c.remark = Decimal("12345.00"), "改了备注"
        db.session.commit()
        no = c.customer_no

    def fields_seen(username: str) -> set[str]:
        q = f"(filters:!((col:customer_no,opr:eq,value:'{no}')),page_size:100)"
        resp = client.get(f"/api/v1/customer_history/?q={q}", headers=_jwt(client, username, USER_PASSWORD))
        assert resp.status_code == 200, resp.get_json()
        return {row["field"] for row in resp.get_json()["result"]}

    assert {"remark", "total_amount"} <= fields_seen(owner)
    assert fields_seen(other) == set()
    seen_by_service = fields_seen(service)
    assert "remark" in seen_by_service and "total_amount" not in seen_by_service
