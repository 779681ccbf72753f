"""Contacts (联系人) and interactions (互动记录) through the same import as customers: clean files,
Chinese and English headers, the customer named by no. or by name, every problem with its row
and column (Chinese and English), duplicate contacts, modes, row scope, undo, templates, the CLI
and API giving the same report, and the wizard's choice of what to import."""
from __future__ import annotations

import io
import json
import subprocess
import uuid
from datetime import date, datetime, timedelta
from urllib.parse import quote

import openpyxl
from flask_babel import force_locale

from conftest import ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env
from test_import import codes, csv_file, run_import, uniq, wait_until, xlsx


def phone() -> str:
    """A mobile of its own (phones are a dedupe key across tests)."""
    return f"16{uuid.uuid4().int % 10 ** 9:09d}"


def landline() -> str:
    return f"021-6{uuid.uuid4().int % 10 ** 7:07d}"


def make_customers(app, tmp_path, *names, username=None, person=False):
    """Customers imported the usual way; returns {name: customer no.}."""
    from app.extensions import db
    from app.models import Customer

    rows = [["客户名称", "客户性质"]] + [[n, "个人" if person else "单位"] for n in names]
    report = run_import(app, csv_file(tmp_path / f"c{uuid.uuid4().hex[:6]}.csv", rows), username=username)
    assert report["status"] == "done", report
    with app.app_context():
        return dict(db.session.query(Customer.name, Customer.customer_no).filter(Customer.name.in_(names)).all())


def contacts_of(app, customer_no):
    from app.extensions import db
    from app.models import Contact, Customer

    with app.app_context():
        return {c.name: (c.phone, c.title, c.email, c.is_primary) for c in db.session.query(Contact).join(Customer)
                .filter(Customer.customer_no == customer_no)}


def in_english(app, batch_id):
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import report

    with app.test_request_context(), force_locale("en"):
        return report(db.session.get(ImportBatch, batch_id))


# -- contacts ------------------------------------------------------------------------------------------

def test_contacts_clean_file_by_no_and_by_name_with_synonyms_and_primary(app, tmp_path, admin_client):
    a, b = uniq("联系人客户"), uniq("联系人客户")
    nos = make_customers(app, tmp_path, a, b)
    p1, p2, p3, fixed = phone(), phone(), phone(), landline()
    path = xlsx(tmp_path / "contacts.xlsx", [
        ["客户编号", "客户名称", "姓名", "职务", "手机", "邮箱", "是否主要联系人", "微信"],
        [nos[a], None, "王芳", "采购经理", p1, "wf@example.com", "是", "wf_wx"],
        [None, a, "李雷", "工程师", fixed, None, "否", None],
        [None, b, "韩梅", None, p2, None, "Y", None],
    ])
    report = run_import(app, path, kind="contacts")
    assert report["status"] == "done", report
    assert (report["rows_total"], report["rows_valid"], report["rows_created"]) == (3, 3, 3)
    assert contacts_of(app, nos[a]) == {"王芳": (p1, "采购经理", "wf@example.com", True),
                                        "李雷": (fixed, "工程师", None, False)}  # leading zero kept
    assert contacts_of(app, nos[b])["韩梅"][3] is True
    page = admin_client.get(f"/contactmodelview/list/?_flt_0_customer={a}").get_data(as_text=True)
    assert "王芳" in page and "采购经理" in page  # the customer's list shows the imported contacts

    # English headers; a second primary for customer a takes over (one primary per customer)
    path = csv_file(tmp_path / "en.csv", [["Customer No.", "Contact", "Mobile", "Primary"], [nos[a], "Tom", p3, "yes"]])
    report = run_import(app, path, kind="contacts")
    assert report["status"] == "done" and report["rows_created"] == 1, report
    found = contacts_of(app, nos[a])
    assert found["Tom"][3] is True and found["王芳"][3] is False


