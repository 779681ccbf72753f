"""A service supervisor clicks 导出 Excel above the ticket list in a real browser and gets the
list's columns with Chinese headers; the buttons sit above the table on each new list."""
from __future__ import annotations

import io
from pathlib import Path

from conftest import USER_PASSWORD

from .test_browser import (  # noqa: F401  (fixtures used by name)
    assert_page_ok, browser, demo_data, log_in, new_page, pytestmark, shot,
)


def test_ticket_list_export_excel_button(app, live_server, make_user, new_page):  # noqa: F811
    import openpyxl

    boss = make_user("service_supervisor", "service")
    page = new_page()
    log_in(page, live_server, boss, USER_PASSWORD)
    for route, name in (("feedbackmodelview", "export-feedback-list"), ("taskmodelview", "export-task-list"),
                        ("ticketmodelview", "export-ticket-list")):
        page.goto(f"{live_server}/{route}/list/")
        assert_page_ok(page)
        buttons = page.locator(".crm-export-buttons")
        assert buttons.count() == 1 and "导出 Excel" in buttons.inner_text() and "导出 CSV" in buttons.inner_text()
        # above the list (its table, or FAB's "no records" text), inside the list's panel
        below = page.locator(".crm-export-buttons ~ *").first
        assert below.count() == 1 and buttons.bounding_box()["y"] < below.bounding_box()["y"]
        shot(page, name)
    with page.expect_download() as info:
        page.get_by_role("button", name="导出 Excel").click()
    download = info.value
    assert download.suggested_filename.startswith("服务工单-") and download.suggested_filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes())).active
    assert [c.value for c in ws[1]] == ["工单编号", "主题", "客户", "类型", "优先级", "状态", "处理人", "团队",
                                        "解决时限", "SLA"]
