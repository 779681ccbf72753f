"""A real browser (Debian's Chromium through Playwright) on a real `python run.py` server.

The admin logs in in Chinese, walks the home page, roles, customer files and system status
through the navbar menus, switches to English with the navbar's language menu and back; a
salesperson sees their own home page. Every screen is kept as a full-page screenshot
(1280x800 viewport) in tests/artifacts/ (gitignored) for people to look at; the README's
pictures are the ``*-1280x800.png`` ones (viewport only).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

# tests/conftest.py, already loaded by pytest as `conftest`: never import it a second time
# (as `tests.conftest`), that would rerun its setup and point the server at another database.
from conftest import ADMIN_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEEDED_ROLES = ["管理员", "销售部普通员工", "销售部主管", "客服部普通员工", "客服部主管",
                "数据分析部普通员工", "数据分析部主管"]
DEMO_CUSTOMERS = 30

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium is missing (tests/run.sh installs the Debian package)")


@pytest.fixture(scope="module")
def demo_data(app):
    """Demo customers in the live server's database, so the screens look like a living system."""
    from app.services.demo import load_demo

    with app.app_context():
        return load_demo(DEMO_CUSTOMERS)


def launch_chromium():
    """Debian's Chromium under Playwright, for a module's tests (launch() gives it a fresh
    temporary profile and removes it on close)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def chromium(live_server):  # noqa: ARG001
    yield from launch_chromium()


@pytest.fixture(scope="module")
def browser(live_server, demo_data, request):  # noqa: ARG001
    try:  # a real worker makes the system status page show a live queue
        request.getfixturevalue("rq_worker")
    except pytest.skip.Exception:
        pass
    yield from launch_chromium()


@pytest.fixture()
def new_page(browser):
    """new_page() -> a page in its own browser context (own cookies), 1280x800, zh-CN."""
    contexts, errors = [], []

    def factory():
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        return page

    yield factory
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, name: str, viewport_too: bool = False) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if viewport_too:
        page.screenshot(path=str(ARTIFACTS / f"{name}-1280x800.png"), full_page=False)
    return path


def visible_text(page) -> str:
    return page.locator("body").inner_text()


def assert_page_ok(page) -> str:
    text = visible_text(page)
    assert page.locator("#crm-error-message").count() == 0, text[:500]
    assert "Internal Server Error" not in text and "Traceback" not in text, text[:500]
    return text


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, visible_text(page)[:500]


def open_menu(page, category: str, item: str) -> None:
    """Navigate like a person: open a navbar category and click one of its items."""
    page.locator("ul.navbar-nav > li.dropdown > a.dropdown-toggle", has_text=category).click()
    link = page.locator("ul.dropdown-menu a", has_text=item).first
    link.wait_for(state="visible")
    link.click()
    page.wait_for_load_state("networkidle")


def switch_language(page, name: str) -> None:
    page.locator("ul.navbar-right a.dropdown-toggle:has(i.flag)").click()
    page.get_by_role("link", name=re.compile(name)).click()
    page.wait_for_load_state("networkidle")


def test_admin_tour_in_chinese_and_english(live_server, new_page):
    started = time.monotonic()
    page = new_page()

    # Login page, Chinese by default.
    page.goto(f"{live_server}/login/")
    login_text = assert_page_ok(page)
    for word in ("客户关系管理后台", "用户名", "密码", "登录"):
        assert word in login_text, f"{word!r} not on the login page: {login_text[:300]}"
    assert "Username" not in login_text and "Password" not in login_text
    shot(page, "01-login-zh")

    log_in(page, live_server, "admin", ADMIN_PASSWORD)

    # Home: Chinese navbar and our statistics panels.
    home = assert_page_ok(page)
    for word in ("客户关系管理后台", "用户权限", "客户管理", "系统设置", "欢迎"):
        assert word in home, f"{word!r} not on the home page: {home[:500]}"
    assert "Security" not in home and "Customers" not in home and "Settings" not in home
    customers = page.locator('[data-stat="customers"]').inner_text().strip()
    assert int(customers) >= DEMO_CUSTOMERS, f"home shows {customers} customers after loading the demo"
    shot(page, "02-home-zh")

    # Roles list through 用户权限 > 角色列表: every seeded role by its Chinese name.
    open_menu(page, "用户权限", "角色列表")
    assert "/roles/list" in page.url, page.url
    roles = assert_page_ok(page)
    for role in SEEDED_ROLES:
        assert role in roles, f"seeded role {role} is not listed"
    shot(page, "03-roles-zh")

    # Customer files through 客户管理 > 客户档案: demo customers, every label in Chinese.
    open_menu(page, "客户管理", "客户档案")
    zh_list = assert_page_ok(page)
    assert page.locator("table tbody tr").count() >= 10, zh_list[:500]
    for word in ("客户档案", "客户编号", "客户名称", "所属行业", "记录数目"):
        assert word in zh_list, f"{word!r} not on the Chinese list: {zh_list[:500]}"
    assert re.search(r"C\d{11}", zh_list), "no customer number in the list"
    assert re.search(r"[\u4e00-\u9fff]{2,}(公司|集团)", zh_list), "no Chinese company name in the list"
    assert "Record Count" not in zh_list and "Customer Name" not in zh_list
    shot(page, "04-customers-zh", viewport_too=True)

    # English through the navbar's language menu; FAB comes back to the same list.
    switch_language(page, "English")
    assert "/customermodelview/list" in page.url, page.url
    en_list = assert_page_ok(page)
    for word in ("Customer Files", "Record Count", "Customer Name", "Customer No.", "Security", "Customers"):
        assert word in en_list, f"{word!r} not on the English list: {en_list[:500]}"
    assert "客户档案" not in en_list and "记录数目" not in en_list and "用户权限" not in en_list
    shot(page, "05-customers-en", viewport_too=True)

    # System status through Settings > System Status, still in English.
    open_menu(page, "Settings", "System Status")
    assert "/system/status" in page.url, page.url
    status = assert_page_ok(page)
    assert "System Status" in status and "Periodic jobs" in status, status[:500]
    assert page.locator("#periodic-jobs tr").count() >= 2
    shot(page, "06-system-status-en")

    # Back to Chinese through the menu. FAB's /lang/ returns to the last *list* page it
    # recorded (here the customer files), not to this page; the choice sticks afterwards.
    switch_language(page, "简体中文")
    back = assert_page_ok(page)
    assert "用户权限" in back and "Security" not in back, back[:500]
    open_menu(page, "系统设置", "系统状态")
    status_zh = assert_page_ok(page)
    assert "系统状态" in status_zh and "定时任务" in status_zh and "Periodic jobs" not in status_zh, status_zh[:500]
    shot(page, "07-system-status-zh")
    print(f"\nadmin browser tour: {time.monotonic() - started:.1f}s")


def test_salesperson_home_in_chinese(live_server, demo_data, new_page):
    """A demo salesperson's home page: their own customers counted, no administration menu."""
    password = demo_data.get("demo_password") or os.environ.get("CRM_DEMO_PASSWORD")
    if not password:
        pytest.skip("the demo users existed before this run and their password is unknown")
    page = new_page()
    log_in(page, live_server, "zhangwei", password)
    home = assert_page_ok(page)
    assert "欢迎" in home, home[:500]
    assert "客户管理" in home and "用户权限" not in home, home[:500]
    assert int(page.locator('[data-stat="mine"]').inner_text()) > 0, home[:500]
    shot(page, "08-home-sales-zh", viewport_too=True)


