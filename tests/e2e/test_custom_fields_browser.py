"""字段配置 in a real browser: the admin adds a required field through 系统设置 › 字段配置, then
uses it straight away in the customer form (refused while empty, saved when filled) and finds
the value on the customer page and in the list. Screenshots in tests/artifacts/."""
from __future__ import annotations

import uuid

import pytest

from conftest import ADMIN_PASSWORD
from e2e.test_browser import (  # noqa: F401  (fixtures)
    CHROMIUM, assert_page_ok, browser, demo_data, log_in, new_page, open_menu, shot,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")


def _retire(app, key: str) -> None:
    from app.extensions import db
    from app.models import CustomField

    with app.app_context():
        db.session.query(CustomField).filter_by(key=key).update({"retired": True})
        db.session.commit()


def test_admin_adds_a_field_and_uses_it_in_the_customer_form(app, live_server, new_page):
    key, label = f"wx{uuid.uuid4().hex[:6]}", "微信群名称"
    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    try:
        open_menu(page, "系统设置", "字段配置")
        assert "/customfieldmodelview/list" in page.url, page.url
        page.goto(f"{live_server}/customfieldmodelview/add")
        assert_page_ok(page)
        page.fill("#key", key)
        page.fill("#label_zh", label)
        page.fill("#label_en", "WeChat group")
        page.evaluate("() => { $('#field_type').val('text').trigger('change'); $('#category').val('contact').trigger('change'); }")
        page.fill("#group", "社群")
        for box in ("#required", "#in_list", "#searchable"):
            page.check(box)
        shot(page, "20-custom-field-add-zh")
        page.locator("button[type=submit]").first.click()
        page.wait_for_load_state("networkidle")
        fields = assert_page_ok(page)
        assert key in fields and label in fields, fields[:1000]

        page.goto(f"{live_server}/customermodelview/add")
        form = assert_page_ok(page)
        assert "联系信息 · 社群" in form and label in form, form[:1500]
        name = f"浏览器字段客户{uuid.uuid4().hex[:6]}"
        page.fill("#name", name)
        page.locator("button[type=submit]").first.click()
        page.wait_for_load_state("networkidle")
        assert_page_ok(page)
        # a required field is marked (*) and the browser itself refuses to send the form empty
        assert "/customermodelview/add" in page.url, page.url
        assert page.locator(f"#{key}").evaluate("e => e.required && e.validity.valueMissing")
        shot(page, "21-customer-form-required-custom-field-zh")

        page.fill(f"#{key}", "华东客户交流群")
        page.locator("button[type=submit]").first.click()
        page.wait_for_load_state("networkidle")
        assert "记录已添加" in assert_page_ok(page)  # FAB goes back to the last list it showed
        page.goto(f"{live_server}/customermodelview/list/?_flt_0_{key}=交流群")
        listing = assert_page_ok(page)
        assert name in listing and "华东客户交流群" in listing and label in listing, listing[:1500]
        page.locator("table tbody tr", has_text=name).locator("a[href*='/customermodelview/show/']").first.click()
        page.wait_for_load_state("networkidle")
        detail = assert_page_ok(page)
        assert label in detail and "华东客户交流群" in detail, detail[:1500]
        shot(page, "22-customer-show-custom-field-zh", viewport_too=True)
    finally:
        _retire(app, key)
