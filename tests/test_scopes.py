"""Row and column scope as each seeded role sees it: lists, show pages, edits and deletes in the
UI and through the REST API (JWT), and the home page counts."""
from __future__ import annotations

import re
import uuid

import pytest

from conftest import as_system, USER_PASSWORD, login
from test_roles import exists, jwt, new_contact, new_customer, session_csrf


@pytest.fixture()
def world(app, make_user):
    """Two sales staff and a sales supervisor in 销售部, one sales staff member elsewhere (客服部),
    each with a customer of their own (with a contact), plus the other roles' users."""
    from app.extensions import db
    from app.models import Customer

    tag = uuid.uuid4().hex[:6]
    users = {
        "a": make_user("sales_staff", "sales"), "b": make_user("sales_staff", "sales"),
        "boss": make_user("sales_supervisor", "sales"), "far": make_user("sales_staff", "service"),
        "service": make_user("service_staff", "service"), "analyst": make_user("analytics_staff", "analytics"),
    }
    customers = {k: new_customer(app, f"范围{tag}{k}", owner=users[k]) for k in ("a", "b", "boss", "far")}
    with as_system(app):
        for k in customers:
            c = db.session.get(Customer, customers[k])
            c.total_amount, c.annual_revenue = 987654.32, 12345678.9
        db.session.commit()
    contacts = {k: new_contact(app, pk) for k, pk in customers.items()}
    return {"tag": tag, "users": users, "customers": customers, "contacts": contacts}


_n = iter(range(1, 10_000))


