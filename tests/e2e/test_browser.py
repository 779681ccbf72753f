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


@pytest.fixture(scope="module")
def browser(live_server, demo_data, request):  # noqa: ARG001
    sync_api = pytest.importorskip("playwright.sync_api")
    try:  # a real worker makes the system status page show a live queue
        request.getfixturevalue("rq_worker")
    except pytest.skip.Exception:
        pass
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        # launch() gives Chromium a fresh temporary profile and removes it on close.
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


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
