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


def test_search_page_offers_a_custom_field_with_its_own_operators(app, live_server, new_page):
    """A searchable money field among 客户检索's conditions: choosing it leaves only 等于 / 不等于 /
    不小于 / 不大于 in the operator box; the search finds by amount. 数据范围 offers the field and
    the whole 业务信息 category to hide."""
    tag = uuid.uuid4().hex[:6]
    key, label = f"ht{tag}", f"合同额{tag}"
    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    try:
        page.goto(f"{live_server}/customfieldmodelview/add")
        page.fill("#key", key)
        page.fill("#label_zh", label)
        page.evaluate("() => { $('#field_type').val('money').trigger('change'); $('#category').val('business').trigger('change'); }")
        for box in ("#in_list", "#searchable"):
            page.check(box)
        page.locator("button[type=submit]").first.click()
        page.wait_for_load_state("networkidle")
        assert "记录已添加" in assert_page_ok(page)
        page.goto(f"{live_server}/customersearch/?q=x")
        token = page.locator("input[name=csrf_token]").first.input_value()
        for suffix, amount in (("小", "9.5"), ("大", "120")):
            resp = page.request.post(f"{live_server}/api/v1/customer/", headers={"X-CSRFToken": token},
                                     data={"name": f"浏览器检索{tag}{suffix}", "extra": {key: amount}})
            assert resp.status == 201, resp.text()
        page.goto(f"{live_server}/customersearch/")
        assert_page_ok(page)
        field = page.locator("select[name=cf]").first
        field.select_option(key)
        enabled = page.locator("select[name=co]").first.evaluate(
            "s => Array.from(s.options).filter(o => !o.disabled).map(o => o.value)")
        assert enabled == ["eq", "ne", "gte", "lte"], enabled
        page.locator("select[name=co]").first.select_option("gte")
        page.locator("input[name=cv]").first.fill("10")
        page.fill("#crm-search-q", f"浏览器检索{tag}")
        page.locator("#crm-search-go").click()
        page.wait_for_load_state("networkidle")
        results = assert_page_ok(page)
        shot(page, "23-search-custom-condition-zh", viewport_too=True)
        assert f"浏览器检索{tag}大" in results and f"浏览器检索{tag}小" not in results, results[:1500]
        page.goto(f"{live_server}/rolepolicymodelview/add")
        form = assert_page_ok(page)
        assert label in form and "业务信息：全部自定义字段（含以后新增的）" in form, form[:1500]
        page.evaluate(f"() => $('#hide_fields').val(['total_amount', 'category:business', '{key}']).trigger('change')")
        shot(page, "24-data-scope-hidden-custom-fields-zh", viewport_too=True)
    finally:
        _retire(app, key)
