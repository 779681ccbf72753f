"""每月标签核查 end to end in a real browser: a sales supervisor opens this month's round for the
sales department through the menu, sees a conflict (活跃度-活跃 by hand next to the rule's
活跃度-沉睡) with its evidence, removes one tag and confirms the other in bulk from the table,
watches the progress, closes the round; an admin later reads the summary."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from conftest import ADMIN_PASSWORD, USER_PASSWORD

from .test_browser import (  # noqa: F401  (fixtures used by name)
    assert_page_ok, browser, demo_data, log_in, new_page, open_menu, pytestmark, shot,
)


def _sales_customer_with_conflict(app) -> str:
    from app.extensions import db
    from app.models import Customer, Department, Interaction
    from app.services.actor import as_system_user
    from app.services.numbering import next_number
    from app.services.tag_rules import apply_all_rules
    from app.services.tagging import add_tag

    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=f"核查浏览器客户{uuid.uuid4().hex[:6]}",
                     total_amount=30000, department=db.session.query(Department).filter_by(key="sales").one())
        db.session.add(c)
        db.session.flush()
        db.session.add(Interaction(customer_id=c.id, key_points="旧跟进", occurred_at=datetime.now() - timedelta(days=400)))
        db.session.commit()
        cid, name = c.id, c.name
        apply_all_rules()
        add_tag(cid, "活跃度-活跃", None)
    return name


def test_supervisor_runs_an_audit_round(app, live_server, make_user, new_page):  # noqa: F811
    name = _sales_customer_with_conflict(app)
    supervisor = make_user("sales_supervisor", "sales", username=f"audit_{uuid.uuid4().hex[:6]}")
    month = f"21{uuid.uuid4().int % 90 + 10}-{uuid.uuid4().int % 9 + 1:02d}"

    page = new_page()
    log_in(page, live_server, supervisor, USER_PASSWORD)
    open_menu(page, "客户管理", "每月标签核查")
    assert "/tagaudit/" in page.url
    assert_page_ok(page)
    page.locator("#open-round input[name=month]").fill(month)
    page.locator("#open-round button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert "每月标签核查" in text and month in text and "未使用的标签" in text
    total = int(page.locator("#progress .total").inner_text())
    assert total >= 3 and page.locator("#progress .checked").inner_text() == "0"

    page.get_by_role("link", name="冲突", exact=True).click()
    page.wait_for_load_state("networkidle")
    rows = page.locator("#items tr", has_text=name)
    assert rows.count() == 2, assert_page_ok(page)[:800]
    dormant = page.locator("#items tr", has_text=name).filter(has_text="活跃度-沉睡")
    assert "6个月无互动 ⇒ 活跃度-沉睡" in dormant.inner_text()  # set by which rule
    assert "时间窗口内的互动次数（近 180 天） 等于 0" in dormant.inner_text()  # what it says now
    shot(page, "tag-audit-1-conflicts")

    page.locator("#items tr", has_text=name).filter(has_text="活跃度-活跃").locator("input[name=item]").check()
    page.get_by_role("button", name="移除", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert "已核查 1 行" in assert_page_ok(page)
    dormant = page.locator("#items tr", has_text=name).filter(has_text="活跃度-沉睡")
    dormant.locator("input[name=item]").check()
    page.get_by_role("button", name="确认", exact=True).click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert page.locator("#progress .checked").inner_text() == "2"
    rows_text = page.locator("#items tr", has_text=name).all_inner_texts()
    assert any("已移除" in r and supervisor in r for r in rows_text), rows_text
    assert any("已确认" in r for r in rows_text), rows_text
    shot(page, "tag-audit-2-checked")

    page.once("dialog", lambda d: d.accept())
    page.locator("#close-round button").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert "本轮核查已关闭" in text and f"共 {total} 个标签：确认 1，移除 1" in text, text[:1200]
    assert page.locator("input[name=item]").count() == 0
    shot(page, "tag-audit-3-closed")

    admin = new_page()
    log_in(admin, live_server, "admin", ADMIN_PASSWORD)
    admin.goto(f"{live_server}/tagaudit/")
    row = admin.locator("#rounds tr", has_text=month)
    assert "已关闭" in row.inner_text() and "确认 1，移除 1" in row.inner_text() and supervisor in row.inner_text()
