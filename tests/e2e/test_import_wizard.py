"""The import wizard in a real browser: upload, correct the mapping, check, see the problems,
confirm, follow the progress, read the report, undo. Screenshots in tests/artifacts/."""
from __future__ import annotations

import uuid

import xlsxwriter

from conftest import ADMIN_PASSWORD
from e2e.test_browser import assert_page_ok, browser, demo_data, log_in, new_page, open_menu, shot  # noqa: F401


def test_import_wizard(live_server, new_page, tmp_path):
    good, bad = f"向导客户{uuid.uuid4().hex[:6]}", f"向导客户{uuid.uuid4().hex[:6]}"
    path = tmp_path / "客户清单.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("客户")
    for r, row in enumerate([["客户名称", "联系电话", "邮箱", "身高"], [good, "13912345678", "g@example.com", "180"],
                             [bad, "13912345679", "不是邮箱", "175"]]):
        ws.write_row(r, 0, row)
    wb.close()

    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    open_menu(page, "客户管理", "导入数据")
    assert "下载导入模板" in assert_page_ok(page)
    page.set_input_files("#upload-form input[type=file]", str(path))
    page.locator("#upload-form button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert "列映射" in text and "表头在第 1 行；共 2 行数据" in text
    assert page.locator("select[name=map_1]").input_value() == "contact_phone"  # 联系电话 recognised
    assert page.locator("select[name=map_3]").input_value() == ""  # 身高: not recognised, the user decides
    page.select_option("select[name=map_3]", "-")
    page.select_option("select[name=mode]", "valid")
    shot(page, "import-1-mapping")
    page.locator("#check-button").click()
    page.wait_for_selector("#confirm-button", timeout=60_000)
    text = assert_page_ok(page)
    assert "“不是邮箱”不是电子邮件地址" in text and "已检查" in text
    assert page.locator("#error-workbook").count() == 1
    shot(page, "import-2-checked")
    page.locator("#confirm-button").click()
    page.wait_for_selector("#undo-button", timeout=60_000)  # the progress bar reloads the page when done
    text = assert_page_ok(page)
    assert "已导入" in text and page.locator("#rows-created").inner_text() == "1"
    shot(page, "import-3-done")

    page.goto(f"{live_server}/customermodelview/list/?_flt_2_name={good}")
    assert good in assert_page_ok(page) and bad not in visible(page)
    page.go_back()
    page.locator("#undo-button").click()
    page.wait_for_load_state("networkidle")
    assert "已撤销" in assert_page_ok(page)
    shot(page, "import-4-undone")


def visible(page) -> str:
    return page.locator("body").inner_text()


def test_a_batch_whose_worker_died_is_run_again_from_its_page(app, live_server, rq_worker, new_page, tmp_path):
    """What a worker killed mid-import leaves (the batch still 'importing', its heartbeat silent
    for minutes, nothing saved) is shown as stopped; 重新运行 finishes it."""
    from datetime import datetime, timedelta

    from app.extensions import db
    from app.models.importing import ImportBatch
    from test_import import count_prefix, create_batch_as, csv_file

    prefix = f"重跑{uuid.uuid4().hex[:6]}"
    path = csv_file(tmp_path / "重跑.csv", [["客户名称", "手机"]] + [[f"{prefix}{i}", f"135{uuid.uuid4().int % 10**8:08d}"] for i in range(3)])
    batch_id = create_batch_as(app, path)
    with app.app_context():
        batch = db.session.get(ImportBatch, batch_id)
        batch.status, batch.started_on = "importing", datetime.utcnow() - timedelta(minutes=10)
        db.session.commit()

    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/import/{batch_id}/")
    text = assert_page_ok(page)
    assert "这次导入未完成就停止了" in text and page.locator("#import-progress").count() == 0
    shot(page, "import-5-stopped")
    page.locator("#retry-button").click()
    page.wait_for_selector("#rows-created", timeout=120_000)  # the progress bar reloads the page when done
    assert page.locator("#rows-created").inner_text() == "3" and "已导入" in assert_page_ok(page)
    assert page.locator("#retry-button").count() == 0
    shot(page, "import-6-retried")
    assert count_prefix(app, prefix) == (3, 3)


def test_import_wizard_for_interactions(app, live_server, new_page, tmp_path):
    """The same wizard, 导入内容 互动记录: the customer by its name, the check, the import."""
    from test_import import run_import

    customer = f"向导互动{uuid.uuid4().hex[:6]}"
    path = tmp_path / "c.csv"
    path.write_text(f"客户名称\n{customer}\n", encoding="utf-8")
    assert run_import(app, path)["status"] == "done"
    path = tmp_path / "互动记录.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("互动")
    for r, row in enumerate([["客户名称", "时间", "方式", "要点"], [customer, "2024-05-01 10:00", "拜访", "初次拜访"]]):
        ws.write_row(r, 0, row)
    wb.close()

    page = new_page()
    log_in(page, live_server, "admin", ADMIN_PASSWORD)
    open_menu(page, "客户管理", "导入数据")
    page.locator("#import-kind input[value=interactions]").check()
    page.set_input_files("#upload-form input[type=file]", str(path))
    page.locator("#upload-form button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert "互动记录" in text and page.locator("select[name=map_2]").input_value() == "kind"
    page.locator("#check-button").click()
    page.wait_for_selector("#confirm-button", timeout=60_000)
    page.locator("#confirm-button").click()
    page.wait_for_selector("#undo-button", timeout=60_000)
    assert "已导入" in assert_page_ok(page) and page.locator("#rows-created").inner_text() == "1"
    page.goto(f"{live_server}/customermodelview/list/?_flt_2_name={customer}")
    assert "2024-05-01 10:00" in visible(page).replace("\xa0", " ")  # its 最近联系 moved, as after recording one by hand