def test_export_button_downloads_the_list_as_shown(live_server, demo_data, new_page):
    """The admin sorts the customer list by name, clicks 导出 CSV and gets those rows, that order."""
    import csv
    import io

    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    open_menu(page, "客户管理", "客户档案")
    page.locator("table th a", has_text="客户名称").click()  # FAB's sort link: ascending
    page.wait_for_load_state("networkidle")
    assert "_oc_CustomerModelView=name" in page.url
    heads = [t.strip() for t in page.locator("table.table thead th").all_inner_texts()]
    col = next(i for i, t in enumerate(heads, 1) if t == "客户名称")
    shown = [c.inner_text().strip() for c in page.locator(f"table.table tbody tr td:nth-child({col})").all()]
    assert shown
    shot(page, "20-customer-list-export")
    with page.expect_download() as info:
        page.get_by_role("button", name="导出 CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("客户档案-") and download.suggested_filename.endswith(".csv")
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    names = [r[rows[0].index("客户名称")] for r in rows[1:]]
    assert len(names) >= DEMO_CUSTOMERS and names[:len(shown)] == shown  # the whole list, in the order shown


README_IMG = Path(__file__).resolve().parents[2] / "app" / "static" / "img" / "readme"


def test_staff_work_a_day_from_the_inbox(app, live_server, new_page, make_user):
    """A salesperson lands on 我的工作台, records an interaction with a to-do from the customer's
    timeline, completes the plan's follow-up task and sees the next one scheduled. The README's
    daily-work pictures come from here (app/static/img/readme/)."""
    from datetime import datetime, timedelta

    from conftest import USER_PASSWORD

    from app.extensions import appbuilder, db
    from app.models import Customer, DictionaryItem, FollowupPlan, Task
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    username = make_user("sales_staff", "sales")
    with app.test_request_context("/"), as_system_user():
        user = appbuilder.sm.find_user(username=username)
        user.first_name, user.last_name = "伟", "周"
        level_a = db.session.query(DictionaryItem).filter_by(type_key="customer_level", code="A").one()
        customer = Customer(name="杭州云帆科技有限公司", customer_no=next_number("customer"), owner_id=user.id,
                            department_id=user.department_id, level_id=level_a.id)
        plan = FollowupPlan(customer=customer, assignee_id=user.id, remind_before_minutes=60)
        due = datetime.now().replace(second=0, microsecond=0) + timedelta(minutes=30)
        db.session.add_all([customer, plan, Task(title="电话回访：确认报价", customer=customer, assignee_id=user.id,
                                                  plan=plan, due_at=due, created_by_id=user.id)])
        db.session.commit()
        customer_id, plan_id = customer.id, plan.id
        from app.services.reminders import task_reminders

        task_reminders()  # the periodic job: the task is due within the plan's hour of lead time
    README_IMG.mkdir(parents=True, exist_ok=True)

    page = new_page()
    log_in(page, live_server, username, USER_PASSWORD)
    assert page.url.rstrip("/").endswith("/workbench"), page.url
    inbox = assert_page_ok(page)
    assert "我的工作台" in inbox and "今日到期" in inbox and "电话回访：确认报价" in inbox, inbox[:800]
    assert "到期：电话回访：确认报价" in page.locator('[data-section="reminders"]').inner_text()
    page.screenshot(path=str(README_IMG / "workbench.png"))

    # record an interaction with a to-do, from the customer's timeline
    page.goto(f"{live_server}/customermodelview/show/{customer_id}")
    page.locator('a[href="#Timeline"]').click()
    page.locator("#Timeline a", has_text="记录互动").click()
    page.wait_for_load_state("networkidle")
    def set_time(selector: str, value: str) -> None:  # typed as the date picker writes it
        page.eval_on_selector(selector, "(el, v) => { el.value = v; }", value)

    set_time("#occurred_at", datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    page.eval_on_selector("#kind", """el => { for (const o of el.options) if (o.text === '电话') el.value = o.value;
                                               el.dispatchEvent(new Event('change')); }""")
    page.fill("#key_points", "客户确认采购 200 套，关注交付周期")
    page.fill("#customer_feedback", "希望月底前完成首批交付")
    page.fill("#next_step", "发送正式报价单")
    page.fill("#todos-0-title", "发送正式报价单")
    page.fill("#todos-0-due", (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT10:00"))
    page.screenshot(path=str(README_IMG / "interaction-add.png"), full_page=True)
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state("networkidle")
    saved = assert_page_ok(page)
    assert "/add" not in page.url, saved[:1500]
    page.goto(f"{live_server}/customermodelview/show/{customer_id}#Timeline")
    page.locator('a[href="#Timeline"]').click()
    timeline = page.locator("#Timeline").inner_text()
    assert "客户确认采购 200 套" in timeline and "发送正式报价单" in timeline and "电话" in timeline, timeline
    page.screenshot(path=str(README_IMG / "timeline.png"))

    # back on the inbox: the to-do is there; complete the plan's task and see the next one
    page.goto(f"{live_server}/workbench/")
    assert "发送正式报价单" in page.locator('[data-section="recent"]').inner_text()
    with app.app_context():
        first = db.session.query(Task).filter_by(plan_id=plan_id).one()
    page.locator(f'tr[data-task="{first.id}"] button').first.click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    nxt = (datetime.now() + timedelta(days=7)).strftime("%Y-%m-%d")
    assert "下次跟进安排在" in text and nxt in text, text[:800]
    page.goto(f"{live_server}/taskmodelview/list/")
    tasks = assert_page_ok(page)
    assert "跟进 杭州云帆科技有限公司" in tasks and nxt in tasks, tasks[:800]
    page.goto(f"{live_server}/workbench/")
    shot(page, "09-workbench-after", viewport_too=True)


def test_ticket_from_creation_through_assignment_handling_review_to_archive(app, live_server, new_page, make_user):
    """A service agent opens a ticket on the form; the assignment rule gives it to them; they
    start and submit it on the ticket page; their supervisor approves it into the archive."""
    import uuid

    from conftest import USER_PASSWORD
    from app.extensions import appbuilder, db
    from app.models import AgentProfile, AssignmentRule, Customer, Department, Team, Ticket
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    word = f"浏览器{uuid.uuid4().hex[:6]}"
    agent, boss = make_user("service_staff", "service"), make_user("service_supervisor", "service")
    with app.test_request_context("/"), as_system_user():
        find = appbuilder.sm.find_user
        team = Team(key=f"e2e_{word}", name=f"浏览器测试组{word}", supervisor=find(username=boss),
                    department=db.session.query(Department).filter_by(key="service").one())
        db.session.add_all([team, AgentProfile(user=find(username=agent), team=team, skills="repair"),
                            AssignmentRule(key=f"e2e_{word}", name=f"浏览器规则{word}", sort=0, keywords=word,
                                           team=team, skill="repair"),
                            Customer(name=f"工单客户{word}", customer_no=next_number("customer"))])
        db.session.commit()
        customer_id = db.session.query(Customer.id).filter_by(name=f"工单客户{word}").scalar()

    page = new_page()
    log_in(page, live_server, agent, USER_PASSWORD)
    open_menu(page, "服务台", "服务工单")
    page.goto(f"{live_server}/ticketmodelview/add")
    page.locator("#customer + .select2-container").click()  # the customer picker: type, then pick
    page.locator(".select2-container--open .select2-search__field").fill(f"工单客户{word}")
    page.locator(".select2-results__option", has_text=f"工单客户{word}").first.click()
    page.locator("select#type").select_option(label="报修", force=True)
    page.locator("select#priority").select_option(label="高", force=True)
    page.locator("#title").fill(f"{word} 打印机无法开机")
    page.locator("#description").fill("按电源键无反应")
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    page.wait_for_load_state("networkidle")
    assert_page_ok(page)
    with app.app_context():
        ticket = db.session.query(Ticket).filter(Ticket.title.like(f"{word}%")).one()
        pk, no = ticket.id, ticket.ticket_no
        assert ticket.handler.username == agent and ticket.assignment_rule.name == f"浏览器规则{word}"

    open_menu(page, "服务台", "我的工单")
    assert no in visible_text(page)
    page.goto(f"{live_server}/ticketmodelview/show/{pk}")
    text = assert_page_ok(page)
    assert "已分配" in text and "首次响应" in text and f"按规则“浏览器规则{word}”自动分派" in text
    shot(page, "20-ticket-assigned")
    for action, status in (("开始处理", "处理中"), ("提交审核", "待审核")):
        page.locator("#ticket-action").select_option(label=action)
        page.locator("#ticket-comment").fill(f"{action}：已处理")
        page.locator("#ticket-go").click()
        page.wait_for_load_state("networkidle")
        assert f"工单 {no}：{status}" in assert_page_ok(page)

    page = new_page()
    log_in(page, live_server, boss, USER_PASSWORD)
    open_menu(page, "服务台", "主管看板")
    assert_page_ok(page)
    shot(page, "21-supervisor-board")
    page.goto(f"{live_server}/ticketmodelview/show/{pk}")
    page.locator("#ticket-action").select_option(label="审核通过并归档")
    page.locator("#ticket-go").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert f"工单 {no}：已归档" in text
    steps = page.locator("#ticket-events tr[data-action]")
    assert [steps.nth(i).get_attribute("data-action") for i in range(steps.count())] == [
        "create", "assign", "start", "submit", "approve"]
    shot(page, "22-ticket-archived")


def test_search_box_and_type_ahead_picker(live_server, app, demo_data, new_page):  # noqa: ARG001
    """Type a customer's pinyin initials in the list's search box and find it; add a contact
    choosing the customer by typing in the picker (the form never holds the whole table)."""
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        target = db.session.query(Customer).filter(Customer.archived.is_(False)).order_by(Customer.id).first()
        name, initials = target.name, target.name_initials
    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    open_menu(page, "客户管理", "客户档案")
    page.locator("#crm-quick-q").fill(initials)
    page.locator("#crm-quick-q").press("Enter")
    page.wait_for_load_state("networkidle")
    results = assert_page_ok(page)
    assert "/customersearch/" in page.url and name in results, results[:500]
    assert page.locator("#crm-search-results tbody tr").count() >= 1
    shot(page, "09-search-zh", viewport_too=True)

    page.goto(f"{live_server}/contactmodelview/add")
    assert page.locator("select.crm-lookup option").count() <= 1  # nothing preloaded
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill(name[:4])
    option = page.locator(".select2-results__option", has_text=name).first
    option.wait_for(state="visible")
    option.click()
    page.locator("#name").fill("浏览器测试联系人")
    page.locator("#phone").fill("13655550123")
    shot(page, "10-contact-picker-zh")
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    page.wait_for_load_state("networkidle")
    saved = assert_page_ok(page)
    assert "记录已添加" in saved, saved[:800]
    from app.models import Contact

    with app.app_context():
        contact = db.session.query(Contact).filter_by(name="浏览器测试联系人").one()
        assert contact.customer_id == target.id
