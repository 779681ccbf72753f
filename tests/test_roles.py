"""Least privilege, as each seeded role sees it: the menus shown, the pages that open, what
can be added, edited and deleted, in the UI and through the REST API (JWT)."""
from __future__ import annotations

import re
import uuid

import pytest
import yaml

from conftest import ADMIN_PASSWORD, ROOT, USER_PASSWORD, as_system, csrf_token, login

ROLES = {
    # role key: department, and what the role may do (everything not listed is refused)
    "sales_staff": {"dept": "sales", "customer": {"add", "edit"}, "contact": {"add", "edit"},
                    "delete": set(), "menus": {"/import/"}},
    "sales_supervisor": {"dept": "sales", "customer": {"add", "edit"}, "contact": {"add", "edit"},
                         "delete": {"customer", "contact", "interaction"}, "menus": {"/myexports/list/", "/tagaudit/", "/import/"}},
    "service_staff": {"dept": "service", "customer": set(), "contact": {"add", "edit"},
                      "delete": set(), "menus": set()},
    "service_supervisor": {"dept": "service", "customer": set(), "contact": {"add", "edit"},
                           "delete": {"contact", "interaction"}, "menus": {"/myexports/list/", "/tagaudit/", "/import/"}},
    "analytics_staff": {"dept": "analytics", "customer": set(), "contact": set(),
                        "delete": set(), "menus": {"/myexports/list/"}},
    "analytics_supervisor": {"dept": "analytics", "customer": set(), "contact": set(),
                             "delete": set(), "menus": {"/system/status/", "/myexports/list/", "/tagaudit/"}},
}
CRM_MENUS = {"/customermodelview/list/", "/contactmodelview/list/", "/interactionmodelview/list/",
             "/workbench/", "/taskmodelview/list/", "/followupplanmodelview/list/"}
ADMIN_ONLY_PAGES = ["/users/list/", "/roles/list/", "/departmentmodelview/list/",
                    "/dictionarytypemodelview/list/", "/dictionaryitemmodelview/list/",
                    "/users/add", "/roles/add", "/permissions/list/", "/exportlogmodelview/list/"]
ALL_MENU_LINKS = CRM_MENUS | {"/system/status/", "/myexports/list/", "/exportlogmodelview/list/", "/tagaudit/", "/import/",
                              "/users/list/", "/roles/list/", "/departmentmodelview/list/",
                              "/dictionarytypemodelview/list/", "/dictionaryitemmodelview/list/"}


def test_matrix_covers_every_seeded_role():
    data = yaml.safe_load((ROOT / "seeds" / "roles.yaml").read_text(encoding="utf-8"))
    keys = {r["key"] for r in data["records"]}
    # product_manager (产品经理) handles product feedback only: its matrix is in tests/test_feedback.py
    assert keys == set(ROLES) | {"admin", "product_manager"}


# helpers ------------------------------------------------------------------------------------



def new_customer(app, name: str | None = None, owner: str | None = None) -> int:
    """A customer, owned by the user named ``owner`` (and in their department) if given: with
    row scopes, a staff member sees only their own customers."""
    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services.numbering import next_number

    with as_system(app):
        user = appbuilder.sm.find_user(username=owner) if owner else None
        c = Customer(name=name or f"角色测试客户{uuid.uuid4().hex[:6]}", customer_no=next_number("customer"),
                     owner_id=user.id if user else None, department_id=user.department_id if user else None)
        db.session.add(c)
        db.session.commit()
        return c.id


def new_contact(app, customer_id: int) -> int:
    from app.extensions import db
    from app.models import Contact

    with as_system(app):
        c = Contact(customer_id=customer_id, name=f"联系人{uuid.uuid4().hex[:6]}")
        db.session.add(c)
        db.session.commit()
        return c.id


def new_interaction(app, customer_id: int) -> int:
    from datetime import datetime

    from app.extensions import db
    from app.models import Interaction

    with as_system(app):
        from app.services.actor import system_user

        i = Interaction(customer_id=customer_id, occurred_at=datetime(2024, 5, 1, 10, 0),
                        key_points="角色测试", owner_id=system_user().id)
        db.session.add(i)
        db.session.commit()
        return i.id


