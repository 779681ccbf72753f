"""Spreadsheet import (导入): files and encodings, header detection, column mapping, every
validation message with its row and column, outcome modes, error workbooks, batches and undo,
the job path through a real RQ worker (progress, cancel, a worker killed mid-import), size
limits, and the CLI, the API and the wizard giving the same report."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from conftest import ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env

# Valid unified social credit codes (GB 32100 check characters).
CODES = ["91350100M000100Y43", "9131000010000050XD", "91310000132200805U", "91310000192256309A"]


def uniq(prefix: str = "导入") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def xlsx(path, rows, *, sheet="客户", date1904=False, extra_sheets=(), start_row=0, text_cols=()):
    wb = xlsxwriter.Workbook(str(path), {"date_1904": date1904, "strings_to_numbers": False,
                                         "strings_to_formulas": False})
    ws = wb.add_worksheet(sheet)
    dfmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if isinstance(v, (datetime, date)):
                ws.write_datetime(start_row + r, c, v if isinstance(v, datetime) else datetime(v.year, v.month, v.day), dfmt)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                ws.write_number(start_row + r, c, v)
            elif v is not None:
                ws.write_string(start_row + r, c, str(v))
    for name, rows2 in extra_sheets:
        ws2 = wb.add_worksheet(name)
        for r, row in enumerate(rows2):
            for c, v in enumerate(row):
                ws2.write(r, c, v)
    wb.close()
    return path


def csv_file(path, rows, encoding="utf-8"):
    import csv

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["" if v is None else v for v in row] for row in rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def run_import(app, path, username=None, **options):
    from app.extensions import appbuilder
    from app.services.actor import system_user
    from app.services.importer import acting_as, import_file

    with app.app_context():
        user = appbuilder.sm.find_user(username=username) if username else system_user()
        with acting_as(user):
            return import_file(path, user, **options)


def codes(report):
    return [(e["row"], e["column"], e["code"]) for e in report["errors"]]


def customers_named(app, *names):
    from app.extensions import db
    from app.models import Customer

    from sqlalchemy.orm import joinedload, selectinload

    with app.app_context():
        q = db.session.query(Customer).options(selectinload(Customer.contacts), joinedload(Customer.level))
        return {c.name: c for c in q.filter(Customer.name.in_(names))}


def test_xlsx_import_creates_customers_with_contacts(app, tmp_path):
    a, b = uniq(), uniq()
    path = xlsx(tmp_path / "a.xlsx", [
        ["客户名称", "所属行业", "联系人", "手机", "邮箱", "累计交易金额", "首次接触时间"],
        [a, "制造业", "王芳", "13800000001" , "wf@example.com", "1,200.50", date(2024, 5, 1)],
        [b, "Manufacturing", "李雷", 13800000002, None, "12万", 45413],
    ])
    report = run_import(app, path)
    assert report["status"] == "done", report
    assert (report["rows_total"], report["rows_valid"], report["rows_created"]) == (2, 2, 2)
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        ca = db.session.query(Customer).filter_by(name=a).one()
        cb = db.session.query(Customer).filter_by(name=b).one()
        assert ca.industry.name == "制造业" and cb.industry.name == "制造业"
        assert ca.total_amount == Decimal("1200.50") and cb.total_amount == Decimal("120000.00")
        assert ca.first_contact_date == date(2024, 5, 1)
        assert cb.first_contact_date == date(2024, 5, 1)  # serial 45413
        assert ca.contacts[0].phone == "13800000001" and ca.contacts[0].is_primary
        assert cb.contacts[0].phone == "13800000002"  # a number cell, read back without ".0"
        assert ca.customer_no.startswith("C") and ca.customer_no != cb.customer_no


# -- files and encodings ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_every_encoding(app, tmp_path, encoding):
    name = uniq("编码")
    path = csv_file(tmp_path / "c.csv", [["客户名称", "所属行业", "备注"], [name, "制造业", "龘 0139"]], encoding)
    report = run_import(app, path)
    assert report["status"] == "done" and report["rows_created"] == 1, report
    c = customers_named(app, name)[name]
    assert c.remark == "龘 0139" if encoding != "gbk" else c.remark.endswith("0139")


def test_second_sheet_by_name_header_detection_blank_rows_and_trailing_columns(app, tmp_path):
    a, b = uniq(), uniq()
    path = xlsx(tmp_path / "s.xlsx", [["不是这张表"]], extra_sheets=[("第二页", [
        ["2024 年客户清单", None, None, None],        # a title row above the header
        [None, None, None, None],
        ["客户名称", "联系电话", "邮箱", None, None],  # the header, then empty trailing columns
        [a, "021-62345678", "a@example.com", None, None],
        [None, None, None, None, None],               # a blank row: skipped, numbering kept
        [b, "0755 8888 1234", None, None, None],
    ])])
    report = run_import(app, path, sheet="第二页")
    assert report["status"] == "done" and report["rows_created"] == 2, report
    found = customers_named(app, a, b)
    assert found[a].contacts[0].phone == "021-62345678"  # leading zero kept
    assert run_import(app, path, sheet="没有")["errors"][0]["code"] == "bad_sheet"


def test_row_numbers_are_the_sheets_own(app, tmp_path):
    path = xlsx(tmp_path / "r.xlsx", [["标题"], [None], ["客户名称", "邮箱"], [uniq(), "ok@example.com"],
                                       [None, None], [uniq(), "not-an-email"]])
    report = run_import(app, path)
    assert codes(report) == [(6, "邮箱", "bad_email")]
    assert report["errors"][0]["value"] == "not-an-email"
    assert "不是电子邮件地址" in report["errors"][0]["message"]


# -- column mapping ----------------------------------------------------------------------------------

def test_synonyms_english_headers_and_unknown_and_duplicate_columns(app, tmp_path):
    name = uniq()
    ok = xlsx(tmp_path / "en.xlsx", [["Customer Name", "Industry", "Mobile", "E-mail", "Customer Level"],
                                     [name, "制造业", "13800000011", "x@example.com", "A"]])
    assert run_import(app, ok, dry_run=True)["status"] == "checked"
    from app.services.importer import auto_mapping

    with app.app_context():
        assert auto_mapping(["手机", "电话", "联系电话", "客户名称", "所属行业", "公司名称", "身高"]) == [
            "contact_phone", "contact_phone", "contact_phone", "name", "industry", "name", None]
    bad = xlsx(tmp_path / "bad.xlsx", [["客户名称", "身高", "公司名称"], [uniq(), "180", "x"]])
    report = run_import(app, bad)
    assert report["status"] == "rejected" and report["rows_created"] == 0
    assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [
        (1, "身高", "unknown_column"), (1, "公司名称", "duplicate_column")]
    assert "列 B" in report["errors"][0]["message"] and "A 列和 C 列" in report["errors"][1]["message"]
    # the user corrects it: ignore the unknown column, send the second name column to the remark
    fixed = run_import(app, bad, mapping={"身高": "-", "公司名称": "remark"})
    assert fixed["status"] == "done" and fixed["rows_created"] == 1


def test_saved_template_maps_the_next_file(app, tmp_path):
    from app.extensions import appbuilder
    from app.services.importer import read_sheet, save_template

    path = xlsx(tmp_path / "t.xlsx", [["单位", "旧系统编号"], [uniq(), "X-1"]])
    with app.app_context():
        sheet = read_sheet(path, "t.xlsx")
        save_template("旧系统导出", sheet.headers, ["name", "remark"], appbuilder.sm.find_user(username="admin"))
    report = run_import(app, path, template="旧系统导出")
    assert report["status"] == "done", report


# -- validation --------------------------------------------------------------------------------------

def test_every_validation_message_names_row_column_and_value(app, tmp_path):
    path = xlsx(tmp_path / "v.xlsx", [
        ["客户名称", "手机", "邮箱", "首次接触时间", "员工人数", "累计交易金额", "所属行业", "统一社会信用代码"],
        [None, "13800000021", None, None, None, None, None, None],
        [uniq(), "1380000", "a@b", "2024-13-45", "十二", "一千", "制造", "91350100M000100Y44"],
        [uniq(), "138-0000-0022", "ok@example.com", "2024年5月1日", "12", "¥1,200.50", "制造业", CODES[0]],
    ])
    report = run_import(app, path)
    assert report["status"] == "rejected" and report["rows_created"] == 0
    assert codes(report) == [
        (2, "客户名称", "required"), (3, "手机", "bad_phone"), (3, "邮箱", "bad_email"),
        (3, "首次接触时间", "bad_date"), (3, "员工人数", "bad_number"), (3, "累计交易金额", "bad_money"),
        (3, "所属行业", "unknown_choice"), (3, "统一社会信用代码", "bad_credit_code")]
    by_code = {e["code"]: e for e in report["errors"]}
    assert "您是说 制造业" in by_code["unknown_choice"]["message"]
    assert by_code["bad_credit_code"]["value"] == "91350100M000100Y44"
    assert "校验" in by_code["bad_credit_code"]["message"]
    assert by_code["bad_date"]["value"] == "2024-13-45"
    assert report["rows_valid"] == 1 and report["rows_rejected"] == 3


def test_serial_dates_1900_and_1904_and_money_forms(app, tmp_path):
    from app.services.importer import parse_date, parse_decimal, serial_date

    assert serial_date(45413, False) == date(2024, 5, 1)
    assert serial_date(43951, True) == date(2024, 5, 1)
    assert serial_date(59, False) == date(1900, 2, 28) and serial_date(61, False) == date(1900, 3, 1)
    assert parse_date("20240501", False) == date(2024, 5, 1) and parse_date("2024/5/1", False) == date(2024, 5, 1)
    assert parse_decimal("12万", money=True) == Decimal("120000")
    assert parse_decimal("1.5亿元", money=True) == Decimal("150000000")
    assert parse_decimal("1,200.50", money=True) == Decimal("1200.50")
    a, b = uniq(), uniq()
    # a 1904-based workbook: a formatted date cell and a raw serial number both land on 2024-05-01
    path = xlsx(tmp_path / "d.xlsx", [["客户名称", "首次接触时间", "合作开始时间"],
                                       [a, date(2024, 5, 1), 43951], [b, 43951.0, "2024-05-01"]], date1904=True)
    assert run_import(app, path)["status"] == "done"
    found = customers_named(app, a, b)
    assert {found[a].first_contact_date, found[a].cooperation_start, found[b].first_contact_date,
            found[b].cooperation_start} == {date(2024, 5, 1)}


def test_leading_zeros_long_digits_and_formulas_stay_text(app, tmp_path):
    name = uniq()
    path = csv_file(tmp_path / "z.csv", [["客户名称", "备注", "主营业务"], [name, "00123456789012345678", "=1+1"]])
    assert run_import(app, path)["status"] == "done"
    c = customers_named(app, name)[name]
    assert c.remark == "00123456789012345678" and c.main_business == "=1+1"


def test_duplicates_inside_the_file_and_against_existing_customers(app, tmp_path):
    first = uniq("重复")
    assert run_import(app, csv_file(tmp_path / "1.csv", [["客户名称", "信用代码"], [first + "有限公司", CODES[1]]]))["status"] == "done"
    x = uniq()
    path = csv_file(tmp_path / "2.csv", [
        ["客户名称", "信用代码", "手机"],
        [first, None, None],                      # same normalised name as a stored customer
        [x, CODES[1], None],                      # same credit code as the stored one
        [uniq(), None, "13800000031"],
        [x + "（中国）有限公司", None, "+86 138 0000 0031"],  # same as rows 3 and 4 of this file
    ])
    report = run_import(app, path, mode="valid")
    assert codes(report) == [(2, "客户名称", "duplicate_existing"), (3, "信用代码", "duplicate_existing"),
                             (5, "客户名称", "duplicate_in_file"), (5, "手机", "duplicate_in_file")]
    assert "与已有客户重复" in report["errors"][0]["message"] and first in report["errors"][0]["message"]
    assert "第 3 行" in report["errors"][2]["message"]
    assert (report["rows_created"], report["rows_rejected"]) == (1, 3)


# -- outcome modes -----------------------------------------------------------------------------------

def test_all_or_nothing_valid_only_and_dry_run(app, tmp_path):
    good, also = uniq(), uniq()
    rows = [["客户名称", "邮箱"], [good, "g@example.com"], [also, "bad"]]
    path = csv_file(tmp_path / "m.csv", rows)
    assert run_import(app, path)["rows_created"] == 0 and not customers_named(app, good)
    dry = run_import(app, path, mode="valid", dry_run=True)
    assert (dry["status"], dry["rows_valid"], dry["rows_created"]) == ("checked", 1, 0) and not customers_named(app, good)
    done = run_import(app, path, mode="valid")
    assert (done["status"], done["rows_created"], done["rows_rejected"]) == ("done", 1, 1)
    assert set(customers_named(app, good, also)) == {good}


def test_update_by_credit_code_and_by_customer_no(app, tmp_path):
    name = uniq()
    run_import(app, csv_file(tmp_path / "u0.csv", [["客户名称", "信用代码", "备注"], [name, CODES[2], "旧"]]))
    c = customers_named(app, name)[name]
    report = run_import(app, csv_file(tmp_path / "u1.csv", [["信用代码", "备注", "客户等级"], [CODES[2], "新", "A"]]),
                        update_by="credit_code")
    assert (report["status"], report["rows_created"], report["rows_updated"]) == ("done", 0, 1), report
    after = customers_named(app, name)[name]
    assert after.remark == "新" and after.level is not None and after.customer_no == c.customer_no
    report = run_import(app, csv_file(tmp_path / "u2.csv", [["客户编号", "备注"], [c.customer_no, "再改"], ["C000", "x"]]),
                        update_by="no", mode="valid")
    assert report["rows_updated"] == 1 and codes(report) == [(3, "客户编号", "not_found")]
    assert customers_named(app, name)[name].remark == "再改"


# -- error workbook ----------------------------------------------------------------------------------

def test_error_workbook_marks_bad_cells_and_can_be_uploaded_again(app, tmp_path):
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import error_workbook

    good, bad = uniq(), uniq()
    path = xlsx(tmp_path / "e.xlsx", [["客户名称", "邮箱", "备注"], [good, "g@example.com", "0012"], [bad, "nope", "=SUM(A1)"]])
    report = run_import(app, path, mode="valid")
    with app.app_context():
        data = error_workbook(db.session.get(ImportBatch, report["batch"]))
    out = tmp_path / "errors.xlsx"
    out.write_bytes(data)
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    assert rows[0] == ["客户名称", "邮箱", "备注", "错误信息"]
    assert len(rows) == 2 and rows[1][:3] == [bad, "nope", "=SUM(A1)"]  # only the rejected row; text stays text
    assert "邮箱" in rows[1][3] and "不是电子邮件地址" in rows[1][3]
    import openpyxl

    ws = openpyxl.load_workbook(out).active
    assert ws["B2"].fill.fgColor.rgb.endswith("FFC7CE") and ws["A2"].fill.fgColor.rgb in (None, "00000000")
    assert ws["C2"].data_type == "s"  # never a formula
    # fixed and uploaded again: the message column is recognised and ignored
    ws["B2"] = "fixed@example.com"
    ws["C2"] = "ok"
    openpyxl.Workbook.save(ws.parent, out)
    again = run_import(app, out)
    assert again["status"] == "done" and again["rows_created"] == 1, again


def test_template_workbook_has_notes_headers_and_dropdowns(app, tmp_path):
    from app.services.importer import template_workbook

    with app.app_context():
        data = template_workbook()
    out = tmp_path / "tpl.xlsx"
    out.write_bytes(data)
    import openpyxl

    wb = openpyxl.load_workbook(out)
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[2]]
    assert "客户名称 *" in headers and "所属行业" in headers and "联系方式" not in headers and "电话" in headers
    assert "必填" in ws.cell(1, headers.index("客户名称 *") + 1).value
    sources = [dv.formula1 for dv in ws.data_validations.dataValidation]
    assert any("lists!" in f for f in sources)
    assert "制造业" in [c.value for c in wb["lists"]["A"]] + [c.value for c in wb["lists"]["B"]]
    # the empty template itself imports without complaint once filled in
    ws.cell(3, headers.index("客户名称 *") + 1, uniq())
    wb.save(out)
    assert run_import(app, out)["status"] == "done"


# -- scope, batches and undo ---------------------------------------------------------------------------

def test_staff_imports_only_into_their_scope_and_supervisor_undoes(app, tmp_path, make_user, client):
    from app.extensions import db
    from app.models import Customer, FieldChange

    staff = make_user("sales_staff", "sales")
    other = make_user("service_staff", "service")
    boss = make_user("sales_supervisor", "sales")
    mine, theirs, keep = uniq(), uniq(), uniq()
    assert run_import(app, csv_file(tmp_path / "k.csv", [["客户名称", "信用代码", "备注"], [keep, CODES[3], "原备注"]]),
                      username=staff)["status"] == "done"
    path = csv_file(tmp_path / "s.csv", [["客户名称", "负责人"], [mine, staff], [theirs, other]])
    report = run_import(app, path, username=staff)
    assert codes(report) == [(3, "负责人", "out_of_scope")] and report["rows_created"] == 0
    report = run_import(app, csv_file(tmp_path / "s2.csv", [["客户名称", "负责人"], [mine, staff]]), username=staff)
    upd = run_import(app, csv_file(tmp_path / "s3.csv", [["信用代码", "备注"], [CODES[3], "导入改"]]),
                     username=staff, update_by="credit_code")
    assert report["rows_created"] == 1 and upd["rows_updated"] == 1
    with app.app_context():
        c = db.session.query(Customer).filter_by(name=mine).one()
        assert c.owner.username == staff and c.department.key == "sales"
        assert db.session.query(FieldChange).filter_by(customer_no=c.customer_no, field="imported").count() == 1

    # the staff member cannot undo; their supervisor can (API), and the history says so
    login(client, staff, USER_PASSWORD)
    token = csrf_token(client.get("/import/").get_data(as_text=True))
    assert client.post(f"/api/v1/import/batches/{upd['batch']}/undo", headers={"X-CSRFToken": token}).status_code == 403
    client.get("/logout/")
    login(client, boss, USER_PASSWORD)
    page = client.get("/import/").get_data(as_text=True)
    assert f'data-batch="{report["batch"]}"' in page  # a supervisor sees the department's batches
    token = csrf_token(page)
    for batch in (upd["batch"], report["batch"]):
        r = client.post(f"/api/v1/import/batches/{batch}/undo", headers={"X-CSRFToken": token})
        assert r.status_code == 200, r.json
    with app.app_context():
        assert db.session.query(Customer).filter_by(name=mine).count() == 0
        kept = db.session.query(Customer).filter_by(name=keep).one()
        assert kept.remark == "原备注"
        changes = {(f.action, f.field, f.new_value) for f in
                   db.session.query(FieldChange).filter_by(customer_no=kept.customer_no)}
        assert ("update", "remark", "原备注") in changes
        assert db.session.query(FieldChange).filter_by(customer_no=c.customer_no, action="delete").count() > 0
    assert client.get(f"/api/v1/import/batches/{report['batch']}").json["status"] == "undone"


# -- size limits -------------------------------------------------------------------------------------

def test_too_big_and_zip_bomb_are_refused_before_parsing(app, tmp_path):
    import zipfile

    big = csv_file(tmp_path / "big.csv", [["客户名称"]] + [[f"名{i:07d}"] for i in range(200_000)])
    bomb = tmp_path / "bomb.xlsx"
    xlsx(bomb, [["客户名称"], [uniq()]])
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/media/padding.bin", b"\0" * (3 * 1024 * 1024))
    old = dict(app.config)
    app.config.update(CRM_IMPORT_MAX_MB=1, CRM_IMPORT_MAX_UNZIPPED_MB=2)
    try:
        assert bomb.stat().st_size < 1024 * 1024
        r1, r2 = run_import(app, big), run_import(app, bomb)
    finally:
        app.config.update(CRM_IMPORT_MAX_MB=old["CRM_IMPORT_MAX_MB"], CRM_IMPORT_MAX_UNZIPPED_MB=old["CRM_IMPORT_MAX_UNZIPPED_MB"])
    assert r1["status"] == "rejected" and r1["errors"][0]["code"] == "too_large" and "1 MB" in r1["errors"][0]["message"]
    assert r2["errors"][0]["code"] == "too_large" and "解压" in r2["errors"][0]["message"]
    assert run_import(app, csv_file(tmp_path / "x.txt", [["a"]]))["errors"][0]["code"] == "bad_file"


# -- CLI and API: the same report ----------------------------------------------------------------------

def test_cli_json_equals_api_report(app, tmp_path, admin_client):
    path = xlsx(tmp_path / "same.xlsx", [["客户名称", "邮箱", "所属行业"], [uniq(), "bad", "制造"], [uniq(), "a@example.com", "制造业"]])
    cli = subprocess.run(flask_cmd("crm", "import", "customers", str(path), "--json", "--user", "admin"),
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1, cli.stderr
    from_cli = json.loads(cli.stdout)
    token = csrf_token(admin_client.get("/import/").get_data(as_text=True))
    with open(path, "rb") as fh:
        resp = admin_client.post("/api/v1/import/customers", data={"file": (fh, "same.xlsx")},
                                 headers={"X-CSRFToken": token}, content_type="multipart/form-data")
    assert resp.status_code == 200
    from_api = resp.json
    assert from_cli.pop("batch") != from_api.pop("batch")
    assert from_cli == from_api and from_cli["status"] == "rejected" and len(from_cli["errors"]) == 2
    assert set(from_cli) >= {"rows_total", "rows_valid", "rows_created", "rows_updated", "errors"}
    assert set(from_cli["errors"][0]) == {"row", "column", "value", "code", "message"}


# -- the job path: a real RQ worker, progress, cancel, a worker killed mid-import -------------------------

def big_csv(path, prefix: str, n: int):
    """n valid customers with phones of their own: a random block of 17x mobiles (phones are a
    dedupe key, and other tests save fixed 13x numbers)."""
    phone_base = 17_000_000_000 + uuid.uuid4().int % 9_999 * 100_000
    rows = [["客户名称", "所属行业", "手机", "累计交易金额"]]
    rows += [[f"{prefix}{i:06d}", "制造业", str(phone_base + i), "1,000"] for i in range(n)]
    return csv_file(path, rows)


def create_batch_as(app, path, username="admin", **options):
    from app.extensions import appbuilder
    from app.services.importer import create_batch

    with app.app_context(), open(path, "rb") as fh:
        return create_batch(fh, os.path.basename(str(path)), appbuilder.sm.find_user(username=username), **options).id


def batch_state(app, batch_id):
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import get_progress

    with app.app_context():
        b = db.session.get(ImportBatch, batch_id)
        return b.status, b.rows_created, get_progress(batch_id)


def count_prefix(app, prefix):
    from app.extensions import db
    from app.models import Contact, Customer
    from app.models.importing import ImportItem

    with app.app_context():
        n = db.session.query(Customer).filter(Customer.name.like(f"{prefix}%")).count()
        contacts = db.session.query(Contact).join(Customer).filter(Customer.name.like(f"{prefix}%")).count()
        return n, contacts


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return out


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_wizard_upload_map_check_confirm_and_report_through_the_worker(app, admin_client, rq_worker, tmp_path):
    prefix = uniq("向导")
    path = big_csv(tmp_path / "wizard.csv", prefix, 3000)
    page = admin_client.get("/import/").get_data(as_text=True)
    assert "下载导入模板" in page
    with open(path, "rb") as fh:
        r = admin_client.post("/import/upload", data={"file": (fh, "客户清单.csv"), "csrf_token": csrf_token(page)},
                              content_type="multipart/form-data")
    assert r.status_code == 302 and "/mapping" in r.headers["Location"]
    mapping_page = admin_client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'name="map_2"' in mapping_page and 'value="contact_phone" selected' in mapping_page
    form = {"csrf_token": csrf_token(mapping_page), "map_0": "name", "map_1": "industry", "map_2": "contact_phone",
            "map_3": "total_amount", "mode": "all", "update_by": "", "template_name": "向导模板"}
    r = admin_client.post(r.headers["Location"], data=form)
    batch_url = r.headers["Location"]
    batch_id = int(batch_url.rstrip("/").split("/")[-1])
    wait_until(lambda: batch_state(app, batch_id)[0] == "checked", 60, "the check")
    page = admin_client.get(batch_url).get_data(as_text=True)
    assert "导入 3000 行" in page and count_prefix(app, prefix) == (0, 0)  # checked, nothing saved yet
    seen = []
    r = admin_client.post(f"/import/{batch_id}/run", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 302

    def finished():
        progress = admin_client.get(f"/import/{batch_id}/progress").json  # what the page's progress bar polls
        seen.append(progress)
        return progress["status"] == "done"

    wait_until(finished, 60, "the import")
    counts = [(p["read"], p["validated"], p["saved"]) for p in seen]  # the bar only moves forward
    assert counts == sorted(counts) and all(r >= v >= s for r, v, s in counts), counts
    assert seen[-1]["read"] == 3000 and seen[-1]["validated"] == 3000 and seen[-1]["saved"] == 3000
    page = admin_client.get(batch_url).get_data(as_text=True)
    assert 'id="rows-created">3000<' in page and "已导入" in page
    assert count_prefix(app, prefix) == (3000, 3000)
    api = admin_client.get(f"/api/v1/import/batches/{batch_id}").json
    assert (api["rows_total"], api["rows_created"], api["status"]) == (3000, 3000, "done")


def test_cancel_a_running_import(app, rq_worker, tmp_path):
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import request_cancel, start

    prefix = uniq("取消")
    batch_id = create_batch_as(app, big_csv(tmp_path / "cancel.csv", prefix, 30000))
    with app.app_context():
        start(db.session.get(ImportBatch, batch_id), False)
    wait_until(lambda: batch_state(app, batch_id)[2].get("phase") in ("validating", "saving"), 60, "the job to start")
    with app.app_context():
        request_cancel(db.session.get(ImportBatch, batch_id))
    wait_until(lambda: batch_state(app, batch_id)[0] == "cancelled", 60, "the cancel")
    assert count_prefix(app, prefix) == (0, 0)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_worker_killed_mid_import_leaves_nothing_and_rerun_is_safe(app, rq_worker, tmp_path):
    from app.extensions import db
    from app.jobs import enqueue
    from app.models import FieldChange
    from app.models.importing import ImportBatch, ImportItem
    from app.services.importer import start

    prefix, n = uniq("中断"), 20000
    batch_id = create_batch_as(app, big_csv(tmp_path / "kill.csv", prefix, n))
    queue = f"import-kill-{uuid.uuid4().hex[:6]}"  # only our doomed worker listens here
    log = open(tmp_path / "worker.log", "w")
    doomed = subprocess.Popen(flask_cmd("crm", "worker", "--queues", queue, "--burst"), cwd=ROOT, env=subprocess_env(),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with app.app_context():
            enqueue("app.services.importer:run_batch", batch_id, False, run_key=f"kill-{batch_id}", queue=queue)
        wait_until(lambda: (batch_state(app, batch_id)[2].get("saved") or 0) > 0, 120, "the save to be under way")
    finally:
        # the worker and its work horse (RQ puts the horse in a session of its own) die mid-transaction
        for pid in children_of(doomed.pid) + [doomed.pid]:
            os.kill(pid, signal.SIGKILL)
        doomed.wait(10)
        log.close()
    time.sleep(3)  # long enough for a survivor to have committed
    status, created, _ = batch_state(app, batch_id)
    assert status != "done" and created == 0
    assert count_prefix(app, prefix) == (0, 0)
    with app.app_context():
        assert db.session.query(ImportItem).filter_by(batch_id=batch_id).count() == 0
        assert db.session.query(FieldChange).filter(FieldChange.new_value.like(f"%(#{batch_id})")).count() == 0
        start(db.session.get(ImportBatch, batch_id), False)  # run the batch again, on the normal worker
    wait_until(lambda: batch_state(app, batch_id)[0] == "done", 300, "the re-run")
    assert count_prefix(app, prefix) == (n, n)
    with app.app_context():
        from app.services.importer import run_batch

        again = run_batch(batch_id)  # a third run changes nothing
    assert (again["status"], again["rows_created"]) == ("done", n) and count_prefix(app, prefix) == (n, n)


def test_imported_customers_are_searchable_and_guarded_like_form_saves(app, tmp_path):
    """The import writes in bulk, past the model's listeners: its rows must still get the search
    keys (name pieces, pinyin, phone's last four) and the unique guards a form save gets."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Customer
    from app.services.search import text_match_ids

    import random

    letters = {"东": "d", "南": "n", "西": "x", "北": "b", "春": "c", "夏": "x", "秋": "q", "冬": "d"}
    middle = "".join(random.choice(list(letters)) for _ in range(5))
    name = f"翠湖{middle}科技有限公司"
    initials = "ch" + "".join(letters[c] for c in middle) + "kj"
    phone = f"137{uuid.uuid4().int % 10**8:08d}"  # a number no other test uses
    report = run_import(app, csv_file(tmp_path / "s.csv", [["客户名称", "联系人", "手机"], [name, "赵敏", phone]]))
    assert report["status"] == "done", report["errors"]
    with app.app_context():
        cid = db.session.scalar(select(Customer.id).where(Customer.name == name))
        for q in ("翠湖", "cuihu", initials, phone[-4:]):
            assert cid in set(db.session.scalars(text_match_ids(q))), q
        row = db.session.get(Customer, cid)
        assert row.unique_name_key == row.name_key and row.name_pinyin.startswith("cuihu")
