"""Exports (导出) of the CRM lists: what the files hold (.xlsx read back with openpyxl, .csv as
bytes), that they follow the list's filter and sort and each seeded role's row scope, hidden
columns and masking, the command line, big exports through the real RQ worker, the export log
and the cleanup job."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

import openpyxl
import pytest

from conftest import as_system, ROOT, USER_PASSWORD, flask_cmd, login, subprocess_env
from test_roles import session_csrf

PHONE = "13812345678"
FORMULAS = ["=SUM(A1:A9)", "+86 10 1234", "-1+2", "@cmd", "\tTAB", "\rCR"]


def _customer(app, name: str, owner: str | None = None, **fields) -> int:
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer
    from app.services.numbering import next_number

    with as_system(app):
        user = appbuilder.sm.find_user(username=owner) if owner else None
        c = Customer(name=name, customer_no=next_number("customer"), owner_id=user.id if user else None,
                     department_id=user.department_id if user else None, total_amount=987654.32,
                     annual_revenue=12345678.9, **fields)
        db.session.add(c)
        db.session.flush()
        db.session.add(Contact(customer_id=c.id, name="联系人甲", phone=PHONE, email="zhang.wei@example.com",
                               is_primary=True))
        db.session.commit()
        return c.id


def as_user(client, username: str):
    resp = login(client, username, USER_PASSWORD)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    return client


def other_client(app):
    """A second browser (the ``client`` fixture is the one ``admin_client`` logs in)."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.253.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    return c


def ui_export(client, fmt: str, args: dict | str, view: str = "customermodelview"):
    qs = args if isinstance(args, str) else urlencode(args)
    return client.post(f"/{view}/export/{fmt}?{qs}", data={"csrf_token": session_csrf(client)})


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV without a UTF-8 BOM"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def by_name(args_tag: str) -> dict:
    return {"_flt_2_name": args_tag}


# -- the files themselves ---------------------------------------------------------------------

@pytest.fixture()
def tricky(app):
    """Five customers whose main business looks like formulas or keeps leading zeros."""
    tag = uuid.uuid4().hex[:6]
    values = {"a": "0139", "b": "=SUM(A1:A9)", "c": "+86 10 1234", "d": "@cmd", "e": "-1+2"}
    for k, v in values.items():
        _customer(app, f"导出{tag}{k}", main_business=v)
    return tag, values