def test_contact_customer_reference_and_value_problems_name_row_and_column(app, tmp_path):
    twin = uniq("同名")
    make_customers(app, tmp_path, twin, twin + "x")
    from app.extensions import db
    from app.models import Customer

    person = uniq("张三")
    run_import(app, csv_file(tmp_path / "p.csv", [["客户名称", "客户性质"], [person, "个人"], [person, "个人"]]))
    with app.app_context():
        assert db.session.query(Customer).filter_by(name=person).count() == 2
    path = xlsx(tmp_path / "bad.xlsx", [
        ["客户编号", "客户名称", "姓名", "手机", "是否主要联系人"],
        ["C-NONE-1", None, "甲", phone(), None],
        [None, person, "乙", phone(), None],
        [None, uniq("没有"), "丙", phone(), None],
        [None, twin, None, "12345", "也许"],
        [None, None, "丁", phone(), None],
    ])
    report = run_import(app, path, kind="contacts")
    assert report["status"] == "rejected" and report["rows_created"] == 0
    assert codes(report) == [
        (2, "客户编号", "not_found"), (3, "客户名称", "ambiguous_customer"), (4, "客户名称", "not_found"),
        (5, "姓名", "required"), (5, "手机", "bad_phone"), (5, "是否主要联系人", "bad_boolean"),
        (6, "客户名称", "required")]
    messages = {(e["row"], e["code"]): e["message"] for e in report["errors"]}
    assert "2 个客户名为" in messages[(3, "ambiguous_customer")] and "客户编号" in messages[(3, "ambiguous_customer")]
    english = {(e["row"], e["code"]): e["message"] for e in in_english(app, report["batch"])["errors"]}
    assert english[(3, "ambiguous_customer")] == f"2 customers are called '{person}': give the customer no."
    assert english[(2, "not_found")] == "There is no customer C-NONE-1."
    assert "is not a phone number" in english[(5, "bad_phone")]


def test_duplicate_contacts_in_file_and_stored_and_modes(app, tmp_path):
    a, b = uniq("重复"), uniq("重复")
    nos = make_customers(app, tmp_path, a, b)
    taken = phone()
    assert run_import(app, csv_file(tmp_path / "first.csv", [["客户编号", "姓名", "手机"], [nos[a], "老王", taken]]),
                      kind="contacts")["status"] == "done"
    same, good = phone(), phone()
    path = csv_file(tmp_path / "dups.csv", [
        ["客户编号", "姓名", "电话"],
        [nos[a], "小李", same],
        [nos[b], "小张", same],            # the same phone twice in the file
        [nos[a], "王二", taken],           # already a contact of this customer
        [nos[b], "王三", taken],           # belongs to another customer's contact
        [nos[b], "小赵", good],
    ])
    report = run_import(app, path, kind="contacts")
    assert report["status"] == "rejected" and report["rows_created"] == 0
    assert codes(report) == [(3, "电话", "duplicate_in_file"), (4, "电话", "duplicate_existing"),
                             (5, "电话", "duplicate_in_file"), (5, "电话", "duplicate_existing")]
    messages = [e["message"] for e in report["errors"]]
    assert "第 2 行" in messages[0] and "老王" in messages[1] and "第 4 行" in messages[2]
    assert nos[a] in messages[3] and "老王" in messages[3]
    assert set(contacts_of(app, nos[b])) == set()  # all or nothing: nothing saved
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import error_workbook

    with app.test_request_context():  # the error workbook: the rows, bad cells marked, a message column
        ws = openpyxl.load_workbook(io.BytesIO(error_workbook(db.session.get(ImportBatch, report["batch"])))).active
        assert [c.value for c in ws[1]] == ["客户编号", "姓名", "电话", "错误信息"] and ws.max_row == 6
        assert "与本文件第 2 行的电话相同" in ws["D3"].value
    report = run_import(app, path, kind="contacts", mode="valid")
    assert report["status"] == "done" and report["rows_created"] == 2 and report["rows_rejected"] == 3, report
    assert set(contacts_of(app, nos[b])) == {"小赵"} and "小李" in contacts_of(app, nos[a])


