"""Type-ahead pickers in a real browser (Chromium) on a real `python run.py` server: a service
agent opens a ticket by typing part of the customer's name and of a colleague's name, and records
an interaction with two to-dos (the second row added with the button). Screenshots in
tests/artifacts/."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from conftest import USER_PASSWORD, as_system
from e2e.test_browser import CHROMIUM, assert_page_ok, chromium, log_in, shot  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")


def pick(page, field_id: str, typed: str, expected: str) -> None:
    """Open the select2 box of ``field_id``, type, and click the server's match."""
    page.locator(f"#{field_id} + .select2-container").click()
    page.locator(".select2-container--open .select2-search__field, .select2-drop-active input.select2-input").last.fill(typed)
    option = page.locator(".select2-results__option, .select2-result-label", has_text=expected).first
    option.wait_for()
    option.click()


def test_ticket_customer_and_collaborator_picked_by_typing(app, live_server, chromium, make_user):
    from app.extensions import appbuilder, db
    from app.models import Customer, Interaction, Task, Ticket
    from app.services.numbering import next_number

    word = uuid.uuid4().hex[:4]
    agent = make_user("service_staff", "service")
    colleague = make_user("service_staff", "service", username=f"mate{word}")
    with as_system(app):
        admin = appbuilder.sm.find_user(username="admin")
        customer = Customer(name=f"北京星图{word}科技有限公司", customer_no=next_number("customer"), owner_id=admin.id)
        db.session.add(customer)
        db.session.commit()
        customer_id, customer_name = customer.id, customer.name
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, live_server, agent, USER_PASSWORD)

    page.goto(f"{live_server}/ticketmodelview/add")
    assert_page_ok(page)
    pick(page, "customer", f"星图{word}", customer_name)
    pick(page, "collaborators", f"mate{word}", f"mate{word}")
    page.eval_on_selector("#type", "el => { el.selectedIndex = 1; el.dispatchEvent(new Event('change')); }")
    page.eval_on_selector("#priority", "el => { el.selectedIndex = 1; el.dispatchEvent(new Event('change')); }")
    page.fill("#title", f"打印机卡纸 {word}")
    page.fill("#description", "每次打印第二页卡纸")
    shot(page, "pickers-01-ticket-add")
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state("networkidle")
    assert_page_ok(page)
    with app.app_context():
        ticket = db.session.query(Ticket).filter_by(title=f"打印机卡纸 {word}").one()
        assert ticket.customer_id == customer_id
        assert [u.username for u in ticket.collaborators] == [colleague]

    # an interaction with two to-dos: the second row comes from the "add a to-do" button
    page.goto(f"{live_server}/interactionmodelview/add?_flt_0_customer={customer_id}")
    page.eval_on_selector("#occurred_at", "(el, v) => { el.value = v; }", datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    page.fill("#key_points", f"电话回访 {word}")
    due = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT10:00")
    for i in range(2):
        page.fill(f"#todos-{i}-title", f"待办{i + 1} {word}")
        page.fill(f"#todos-{i}-due", due)
    page.get_by_role("button", name="添加一条待办").click()
    page.fill("#todos-2-title", f"待办3 {word}")
    page.fill("#todos-2-due", due)
    pick(page, "todos-2-assignee", f"mate{word}", f"mate{word}")
    shot(page, "pickers-02-interaction-todos", viewport_too=True)
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state("networkidle")
    assert_page_ok(page)
    with app.app_context():
        inter = db.session.query(Interaction).filter_by(key_points=f"电话回访 {word}").one()
        tasks = {t.title: t.assignee.username for t in db.session.query(Task).filter_by(interaction_id=inter.id)}
    assert tasks == {f"待办1 {word}": agent, f"待办2 {word}": agent, f"待办3 {word}": colleague}
    context.close()