def exists(app, model_name: str, pk: int) -> bool:
    import app.models as models
    from app.extensions import db

    with app.app_context():
        return db.session.get(getattr(models, model_name), pk) is not None


def menu_links(client) -> set[str]:
    resp = client.get("/", follow_redirects=True)  # staff land on 我的工作台
    assert resp.status_code == 200
    hrefs = set(re.findall(r'href="([^"#]+)"', resp.get_data(as_text=True)))
    return hrefs & ALL_MENU_LINKS


def assert_opens(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.status_code, resp.headers.get("Location"))


def assert_refused(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 403, (path, resp.status_code, resp.headers.get("Location"))


def session_csrf(client) -> str:
    """The session's CSRF token, from a form every role may open."""
    return csrf_token(client.get("/resetmypassword/form").get_data(as_text=True))


def ui_delete(client, view: str, pk: int, allowed: bool) -> None:
    """Delete through the list's button: a redirect back when allowed, 403 when the role may not."""
    resp = client.post(f"/{view}/delete/{pk}", data={"csrf_token": session_csrf(client)})
    assert resp.status_code == (302 if allowed else 403), (view, resp.status_code)


def jwt(client, username: str, password: str) -> dict[str, str]:
    resp = client.post("/api/v1/security/login", json={"username": username, "password": password, "provider": "db"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


# the matrix, role by role --------------------------------------------------------------------

@pytest.fixture()
def logged_in(app, client, make_user):
    def factory(role_key: str):
        username = make_user(role_key, ROLES[role_key]["dept"])
        resp = login(client, username, USER_PASSWORD)
        assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
        return client, username
    return factory


@pytest.mark.parametrize("role_key", list(ROLES))
def test_menus(role_key, logged_in):
    client, _ = logged_in(role_key)
    assert menu_links(client) == CRM_MENUS | ROLES[role_key]["menus"]


@pytest.mark.parametrize("role_key", list(ROLES))
def test_pages(role_key, app, logged_in):
    client, username = logged_in(role_key)
    spec = ROLES[role_key]
    customer = new_customer(app, owner=username)
    contact = new_contact(app, customer)
    for path in ["/customermodelview/list/", f"/customermodelview/show/{customer}", "/contactmodelview/list/",
                 "/interactionmodelview/list/", "/users/userinfo/", "/resetmypassword/form", "/workbench/",
                     "/taskmodelview/list/", "/followupplanmodelview/list/"]:
        assert_opens(client, path)
    for path in ADMIN_ONLY_PAGES:
        assert_refused(client, path)
    (assert_opens if "/system/status/" in spec["menus"] else assert_refused)(client, "/system/status/")
    (assert_opens if "/import/" in spec["menus"] else assert_refused)(client, "/import/")
    (assert_opens if "add" in spec["customer"] else assert_refused)(client, "/customermodelview/add")
    (assert_opens if "edit" in spec["customer"] else assert_refused)(client, f"/customermodelview/edit/{customer}")
    for view in ("contactmodelview", "interactionmodelview"):
        (assert_opens if "add" in spec["contact"] else assert_refused)(client, f"/{view}/add")
    (assert_opens if "edit" in spec["contact"] else assert_refused)(client, f"/contactmodelview/edit/{contact}")


@pytest.mark.parametrize("role_key", list(ROLES))
def test_ui_add_customer(role_key, app, logged_in):
    from app.models import Customer
    from app.extensions import db

    client, _ = logged_in(role_key)
    name = f"界面新增{uuid.uuid4().hex[:6]}"
    may = "add" in ROLES[role_key]["customer"]
    resp = client.post("/customermodelview/add", data={"name": name, "total_amount": "0", "csrf_token": session_csrf(client)})
    assert resp.status_code == (302 if may else 403), resp.status_code
    with app.app_context():
        saved = db.session.query(Customer).filter_by(name=name).count()
    assert saved == (1 if may else 0)


@pytest.mark.parametrize("role_key", list(ROLES))
def test_ui_delete(role_key, app, logged_in):
    client, username = logged_in(role_key)
    may = ROLES[role_key]["delete"]
    customer = new_customer(app, owner=username)
    contact = new_contact(app, customer)
    interaction = new_interaction(app, customer)
    ui_delete(client, "contactmodelview", contact, "contact" in may)
    assert exists(app, "Contact", contact) is ("contact" not in may)
    ui_delete(client, "interactionmodelview", interaction, "interaction" in may)
    assert exists(app, "Interaction", interaction) is ("interaction" not in may)
    other = new_customer(app, owner=username)  # no children, so only permissions can stop the delete
    ui_delete(client, "customermodelview", other, "customer" in may)
    assert exists(app, "Customer", other) is ("customer" not in may)


@pytest.mark.parametrize("role_key", list(ROLES))
def test_api(role_key, app, client, make_user):
    spec = ROLES[role_key]
    username = make_user(role_key, spec["dept"])
    auth = jwt(client, username, USER_PASSWORD)
    resp = client.get("/api/v1/customer/", headers=auth)
    assert resp.status_code == 200 and "result" in resp.get_json()
    customer = new_customer(app, owner=username)
    assert client.get(f"/api/v1/customer/{customer}", headers=auth).status_code == 200
    assert client.get("/api/v1/contact/", headers=auth).status_code == 200

    name = f"API新增{uuid.uuid4().hex[:6]}"
    resp = client.post("/api/v1/customer/", json={"name": name}, headers=auth)
    if "add" in spec["customer"]:
        assert resp.status_code == 201, resp.get_data(as_text=True)
    else:
        assert resp.status_code == 403, resp.get_data(as_text=True)
    resp = client.put(f"/api/v1/customer/{customer}", json={"name": f"{name}-改"}, headers=auth)
    assert resp.status_code == (200 if "edit" in spec["customer"] else 403), resp.get_data(as_text=True)
    # Nobody but the administrator deletes customers through the API.
    assert client.delete(f"/api/v1/customer/{customer}", headers=auth).status_code == 403
    assert exists(app, "Customer", customer)

    resp = client.post("/api/v1/contact/", json={"customer": customer, "name": "接口联系人"}, headers=auth)
    assert resp.status_code == (201 if "add" in spec["contact"] else 403), resp.get_data(as_text=True)
    contact = new_contact(app, customer)
    resp = client.delete(f"/api/v1/contact/{contact}", headers=auth)
    assert resp.status_code == (200 if "contact" in spec["delete"] else 403), resp.get_data(as_text=True)
    assert exists(app, "Contact", contact) is ("contact" not in spec["delete"])

    # The security API is the administrator's.
    assert client.get("/api/v1/security/users/", headers=auth).status_code == 403
    assert client.get("/api/v1/security/roles/", headers=auth).status_code == 403


# the administrator -----------------------------------------------------------------------------

def test_admin_sees_every_menu_and_page(app, admin_client):
    assert menu_links(admin_client) == ALL_MENU_LINKS
    customer = new_customer(app)
    for path in [*ADMIN_ONLY_PAGES, "/system/status/", "/customermodelview/add",
                 f"/customermodelview/edit/{customer}", "/contactmodelview/add", "/interactionmodelview/add"]:
        assert_opens(admin_client, path)
    contact = new_contact(app, customer)
    ui_delete(admin_client, "contactmodelview", contact, True)
    assert not exists(app, "Contact", contact)
    other = new_customer(app)
    ui_delete(admin_client, "customermodelview", other, True)
    assert not exists(app, "Customer", other)


def test_admin_api_can_do_everything(app, client):
    auth = jwt(client, "admin", ADMIN_PASSWORD)
    resp = client.post("/api/v1/customer/", json={"name": f"管理员接口{uuid.uuid4().hex[:6]}"}, headers=auth)
    assert resp.status_code == 201
    pk = resp.get_json()["id"]
    assert client.put(f"/api/v1/customer/{pk}", json={"name": "改名"}, headers=auth).status_code == 200
    assert client.delete(f"/api/v1/customer/{pk}", headers=auth).status_code == 200
    assert not exists(app, "Customer", pk)
    assert client.get("/api/v1/security/users/", headers=auth).status_code == 200
    assert client.get("/api/v1/security/roles/", headers=auth).status_code == 200