def test_contacts_only_for_customers_in_scope_and_supervisor_undoes(app, tmp_path, make_user, client):
    from app.extensions import db
    from app.models import Contact, FieldChange

    staff, other, boss = make_user("sales_staff", "sales"), make_user("sales_staff", "sales"), \
        make_user("sales_supervisor", "sales")
    mine, theirs = uniq("我的"), uniq("别人的")
    nos = make_customers(app, tmp_path, mine, username=staff)
    nos.update(make_customers(app, tmp_path, theirs, username=other))
    old = phone()
    assert run_import(app, csv_file(tmp_path / "o.csv", [["客户编号", "姓名", "手机", "主要联系人"],
                                                         [nos[mine], "原主联系人", old, "是"]]),
                      kind="contacts", username=staff)["status"] == "done"
    path = csv_file(tmp_path / "s.csv", [["客户编号", "客户名称", "姓名", "手机"], [nos[theirs], None, "甲", phone()],
                                         [None, theirs, "乙", phone()]])
    report = run_import(app, path, kind="contacts", username=staff)
    assert codes(report) == [(2, "客户编号", "out_of_scope"), (3, "客户名称", "not_found")]
    report = run_import(app, csv_file(tmp_path / "ok.csv", [["客户编号", "姓名", "手机", "主要联系人"],
                                                            [nos[mine], "新主联系人", phone(), "是"],
                                                            [nos[mine], "普通", phone(), "否"]]),
                        kind="contacts", username=staff)
    # the demoted primary is no row of the file: 2 rows created, none updated or rejected
    assert [report[k] for k in ("status", "rows_created", "rows_updated", "rows_rejected")] == ["done", 2, 0, 0]
    assert contacts_of(app, nos[mine])["原主联系人"][3] is False

    login(client, staff, USER_PASSWORD)
    token = csrf_token(client.get("/import/").get_data(as_text=True))
    assert client.post(f"/api/v1/import/batches/{report['batch']}/undo",
                       headers={"X-CSRFToken": token}).status_code == 403
    client.get("/logout/")
    login(client, boss, USER_PASSWORD)
    token = csrf_token(client.get("/import/").get_data(as_text=True))
    r = client.post(f"/api/v1/import/batches/{report['batch']}/undo", headers={"X-CSRFToken": token})
    assert r.status_code == 200 and (r.json["removed"], r.json["restored"]) == (2, 1)
    assert contacts_of(app, nos[mine]) == {"原主联系人": (old, None, None, True)}  # exactly the batch's rows
    with app.app_context():
        deleted = db.session.query(FieldChange).filter_by(entity="contact", action="delete",
                                                          customer_no=nos[mine]).count()
        assert deleted >= 2 and db.session.query(Contact).filter_by(name="新主联系人").count() == 0


# -- interactions ----------------------------------------------------------------------------------

def interactions_of(app, customer_no):
    from app.extensions import db
    from app.models import Customer, Interaction

    with app.app_context():
        return [(i.occurred_at, getattr(i.kind, "code", None), i.key_points, getattr(i.result, "code", None),
                 i.next_step, i.owner.username, [c.name for c in i.contacts])
                for i in db.session.query(Interaction).join(Customer).filter(Customer.customer_no == customer_no)
                .order_by(Interaction.occurred_at)]


def last_contact(app, customer_no):
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        return db.session.query(Customer.last_contact_at).filter_by(customer_no=customer_no).scalar()


def history_of(app, customer_no):
    """修改记录 of a customer's interactions and last contact time: (action, entity, field, new value)."""
    from app.extensions import db
    from app.models import FieldChange

    with app.app_context():
        return [(c.action, c.entity, c.field, c.new_value if c.entity == "customer" else None)
                for c in db.session.query(FieldChange).filter(
                    FieldChange.customer_no == customer_no, FieldChange.entity.in_(("interaction", "customer")),
                    FieldChange.field.in_(("imported", "last_contact_at"))).order_by(FieldChange.id)
                if c.entity == "interaction" or c.field == "last_contact_at"]