def token(app, username) -> dict[str, str]:
    """A JWT from a cookie-less client of its own (a logged-in browser's POST would need CSRF)."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.251.{next(_n) // 250}.{next(_n) % 250 + 1}"
    return jwt(c, username, USER_PASSWORD)


def as_user(client, username):
    resp = login(client, username, USER_PASSWORD)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    return client


def listed_names(client, tag) -> set[str]:
    html = client.get(f"/customermodelview/list/?_flt_2_name={tag}&psize_CustomerModelView=100").get_data(as_text=True)
    return set(re.findall(rf"范围{tag}(\w+?)<", html))


def api_names(client, auth, tag) -> set[str]:
    q = f"(filters:!((col:name,opr:ct,value:'{tag}')),page_size:100)"
    resp = client.get(f"/api/v1/customer/?q={q}", headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {r["name"].replace(f"范围{tag}", "") for r in resp.get_json()["result"]}


def home_stat(client, key) -> int:
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    return int(re.search(rf'data-stat="{key}">(\d+)<', html).group(1))


# who sees which customers -----------------------------------------------------------------

@pytest.mark.parametrize("who, expected", [
    ("a", {"a"}),                      # staff: own only
    ("boss", {"a", "b", "boss"}),      # supervisor: the department's
    ("analyst", {"a", "b", "boss", "far"}),  # analysts: all
    ("service", {"a", "b", "boss", "far"}),  # service: all (read only, no amounts)
])
def test_list_api_and_show_follow_the_row_scope(who, expected, world, client):
    tag, users, customers = world["tag"], world["users"], world["customers"]
    as_user(client, users[who])
    assert listed_names(client, tag) == expected
    auth = token(client.application, users[who])
    assert api_names(client, auth, tag) == expected
    for key, pk in customers.items():
        want = 200 if key in expected else 404
        assert client.get(f"/customermodelview/show/{pk}").status_code == want, key
        assert client.get(f"/api/v1/customer/{pk}", headers=auth).status_code == want, key
        assert client.get(f"/api/v1/contact/{world['contacts'][key]}", headers=auth).status_code == want, key
        assert client.get(f"/contactmodelview/show/{world['contacts'][key]}").status_code == want, key


def test_contacts_follow_their_customer(world, client):
    tag, users = world["tag"], world["users"]
    auth = token(client.application, users["a"])
    ids = {r["id"] for r in client.get("/api/v1/contact/?q=(page_size:100)", headers=auth).get_json()["result"]}
    assert world["contacts"]["a"] in ids
    assert not ids & {world["contacts"][k] for k in ("b", "boss", "far")}
    # nor can a contact be added to someone else's customer
    resp = client.post("/api/v1/contact/", json={"customer": world["customers"]["b"], "name": f"越权{tag}"},
                       headers=auth)
    assert resp.status_code == 403, resp.get_data(as_text=True)


def test_home_counts_follow_the_row_scope(world, client):
    as_user(client, world["users"]["a"])
    assert home_stat(client, "customers") == 1
    assert home_stat(client, "mine") == 1


def test_home_count_for_supervisor(world, client, app):
    from app.extensions import appbuilder, db
    from app.models import Customer, Department
    from app.security.scopes import customer_clause, policy_for

    as_user(client, world["users"]["boss"])
    with app.app_context():
        boss = appbuilder.sm.find_user(username=world["users"]["boss"])
        dept = db.session.query(Department).filter_by(key="sales").one()
        expected = db.session.query(Customer).filter(customer_clause(policy_for(boss))).count()
        # the same thing said plainly: the department's customers, or customers owned by its members
        members = [u.id for u in db.session.query(type(boss)).filter_by(department_id=dept.id)]
        assert expected == db.session.query(Customer).filter(
            (Customer.department_id == dept.id) | Customer.owner_id.in_(members)).count()
    assert home_stat(client, "customers") == expected >= 3


# editing outside the scope is impossible ----------------------------------------------------

def test_staff_cannot_edit_or_delete_others_customers(world, client, app):
    from app.extensions import db
    from app.models import Customer

    users, customers = world["users"], world["customers"]
    as_user(client, users["a"])
    other = customers["b"]
    assert client.get(f"/customermodelview/edit/{other}").status_code == 404
    resp = client.post(f"/customermodelview/edit/{other}", data={"name": "被改了", "csrf_token": session_csrf(client)})
    assert resp.status_code == 404
    auth = token(client.application, users["a"])
    assert client.put(f"/api/v1/customer/{other}", json={"name": "被改了"}, headers=auth).status_code == 404
    # own customer: editable, but not handed to another department's colleague
    mine = customers["a"]
    assert client.put(f"/api/v1/customer/{mine}", json={"remark": "改备注"}, headers=auth).status_code == 200
    with app.app_context():
        assert db.session.get(Customer, other).name.endswith("b")
        assert db.session.get(Customer, mine).remark == "改备注"


def test_supervisor_edits_and_deletes_within_department_only(world, client, app):
    users, customers = world["users"], world["customers"]
    as_user(client, users["boss"])
    auth = token(client.application, users["boss"])
    assert client.put(f"/api/v1/customer/{customers['a']}", json={"remark": "主管改"}, headers=auth).status_code == 200
    assert client.put(f"/api/v1/customer/{customers['far']}", json={"remark": "越权"}, headers=auth).status_code == 404
    resp = client.post(f"/customermodelview/delete/{customers['far']}", data={"csrf_token": session_csrf(client)})
    assert resp.status_code == 404 and exists(app, "Customer", customers["far"])  # not even found
    gone = new_customer(app, owner=users["b"])
    resp = client.post(f"/customermodelview/delete/{gone}", data={"csrf_token": session_csrf(client)})
    assert resp.status_code == 302 and not exists(app, "Customer", gone)


def test_analyst_reads_all_but_cannot_edit(world, client):
    users, customers = world["users"], world["customers"]
    as_user(client, users["analyst"])
    assert client.get(f"/customermodelview/show/{customers['far']}").status_code == 200
    assert client.get(f"/customermodelview/edit/{customers['far']}").status_code == 403
    auth = token(client.application, users["analyst"])
    assert client.put(f"/api/v1/customer/{customers['far']}", json={"remark": "x"}, headers=auth).status_code == 403


# column scope --------------------------------------------------------------------------------

def test_service_staff_do_not_see_amounts(world, client):
    users, pk = world["users"], world["customers"]["a"]
    as_user(client, users["service"])
    html = client.get(f"/customermodelview/show/{pk}").get_data(as_text=True)
    assert "987,654.32" not in html and "12,345,678.90" not in html
    assert "范围" in html
    auth = token(client.application, users["service"])
    body = client.get(f"/api/v1/customer/{pk}", headers=auth).get_json()
    assert "total_amount" not in body["result"] and "total_amount" not in body.get("show_columns", [])
    resp = client.get(f"/api/v1/customer/?q=(columns:!(name,total_amount),page_size:100)", headers=auth)
    result = resp.get_json()["result"]
    assert result and all("total_amount" not in r and "name" in r for r in result), result[:3]
    # nor can they probe amounts by filtering or sorting on them
    q = "(filters:!((col:total_amount,opr:gt,value:1000)))"
    assert client.get(f"/api/v1/customer/?q={q}", headers=auth).status_code == 400
    assert client.get("/customermodelview/list/?_flt_1_total_amount=1000").status_code == 403


def test_sales_staff_see_amounts(world, client):
    users, pk = world["users"], world["customers"]["a"]
    as_user(client, users["a"])
    assert "987,654.32" in client.get(f"/customermodelview/show/{pk}").get_data(as_text=True)
    auth = token(client.application, users["a"])
    assert float(client.get(f"/api/v1/customer/{pk}", headers=auth).get_json()["result"]["total_amount"]) == 987654.32


# scope is data --------------------------------------------------------------------------------

def test_widest_of_several_roles_and_policy_is_editable(world, app, client):
    from app.extensions import appbuilder, db
    from app.models import RolePolicy, SeedRecord

    users, tag = world["users"], world["tag"]
    with app.app_context():
        sm = appbuilder.sm
        user = sm.find_user(username=users["a"])
        link = db.session.query(SeedRecord).filter_by(kind="role", key="analytics_staff").one()
        user.roles.append(db.session.get(sm.role_model, link.record_id))
        db.session.commit()
    as_user(client, users["a"])
    assert listed_names(client, tag) == {"a", "b", "boss", "far"}

    with app.app_context():  # an admin narrows service staff to their own customers
        role_id = db.session.query(SeedRecord).filter_by(kind="role", key="service_staff").one().record_id
        policy = db.session.query(RolePolicy).filter_by(role_id=role_id).one()
        policy.scope = "own"
        db.session.commit()
    try:
        client.get("/logout/")
        as_user(client, users["service"])
        assert listed_names(client, tag) == set()
    finally:
        with app.app_context():
            policy = db.session.query(RolePolicy).filter_by(role_id=role_id).one()
            policy.scope = "all"
            db.session.commit()


def test_admin_sees_policies(admin_client):
    html = admin_client.get("/rolepolicymodelview/list/").get_data(as_text=True)
    assert "销售部普通员工" in html and "客服部普通员工" in html
    assert "累计交易金额" in html and "业务信息：全部自定义字段（含以后新增的）" in html  # hidden fields by label


def test_salesperson_adding_a_customer_by_form_owns_it(app, client, make_user):
    """The add form's owner box left blank: the file belongs to whoever created it (and their
    department), so they land on its page, not on a 404 outside their own scope."""
    from conftest import USER_PASSWORD, csrf_token, login

    from app.extensions import db
    from app.models import Customer

    username = make_user("sales_staff", "sales")
    login(client, username, USER_PASSWORD)
    page = client.get("/customermodelview/add").get_data(as_text=True)
    name = f"自建客户{uuid.uuid4().hex[:6]}有限公司"
    resp = client.post("/customermodelview/add", data={"csrf_token": csrf_token(page), "name": name})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
    with app.app_context():
        customer = db.session.query(Customer).filter_by(name=name).one()
        assert customer.owner.username == username
        assert customer.department is not None and customer.department.key == "sales"
        cid = customer.id
    assert client.get(f"/customermodelview/show/{cid}").status_code == 200
