"""Forms that name a customer, a user or a contact use type-ahead pickers (no dropdown of a big
table anywhere, checked by walking every registered view), the interaction form takes several
to-dos, and an archived customer's contacts and interactions leave the default lists but stay
on its page in 历史档案."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest

from conftest import USER_PASSWORD, as_system, csrf_token, login

MAX_OPTIONS = 50
SELECT = re.compile(r"<select\b([^>]*)>(.*?)</select>", re.S)


def _word() -> str:
    return f"选{uuid.uuid4().hex[:6]}"


def new_customer(app, owner: str = "admin", archived: bool = False, name: str | None = None) -> dict:
    """A customer with one contact and one interaction; returns their ids and texts."""
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer, Interaction
    from app.services.numbering import next_number

    word = _word()
    with as_system(app):
        user = appbuilder.sm.find_user(username=owner)
        c = Customer(name=name or f"{word}科技有限公司", customer_no=next_number("customer"), owner_id=user.id,
                     department_id=user.department_id)
        contact = Contact(customer=c, name=f"联系人{word}", phone=f"139{uuid.uuid4().int % 10**8:08d}")
        inter = Interaction(customer=c, key_points=f"要点{word}", owner_id=user.id)
        db.session.add_all([c, contact, inter])
        db.session.commit()
        c.archived = archived
        db.session.commit()
        return {"id": c.id, "name": c.name, "no": c.customer_no, "contact_id": contact.id,
                "contact": contact.name, "interaction_id": inter.id, "key_points": inter.key_points}


def item_id(app, type_key: str, code: str) -> int:
    from app.extensions import db
    from app.models import DictionaryItem

    with app.app_context():
        return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one().id


def user_id(app, username: str) -> int:
    from app.extensions import appbuilder

    with app.app_context():
        return appbuilder.sm.find_user(username=username).id


@pytest.fixture(scope="module")
def crowd(app):
    """60 customers with contacts, and 60 users: more than any dropdown may hold."""
    from app.extensions import appbuilder, db

    with app.app_context():
        role = appbuilder.sm.find_role("销售部普通员工") or appbuilder.sm.get_all_roles()[0]
        tag = uuid.uuid4().hex[:6]
        for i in range(60):
            appbuilder.sm.add_user(f"crowd{tag}{i:02d}", "众", f"人{i}", f"crowd{tag}{i}@test.invalid", role,
                                   password=USER_PASSWORD)
        db.session.commit()
    return [new_customer(app) for _ in range(60)]


def _big_selects(html: str, crowd: list[dict]) -> list[str]:
    """Selects of more than 50 options listing customers, contacts or users (other long lists,
    like FAB's permissions on the role form, are not big tables of the business)."""
    marks = [c["name"] for c in crowd] + [c["contact"] for c in crowd] + ["crowd", "众"]
    return [attrs.strip()[:120] for attrs, body in SELECT.findall(html)
            if body.count("<option") > MAX_OPTIONS and any(m in body for m in marks)]


def test_no_form_or_filter_of_any_view_lists_a_big_table(admin_client, app, crowd):
    """Every registered ModelView's add and edit forms and its list's search widget, as admin:
    no select holds more than 50 options (customers, users and contacts number 60+ here)."""
    from flask_appbuilder import ModelView

    from app.extensions import appbuilder, db

    pages = []
    with app.app_context():
        for view in appbuilder.baseviews:
            if isinstance(view, ModelView):
                base = view.route_base
                first = db.session.query(view.datamodel.obj).first()
                pages += [f"{base}/list/", f"{base}/add"] + ([f"{base}/edit/{first.id}"] if first is not None else [])
    seen, problems = 0, []
    for url in pages:
        if True:
            resp = admin_client.get(url)
            if resp.status_code != 200:
                continue
            seen += 1
            problems += [f"{url}: {s}" for s in _big_selects(resp.get_data(as_text=True), crowd)]
    assert seen > 40, seen
    assert not problems, "dropdowns of a whole big table:\n" + "\n".join(problems)


def test_pickers_offer_matches_and_recheck_the_posted_ids(app, client, make_user, crowd):
    from app.extensions import db
    from app.models import Ticket

    me = make_user("service_staff", "service")
    away = make_user("sales_staff", "sales")
    login(client, me, USER_PASSWORD)
    form = client.get("/ticketmodelview/add").get_data(as_text=True)
    assert 'data-lookup-url="/api/v1/lookup/customer"' in form and 'data-lookup-url="/api/v1/lookup/user"' in form
    assert crowd[0]["name"] not in form
    found = client.get("/api/v1/lookup/customer", query_string={"q": crowd[0]["name"][:6]}).get_json()["result"]
    assert [r["id"] for r in found] == [crowd[0]["id"]]
    # a collaborator who has left since is refused by the server, whatever the browser sent
    with app.app_context():
        from app.extensions import appbuilder

        gone = appbuilder.sm.find_user(username=away)
        gone.active = False
        db.session.commit()
    title = f"工单{_word()}"
    data = {"csrf_token": csrf_token(form), "customer": crowd[0]["id"], "title": title, "description": "无法开机",
            "type": item_id(app, "ticket_type", "repair"), "priority": item_id(app, "priority", "high"),
            "collaborators": [user_id(app, "admin"), user_id(app, away)]}
    html = client.post("/ticketmodelview/add", data=data, follow_redirects=True).get_data(as_text=True)
    assert "请在输入时从列表中选择" in html or "Not a valid choice" in html, html[-2000:]
    data["collaborators"] = [user_id(app, "admin")]
    client.post("/ticketmodelview/add", data=data, follow_redirects=True)
    with app.app_context():
        t = db.session.query(Ticket).filter_by(title=title).one()
        assert (t.customer_id, [u.username for u in t.collaborators]) == (crowd[0]["id"], ["admin"])


def test_list_filters_on_customers_and_users_are_typed(admin_client, app, crowd, make_user):
    target = crowd[1]
    page = admin_client.get("/interactionmodelview/list/", query_string={"_flt_0_customer": target["name"][:7],
                                                                        "psize_InteractionModelView": 100})
    html = page.get_data(as_text=True)
    assert target["key_points"] in html and crowd[2]["key_points"] not in html
    # the customer's number finds it; digits are a number or phone, never a customer's id (with
    # many customers, four digits are both some id and many phones' last four)
    html = admin_client.get("/interactionmodelview/list/", query_string={"_flt_0_customer": target["no"]}).get_data(as_text=True)
    assert target["key_points"] in html and crowd[2]["key_points"] not in html
    # a link carrying the customer's id pre-fills the add form
    html = admin_client.get("/interactionmodelview/add", query_string={"_flt_0_customer": target["id"]}).get_data(as_text=True)
    assert 'name="customer"' not in html and 'name="contacts"' in html
    # a user column: typed part of a name
    from app.extensions import db
    from app.models import DictionaryItem, Ticket
    from app.services.tickets import open_ticket

    handler_name = make_user("service_staff", "service")
    with as_system(app):
        kind = db.session.query(DictionaryItem).filter_by(type_key="ticket_type", code="consult").one()
        ticket = Ticket(customer_id=target["id"], type=kind, title=f"筛选处理人{target['no']}")
        open_ticket(ticket)
        ticket.handler_id = user_id(app, handler_name)
        db.session.add(ticket)
        db.session.commit()
        ticket_id, ticket_no = ticket.id, ticket.ticket_no
    # the ticket among its handler's (however many other tests gave them), not another's
    for typed, shown in ((handler_name[:-2], True), ("crowd-nobody", False)):
        html = admin_client.get("/ticketmodelview/list/", query_string={
            "_flt_0_handler": typed, "_flt_0_ticket_no": ticket_no}).get_data(as_text=True)
        assert (f"/ticketmodelview/show/{ticket_id}" in html) is shown, typed  # its row (the number is echoed in the filter box)


def test_contact_picker_offers_only_the_chosen_customers_contacts(admin_client, app, crowd):
    a, b = crowd[3], crowd[4]
    found = admin_client.get("/api/v1/lookup/contact", query_string={"customer": a["id"]}).get_json()["result"]
    assert [r["id"] for r in found] == [a["contact_id"]]
    assert admin_client.get("/api/v1/lookup/contact").get_json()["result"] == []
    form = admin_client.get("/interactionmodelview/add").get_data(as_text=True)
    assert 'data-lookup-customer="customer"' in form
    # a contact of another customer is refused, nothing saved
    from app.extensions import db
    from app.models import Interaction

    resp = admin_client.post("/interactionmodelview/add", data={
        "csrf_token": csrf_token(form), "customer": a["id"], "contacts": [b["contact_id"]],
        "occurred_at": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "key_points": "串户"}, follow_redirects=True)
    assert f"{b['contact']} 不是该客户的联系人" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Interaction).filter_by(key_points="串户").count() == 0