def test_interactions_import_moves_last_contact_links_contacts_and_undo_restores(app, tmp_path, admin_client,
                                                                                 make_user):
    a, b = uniq("互动客户"), uniq("互动客户")
    nos = make_customers(app, tmp_path, a, b)
    sales = make_user("sales_staff", "sales")
    assert run_import(app, csv_file(tmp_path / "c.csv", [["客户编号", "姓名", "手机"], [nos[a], "王经理", phone()]]),
                      kind="contacts")["status"] == "done"
    path = xlsx(tmp_path / "i.xlsx", [
        ["客户编号", "客户名称", "时间", "方式", "要点", "结果", "下一步", "记录人", "联系人"],
        [nos[a], None, datetime(2024, 5, 1, 14, 30), "拜访", "介绍新产品", "待跟进", "寄样品", sales, "王经理"],
        [None, b, "2024-06-02 09:15", "Phone call", "确认报价", "已解决", None, None, None],
        [nos[a], None, 45000.75, "电话", "回访", None, None, None, None],  # an Excel serial with a time
    ])
    report = run_import(app, path, kind="interactions", username="admin")
    assert report["status"] == "done" and report["rows_created"] == 3, report
    assert interactions_of(app, nos[a]) == [
        (datetime(2023, 3, 15, 18, 0), "phone", "回访", None, None, "admin", []),
        (datetime(2024, 5, 1, 14, 30), "visit", "介绍新产品", "follow_up", "寄样品", sales, ["王经理"])]
    assert interactions_of(app, nos[b])[0][:4] == (datetime(2024, 6, 2, 9, 15), "phone", "确认报价", "resolved")
    assert last_contact(app, nos[a]) == datetime(2024, 5, 1, 14, 30)  # as saving one in the UI does
    assert last_contact(app, nos[b]) == datetime(2024, 6, 2, 9, 15)
    # the list filtered by the customer (a whole suite's interactions are newer than 2024)
    assert "介绍新产品" in admin_client.get(f"/interactionmodelview/list/?_flt_0_customer={a}").get_data(as_text=True)
    assert history_of(app, nos[a]) == [("create", "interaction", "imported", None)] * 2 + [
        ("update", "customer", "last_contact_at", "2024-05-01 14:30:00")]

    token = csrf_token(admin_client.get("/import/").get_data(as_text=True))
    r = admin_client.post(f"/api/v1/import/batches/{report['batch']}/undo", headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.json["removed"] == 3
    assert interactions_of(app, nos[a]) == [] and last_contact(app, nos[a]) is None
    assert interactions_of(app, nos[b]) == [] and last_contact(app, nos[b]) is None
    assert history_of(app, nos[a])[3:] == [("delete", "interaction", "imported", None)] * 2 + [
        ("update", "customer", "last_contact_at", None)]


def test_interaction_problems_in_chinese_and_english_and_1904_workbook(app, tmp_path):
    a = uniq("互动错")
    nos = make_customers(app, tmp_path, a)
    future = datetime.now() + timedelta(days=3)
    path = xlsx(tmp_path / "bad.xlsx", [
        ["Customer No.", "Time", "Kind", "Key Points", "Owner", "Contact"],
        [nos[a], "2024-13-01", "拜方", "x", None, None],
        [nos[a], future.strftime("%Y-%m-%d %H:%M"), "电话", None, "nobody-here", "不存在的人"],
        [nos[a], date(2024, 1, 2), "电话", "ok", None, None],
    ])
    report = run_import(app, path, kind="interactions")
    assert report["status"] == "rejected" and report["rows_created"] == 0
    assert codes(report) == [(2, "Time", "bad_datetime"), (2, "Kind", "unknown_choice"), (3, "Key Points", "required"),
                             (3, "Owner", "unknown_owner"), (3, "Time", "future_date"), (3, "Contact", "unknown_contact")]
    zh = {(e["row"], e["code"]): e["message"] for e in report["errors"]}
    en = {(e["row"], e["code"]): e["message"] for e in in_english(app, report["batch"])["errors"]}
    assert "拜访" in zh[(2, "unknown_choice")] and "did you mean 拜访" in en[(2, "unknown_choice")]
    assert "将来" in zh[(3, "future_date")] and "in the future" in en[(3, "future_date")]
    assert "2024-13-01" in en[(2, "bad_datetime")] and "不是日期" in zh[(2, "bad_datetime")]
    # a 1904 workbook's serial dates (Mac Excel): 2024-05-01 is serial 43951 there
    path = xlsx(tmp_path / "mac.xlsx", [["客户编号", "时间", "要点"], [nos[a], 43951, "Mac 表格"]], date1904=True)
    report = run_import(app, path, kind="interactions")
    assert report["status"] == "done", report
    assert interactions_of(app, nos[a])[0][0] == datetime(2024, 5, 1)


def test_missing_customer_column_and_update_by_refused(app, tmp_path):
    path = csv_file(tmp_path / "m.csv", [["姓名", "手机"], ["甲", phone()]])
    report = run_import(app, path, kind="contacts")
    assert report["status"] == "rejected" and codes(report) == [(1, "", "missing_column")]
    assert "客户编号 / 客户名称" in report["errors"][0]["message"]
    report = run_import(app, path, kind="contacts", update_by="no")  # a customers' key
    assert report["status"] == "rejected" and report["errors"][0]["code"] == "bad_option"
    assert "mobile" in report["errors"][0]["message"]


# -- CLI, API, templates, wizard ----------------------------------------------------------------------------

def test_cli_json_equals_api_report_for_contacts_and_interactions(app, tmp_path, admin_client):
    a = uniq("接口")
    nos = make_customers(app, tmp_path, a)
    files = {"contacts": xlsx(tmp_path / "c.xlsx", [["客户编号", "姓名", "手机"], [nos[a], "甲", "123"],
                                                     [uniq("没有"), "乙", phone()]]),
             "interactions": xlsx(tmp_path / "i.xlsx", [["客户名称", "时间", "要点"], [a, "昨天", "x"],
                                                         [a, "2024-01-01", None]])}
    token = csrf_token(admin_client.get("/import/").get_data(as_text=True))
    for kind, path in files.items():
        cli = subprocess.run(flask_cmd("crm", "import", kind, str(path), "--json", "--user", "admin"),
                             cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1, cli.stderr
        from_cli = json.loads(cli.stdout)
        with open(path, "rb") as fh:
            resp = admin_client.post(f"/api/v1/import/{kind}", data={"file": (fh, path.name)},
                                     headers={"X-CSRFToken": token}, content_type="multipart/form-data")
        assert resp.status_code == 200
        from_api = resp.json
        assert from_cli.pop("batch") != from_api.pop("batch")
        assert from_cli == from_api and from_cli["status"] == "rejected" and len(from_cli["errors"]) == 2
        assert from_cli["kind"] == kind
        assert set(from_cli) >= {"rows_total", "rows_valid", "rows_created", "rows_updated", "errors"}
        assert set(from_cli["errors"][0]) == {"row", "column", "value", "code", "message"}


def test_templates_per_kind_with_dropdowns_and_notes(app, admin_client):
    for kind, headers, listed in (("contacts", ["客户编号", "客户名称", "联系人 *", "职务", "电话"], None),
                                  ("interactions", ["客户编号", "客户名称", "时间 *", "类别", "沟通要点 *"], "拜访")):
        r = admin_client.get(f"/import/template.xlsx?kind={kind}")
        assert r.status_code == 200
        title = {"contacts": "联系人导入模板.xlsx", "interactions": "互动记录导入模板.xlsx"}[kind]
        assert quote(title) in r.headers["Content-Disposition"]  # the file is named in the user's language
        wb = openpyxl.load_workbook(io.BytesIO(r.data))
        ws = wb.worksheets[0]
        assert [c.value for c in ws[2]][:5] == headers
        assert "客户编号" in (ws["A1"].value or "") and ws["C1"].value.startswith("必填")
        validations = ws.data_validations.dataValidation
        assert validations  # dropdowns: 是/否 for contacts, the dictionary lists for interactions
        if listed:
            assert listed in [c.value for c in wb["lists"]["A"]]


def test_wizard_kind_choice_end_to_end(app, admin_client, rq_worker, tmp_path):
    a = uniq("向导联系人")
    nos = make_customers(app, tmp_path, a)
    page = admin_client.get("/import/").get_data(as_text=True)
    assert 'name="kind" value="contacts"' in page and 'name="kind" value="interactions"' in page
    assert "互动记录" in page and "download-template-contacts" in page
    path = csv_file(tmp_path / "w.csv", [["客户编号", "联系人姓名", "手机号码"], [nos[a], "向导甲", phone()],
                                         [nos[a], "向导乙", phone()]])
    with open(path, "rb") as fh:
        r = admin_client.post("/import/upload", data={"file": (fh, "联系人.csv"), "kind": "contacts",
                                                      "csrf_token": csrf_token(page)},
                              content_type="multipart/form-data")
    assert r.status_code == 302 and "/mapping" in r.headers["Location"]
    mapping_page = admin_client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'value="phone" selected' in mapping_page
    assert '<option value="mobile"' in mapping_page and 'value="credit_code"' not in mapping_page  # its own key
    form = {"csrf_token": csrf_token(mapping_page), "map_0": "customer_no", "map_1": "name", "map_2": "phone",
            "mode": "all"}
    r = admin_client.post(r.headers["Location"], data=form)
    batch_url = r.headers["Location"]
    batch_id = int(batch_url.rstrip("/").split("/")[-1])

    def status():
        return admin_client.get(f"/import/{batch_id}/progress").json["status"]

    wait_until(lambda: status() == "checked", 60, "the check")
    assert contacts_of(app, nos[a]) == {}
    page = admin_client.get(batch_url).get_data(as_text=True)
    assert '<span id="batch-kind">联系人</span>' in page
    admin_client.post(f"/import/{batch_id}/run", data={"csrf_token": csrf_token(page)})
    wait_until(lambda: status() == "done", 60, "the import")
    assert set(contacts_of(app, nos[a])) == {"向导甲", "向导乙"}
    page = admin_client.get("/import/").get_data(as_text=True)
    assert f'data-batch="{batch_id}" data-kind="contacts"' in page
    r = admin_client.post(f"/import/{batch_id}/undo", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "2 条记录已删除" in r.get_data(as_text=True) and contacts_of(app, nos[a]) == {}