def test_xlsx_has_chinese_headers_frozen_pane_autofilter_and_text_stays_text(tricky, admin_client):
    tag, values = tricky
    resp = ui_export(admin_client, "xlsx", {**by_name(tag), "_oc_CustomerModelView": "name",
                                            "_od_CustomerModelView": "desc"})
    assert resp.status_code == 200, resp.headers.get("Location")
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in resp.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in resp.headers["Content-Disposition"]  # 客户档案-....xlsx
    ws = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    header = [c.value for c in ws[1]]
    assert header[:3] == ["客户编号", "客户名称", "类别"]
    assert {"累计交易金额", "负责人", "主要联系人", "联系电话", "联系邮箱"} <= set(header)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}6"
    assert ws.column_dimensions["B"].width > 10  # sized for the Chinese names
    rows = [dict(zip(header, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]
    # filter and sort of the list: only this tag, names descending
    assert [r["客户名称"] for r in rows] == [f"导出{tag}{k}" for k in "edcba"]
    business = {r["客户名称"][-1]: r["主营业务"] for r in rows}
    assert business == values  # '0139' keeps its zero; '=SUM(...)' is text, not a formula
    cells = [c for r in ws.iter_rows(min_row=2) for c in r if c.value == "=SUM(A1:A9)"]
    assert cells and all(c.data_type == "s" for c in cells)
    assert all(r["联系电话"] == "138****5678" and r["联系邮箱"] == "z***@example.com" for r in rows)
    assert rows[0]["累计交易金额"] == pytest.approx(987654.32)


def test_csv_has_bom_and_quotes_cells_that_start_like_formulas(app, admin_client):
    tag = uuid.uuid4().hex[:6]
    for i, v in enumerate(FORMULAS):
        _customer(app, f"导出{tag}{i}", main_business=v, remark=f"0{i}")
    resp = ui_export(admin_client, "csv", {**by_name(tag), "_oc_CustomerModelView": "name",
                                           "_od_CustomerModelView": "asc"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = csv_rows(resp.data)
    header, data = rows[0], rows[1:]
    assert header[:2] == ["客户编号", "客户名称"]
    col, remark = header.index("主营业务"), header.index("备注")
    assert [r[col] for r in data] == ["'" + v for v in FORMULAS]
    assert [r[remark] for r in data] == [f"0{i}" for i in range(len(FORMULAS))]


# -- each seeded role: row scope, hidden columns, masking -------------------------------------

@pytest.fixture()
def world(app, make_user):
    tag = uuid.uuid4().hex[:6]
    owners = {"a": make_user("sales_staff", "sales"), "boss": make_user("sales_supervisor", "sales"),
              "far": make_user("sales_staff", "service")}
    for k, u in owners.items():
        _customer(app, f"范围{tag}{k}", owner=u)
    return tag, owners


ROLE_EXPECTED = {
    # role: (may export, customers seen among a/boss/far, amounts shown)
    "sales_staff": (False, None, None),
    "service_staff": (False, None, None),
    "sales_supervisor": (True, {"a", "boss"}, True),
    "service_supervisor": (True, {"a", "boss", "far"}, False),
    "analytics_staff": (True, {"a", "boss", "far"}, True),
    "analytics_supervisor": (True, {"a", "boss", "far"}, True),
}
DEPT = {"sales_staff": "sales", "sales_supervisor": "sales", "service_staff": "service",
        "service_supervisor": "service", "analytics_staff": "analytics", "analytics_supervisor": "analytics"}


@pytest.mark.parametrize("role_key", list(ROLE_EXPECTED))
def test_each_role_exports_only_its_rows_and_columns_masked(role_key, app, world, client, make_user):
    from app.extensions import db
    from app.models import ExportLog, RevealLog

    tag, _ = world
    may, seen, amounts = ROLE_EXPECTED[role_key]
    username = make_user(role_key, DEPT[role_key])
    as_user(client, username)
    html = client.get(f"/customermodelview/list/?_flt_2_name={tag}").get_data(as_text=True)
    assert ("导出 Excel" in html and "导出 CSV" in html) is may
    with app.app_context():
        reveals = db.session.query(RevealLog).count()
    resp = ui_export(client, "csv", by_name(tag))
    if not may:
        assert resp.status_code == 403 and not resp.data.startswith(b"\xef\xbb\xbf")
        with app.app_context():
            assert db.session.query(ExportLog).join(ExportLog.user).filter_by(username=username).count() == 0
        return
    assert resp.status_code == 200, resp.headers.get("Location")
    rows = csv_rows(resp.data)
    header, data = rows[0], rows[1:]
    names = header.index("客户名称")
    assert {r[names].replace(f"范围{tag}", "") for r in data} == seen
    assert ("累计交易金额" in header and "年营业额" in header) is amounts
    phone = header.index("联系电话")
    # masked for everybody, also for supervisors holding "view full contact info"
    assert {r[phone] for r in data} == {"138****5678"}
    assert PHONE.encode() not in resp.data
    with app.app_context():
        assert db.session.query(RevealLog).count() == reveals  # nothing revealed, nothing logged


def test_hidden_column_cannot_be_used_to_filter_or_sort_an_export(app, world, client, make_user):
    from app.extensions import db
    from app.models import ExportLog

    tag, _ = world
    username = make_user("service_supervisor", "service")
    as_user(client, username)
    resp = ui_export(client, "xlsx", {**by_name(tag), "_oc_CustomerModelView": "total_amount",
                                      "_od_CustomerModelView": "desc"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/customermodelview/list/")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "列表不能按“累计交易金额”排序。" in page
    resp = ui_export(client, "csv", {"_flt_0_total_amount": "1"})
    assert "列表不能按“累计交易金额”筛选。" in client.get(resp.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert db.session.query(ExportLog).join(ExportLog.user).filter_by(username=username).count() == 0


def test_contacts_and_interactions_export_their_list_columns_masked(app, world, admin_client):
    tag, _ = world
    resp = ui_export(admin_client, "csv", {"_flt_2_name": "联系人甲"}, view="contactmodelview")
    # the contact list's own search: by name; every row masked
    assert resp.status_code == 200, resp.headers.get("Location")
    rows = csv_rows(resp.data)
    assert rows[0] == ["客户", "客户名称", "职务", "电话", "邮箱", "主要联系人"]
    assert rows[1:] and {r[3] for r in rows[1:]} == {"138****5678"}
    resp = ui_export(admin_client, "xlsx", "", view="interactionmodelview")
    assert resp.status_code == 200
    assert [c.value for c in openpyxl.load_workbook(io.BytesIO(resp.data)).active[1]][:3] == ["时间", "客户", "类别"]


# -- the command line ---------------------------------------------------------------------------

def _flask(*args, timeout=120):
    return subprocess.run(flask_cmd(*args), cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_cli_export_as_a_user_equals_that_users_ui_export(app, world, client, make_user, tmp_path):
    tag, _ = world
    username = make_user("sales_supervisor", "sales")
    args = {**by_name(tag), "_oc_CustomerModelView": "name", "_od_CustomerModelView": "desc"}
    ui = ui_export(as_user(client, username), "csv", args)
    assert ui.status_code == 200
    out = tmp_path / "客户.csv"
    done = _flask("crm", "export", "customers", str(out), "--user", username, "--filter", urlencode(args))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["rows"] == 2
    assert out.read_bytes() == ui.data

    bad = _flask("crm", "export", "customers", str(tmp_path / "x.csv"), "--filter", "_flt_0_no_such=1")
    assert bad.returncode == 2 and "no_such" in bad.stderr
    unknown = _flask("crm", "export", "nothing", str(tmp_path / "x.xlsx"))
    assert unknown.returncode == 2 and "customers" in unknown.stderr


def _cells(data: bytes) -> list[tuple]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def test_big_export_read_in_a_second_process_gives_the_same_file(app, world, client, make_user, tmp_path):
    """From CRM_EXPORT_FORK_ROWS matching rows a forked process reads while the file is
    written: the file holds the same rows, scope, masking and types as the one-process export."""
    tag, _ = world
    username = make_user("sales_supervisor", "sales")
    browser = as_user(client, username)
    args = {**by_name(tag), "_oc_CustomerModelView": "name", "_od_CustomerModelView": "desc"}
    for fmt in ("xlsx", "csv"):
        ui = ui_export(browser, fmt, args)
        assert ui.status_code == 200
        out = tmp_path / f"forked.{fmt}"
        done = subprocess.run(flask_cmd("crm", "export", "customers", str(out), "--user", username,
                                        "--filter", urlencode(args)),
                              cwd=ROOT, env=subprocess_env(CRM_EXPORT_FORK_ROWS="0"), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1])["rows"] == 2
        if fmt == "csv":
            assert out.read_bytes() == ui.data
            assert PHONE not in ui.data.decode("utf-8-sig") and "138****5678" in ui.data.decode("utf-8-sig")
        else:
            assert _cells(out.read_bytes()) == _cells(ui.data)
            assert len(_cells(ui.data)) == 3


# -- big exports: a job, progress, a file only the requester gets ----------------------------

@pytest.fixture()
def small_threshold(app):
    old = app.config["CRM_EXPORT_SYNC_ROWS"]
    app.config["CRM_EXPORT_SYNC_ROWS"] = 2
    yield
    app.config["CRM_EXPORT_SYNC_ROWS"] = old


def _wait_export(app, export_id: int, timeout: float = 60):
    import time

    from app.extensions import db
    from app.models import ExportLog

    deadline = time.time() + timeout
    while time.time() < deadline:
        with app.app_context():
            log = db.session.get(ExportLog, export_id)
            if log.status in ("done", "failed"):
                return log
        time.sleep(0.3)
    raise TimeoutError("export job did not finish")


def test_big_export_runs_in_the_worker_and_only_the_requester_downloads_it(
        app, rq_worker, small_threshold, world, make_user, admin_client):
    from app.extensions import db
    from app.models import ExportLog

    tag, _ = world
    username = make_user("analytics_staff", "analytics")
    client = as_user(other_client(app), username)
    resp = ui_export(client, "xlsx", {**by_name(tag), "_oc_CustomerModelView": "name",
                                      "_od_CustomerModelView": "asc"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/myexports/list/")
    with app.app_context():
        export_id = db.session.query(ExportLog.id).join(ExportLog.user).filter_by(username=username).scalar()
    log = _wait_export(app, export_id)
    assert (log.status, log.channel, log.total, log.rows) == ("done", "job", 3, 3), log.error
    page = client.get("/myexports/list/").get_data(as_text=True)
    assert "完成" in page and f"/myexports/fetch/{export_id}" in page and 'class="crm-export-pending"' not in page
    got = client.get(f"/myexports/fetch/{export_id}")
    assert got.status_code == 200 and "attachment" in got.headers["Content-Disposition"]
    ws = openpyxl.load_workbook(io.BytesIO(got.data)).active
    assert [r[1].value for r in ws.iter_rows(min_row=2)] == sorted(f"范围{tag}{k}" for k in ("a", "boss", "far"))

    other = as_user(other_client(app), make_user("analytics_staff", "analytics"))
    assert other.get(f"/myexports/fetch/{export_id}").status_code == 404
    assert f"/myexports/fetch/{export_id}" not in other.get("/myexports/list/").get_data(as_text=True)
    assert admin_client.get(f"/myexports/fetch/{export_id}").status_code == 404  # admins neither


def test_my_exports_shows_progress_of_a_running_export_and_reloads(app, client, make_user):
    from app.extensions import appbuilder, db
    from app.models import ExportLog

    username = make_user("analytics_supervisor", "analytics")
    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        db.session.add(ExportLog(user_id=user.id, list_name="customers", format="xlsx", channel="job",
                                 status="running", total=200, rows=50, file_name="客户档案.xlsx"))
        db.session.commit()
    html = as_user(client, username).get("/myexports/list/").get_data(as_text=True)
    assert "执行中 25% (50 / 200)" in html and 'class="crm-export-pending"' in html and "location.reload" in html


# -- the log and the cleanup job ----------------------------------------------------------------

def test_every_export_is_logged_and_admins_read_the_log(app, world, admin_client, make_user):
    from app.extensions import db
    from app.models import ExportLog

    tag, _ = world
    username = make_user("sales_supervisor", "sales")
    client = as_user(other_client(app), username)
    assert ui_export(client, "xlsx", by_name(tag)).status_code == 200
    with app.app_context():
        log = db.session.query(ExportLog).join(ExportLog.user).filter_by(username=username).one()
        assert (log.list_name, log.format, log.channel, log.status, log.rows) == ("customers", "xlsx", "direct",
                                                                                    "done", 2)
        assert f"_flt_2_name={tag}" in log.filter and log.stored_name is None  # nothing kept on disk
    html = admin_client.get("/exportlogmodelview/list/?psize_ExportLogModelView=100").get_data(as_text=True)
    assert f"_flt_2_name={tag}" in html and "导出记录" in html
    assert client.get("/exportlogmodelview/list/").status_code == 403


def test_cleanup_job_deletes_expired_files(app, client, make_user):
    from app.extensions import appbuilder, db
    from app.models import ExportLog
    from app.services.export import export_dir

    username = make_user("analytics_staff", "analytics")
    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        stored = f"{uuid.uuid4().hex}.csv"
        (export_dir() / stored).write_bytes(b"\xef\xbb\xbfa\r\n")
        log = ExportLog(user_id=user.id, list_name="customers", format="csv", channel="job", status="done",
                        total=1, rows=1, file_name="客户档案.csv", stored_name=stored,
                        expires_at=datetime.utcnow() - timedelta(minutes=1))
        db.session.add(log)
        db.session.commit()
        export_id = log.id
    as_user(client, username)
    assert client.get(f"/myexports/fetch/{export_id}").status_code == 200
    ran = _flask("crm", "jobs", "run", "export_cleanup")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout.strip().splitlines()[-1])["result"] >= 1
    with app.app_context():
        assert db.session.get(ExportLog, export_id).status == "expired"
        assert not (export_dir() / stored).exists()
    assert client.get(f"/myexports/fetch/{export_id}").status_code == 404
