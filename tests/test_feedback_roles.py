"""Who may do what with feedback, role by role: pages that open or are refused, the menu, and
which feedback each role sees (row scope: a customer's feedback follows the customer; a
handler always sees what was dispatched to them)."""
from __future__ import annotations

import uuid

import pytest

from conftest import ADMIN_PASSWORD, USER_PASSWORD, login

PAGES = ["/feedbackmodelview/list/", "/feedbackmodelview/add", "/revisitmodelview/list/",
         "/surveymodelview/list/", "/feedback/problems/", "/feedbackrulemodelview/list/"]
# role key: department, pages that open (in PAGES order: list, add, revisits, surveys, problems, rules)
MATRIX = {
    "sales_staff": ("sales", "YYNNNN"),
    "sales_supervisor": ("sales", "YYYYYN"),
    "service_staff": ("service", "YYYYNN"),
    "service_supervisor": ("service", "YYYYYN"),
    "analytics_staff": ("analytics", "YNNYYN"),
    "analytics_supervisor": ("analytics", "YNNYYN"),
    "product_manager": (None, "YNYYYN"),
}


def _add_feedback(app, content: str, customer_owner: str | None = None, handler: str | None = None) -> str:
    from app.extensions import appbuilder, db
    from app.models import Customer, Feedback
    from app.services.actor import as_system_user
    from app.services.feedback import prepare
    from app.services.numbering import next_number

    with app.test_request_context("/"), as_system_user():
        fb = Feedback(content=content, phone="13900000000")
        if customer_owner:
            owner = appbuilder.sm.find_user(username=customer_owner)
            fb.customer = Customer(name=f"反馈权限客户{uuid.uuid4().hex[:6]}", customer_no=next_number("customer"),
                                   owner_id=owner.id, department_id=owner.department_id)
        if handler:
            fb.handler_id = appbuilder.sm.find_user(username=handler).id
        prepare(fb, "staff")
        db.session.add(fb)
        db.session.commit()
        return fb.feedback_no


@pytest.mark.parametrize("role_key", list(MATRIX))
def test_pages_and_menu_per_role(role_key, app, client, make_user):
    dept, allowed = MATRIX[role_key]
    username = make_user(role_key, dept)
    assert login(client, username, USER_PASSWORD).status_code == 302
    for path, ok in zip(PAGES, allowed):
        resp = client.get(path)
        if ok == "Y":
            assert resp.status_code == 200, (role_key, path, resp.status_code)
        else:
            assert resp.status_code == 403, (role_key, path, resp.status_code)
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'href="/feedbackmodelview/list/"' in home


def test_admin_opens_every_feedback_page(app, client):
    assert login(client, "admin", ADMIN_PASSWORD).status_code == 302
    for path in PAGES:
        assert client.get(path).status_code == 200, path


def test_each_role_sees_the_feedback_in_its_scope(app, client, make_user):
    seller, other_seller = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    pm, other_pm = make_user("product_manager"), make_user("product_manager")
    service = make_user("service_staff", "service")
    mine = _add_feedback(app, "咨询合同续签", customer_owner=seller)
    theirs = _add_feedback(app, "咨询发票", customer_owner=other_seller)
    anonymous = _add_feedback(app, "网站打不开，请问怎么办")
    for_pm = _add_feedback(app, "产品功能建议", handler=pm)

    def listed(username: str) -> str:
        c = client.application.test_client()
        c.environ_base["REMOTE_ADDR"] = f"10.251.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
        assert login(c, username, USER_PASSWORD).status_code == 302
        return c.get("/feedbackmodelview/list/?psize_FeedbackModelView=100").get_data(as_text=True)

    page = listed(seller)
    assert mine in page and theirs not in page and anonymous not in page and for_pm not in page
    page = listed(pm)
    assert for_pm in page and mine not in page and anonymous not in page
    assert for_pm not in listed(other_pm)
    page = listed(service)  # service reads every customer's feedback, unknown senders too
    assert all(n in page for n in (mine, theirs, anonymous, for_pm))