def _interaction_form(client, customer_id: int, rows: list[tuple[str, str, str]], key_points: str):
    page = client.get(f"/interactionmodelview/add?_flt_0_customer={customer_id}").get_data(as_text=True)
    assert 'data-add-row="#todos"' in page
    data = {"csrf_token": csrf_token(page), "occurred_at": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "key_points": key_points}
    for i, (title, due, owner) in enumerate(rows):
        data.update({f"todos-{i}-title": title, f"todos-{i}-due": due, f"todos-{i}-assignee": owner})
    return client.post(f"/interactionmodelview/add?_flt_0_customer={customer_id}", data=data, follow_redirects=True)


def test_an_interaction_takes_several_todos_each_a_task(app, client, make_user):
    from app.extensions import db
    from app.models import Interaction, Task

    me, colleague = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    login(client, me, USER_PASSWORD)
    c = new_customer(app, owner=me)
    soon = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    later = (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    resp = _interaction_form(client, c["id"], [("寄送样品", soon, ""), ("", "", ""),
                                               ("安排技术交流", later, str(user_id(app, colleague)))], "三个待办")
    assert resp.status_code == 200
    with app.app_context():
        inter = db.session.query(Interaction).filter_by(key_points="三个待办").one()
        tasks = db.session.query(Task).filter_by(interaction_id=inter.id).order_by(Task.due_at).all()
        assert [(t.title, t.assignee.username) for t in tasks] == [("寄送样品", me), ("安排技术交流", colleague)]


def test_bad_todo_rows_are_named_and_nothing_is_saved(app, client, make_user):
    from app.extensions import appbuilder, db
    from app.models import Interaction, Task

    me, left = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    with app.app_context():
        appbuilder.sm.find_user(username=left).active = False
        db.session.commit()
    login(client, me, USER_PASSWORD)
    c = new_customer(app, owner=me)
    soon = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    past = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    html = _interaction_form(client, c["id"], [("好的待办", soon, ""), ("", soon, ""), ("过期待办", past, ""),
                                               ("离职同事", soon, str(user_id(app, left))), ("坏时间", "明天", "")],
                             "不应保存").get_data(as_text=True)
    assert "第 2 条待办没有内容" in html, html[-3000:]
    assert "第 3 条待办：截止时间" in html and "已经过去" in html
    assert "第 4 条待办：负责人必须是在职用户" in html
    assert "第 5 条待办：'明天' 不是日期时间" in html
    assert "第 1 条待办" not in html
    with app.app_context():
        assert db.session.query(Interaction).filter_by(key_points="不应保存").count() == 0
        assert db.session.query(Task).filter(Task.title.in_(["好的待办", "过期待办", "离职同事"])).count() == 0
    # the API: a list of to-dos, the same checks
    token = csrf_token(client.get("/resetmypassword/form").get_data(as_text=True))
    resp = client.post("/api/v1/interaction/", headers={"X-CSRFToken": token}, json={
        "customer": c["id"], "key_points": "接口两个待办",
        "todos": [{"title": "一", "due_at": soon.replace(" ", "T")},
                  {"title": "二", "due_at": soon.replace(" ", "T"), "assignee_id": user_id(app, left)}]})
    assert resp.status_code == 422 and "todos[2].assignee_id" in resp.json["message"], resp.get_data(as_text=True)
    resp = client.post("/api/v1/interaction/", headers={"X-CSRFToken": token}, json={
        "customer": c["id"], "key_points": "接口两个待办",
        "todos": [{"title": "一", "due_at": soon.replace(" ", "T")}, {"title": "二", "due_at": soon.replace(" ", "T")}]})
    assert resp.status_code == 201
    with app.app_context():
        assert db.session.query(Task).filter_by(interaction_id=resp.json["id"]).count() == 2


def test_archived_customers_rows_leave_the_default_lists(app, admin_client, make_user):
    active, gone = new_customer(app), new_customer(app, archived=True)
    for url, key in (("/contactmodelview/list/", "contact"), ("/interactionmodelview/list/", "key_points")):
        for c, shown in ((active, True), (gone, False)):  # each list filtered by the customer's number
            html = admin_client.get(url, query_string={"_flt_0_customer": c["no"]}).get_data(as_text=True)
            assert (c[key] in html) is shown, url
    contacts = admin_client.get("/api/v1/contact/", query_string={"q": '{"page_size": 100, "order_column": "id", "order_direction": "desc"}'}).get_json()
    ids = {r["id"] for r in contacts["result"]}
    assert active["contact_id"] in ids and gone["contact_id"] not in ids
    inters = admin_client.get("/api/v1/interaction/", query_string={"q": '{"page_size": 100, "order_column": "id", "order_direction": "desc"}'}).get_json()
    ids = {r["id"] for r in inters["result"]}
    assert active["interaction_id"] in ids and gone["interaction_id"] not in ids
    assert admin_client.get("/api/v1/lookup/contact", query_string={"customer": gone["id"]}).get_json()["result"] == []
    # on the archived customer's page in 历史档案: its contacts and interactions
    page = admin_client.get(f"/customerarchive/show/{gone['id']}").get_data(as_text=True)
    assert gone["contact"] in page and gone["key_points"] in page
    assert admin_client.get(f"/archivedcontact/show/{gone['contact_id']}").status_code == 200
    assert admin_client.get(f"/archivedcontact/show/{active['contact_id']}").status_code == 404
    # a salesperson (no archive rights) cannot read them there
    admin_client.get("/logout/")
    login(admin_client, make_user("sales_staff", "sales"), USER_PASSWORD)
    assert admin_client.get("/archivedcontact/list/").status_code == 403
    assert gone["contact"] not in admin_client.get("/archivedcontact/list/", follow_redirects=True).get_data(as_text=True)
