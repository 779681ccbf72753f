"""Re-importing a contact sheet updates the contacts (update mode, update_by mobile): the phone
finds the contact of the row's customer, changed cells are written and blank ones keep their
values, a new primary takes over, a phone of another customer's contact stays an error with its
row and column, new phones create contacts; the CLI, the API and the wizard give the same report;
undo restores; only a role that may edit contacts may update them."""
from __future__ import annotations

import json
import subprocess
import uuid

from conftest import ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env
from test_import import codes, csv_file, run_import, uniq, wait_until, xlsx
from test_import_kinds import contacts_of, in_english, make_customers, phone


def seed_contacts(app, tmp_path, rows):
    path = csv_file(tmp_path / f"seed{uuid.uuid4().hex[:6]}.csv",
                    [["客户编号", "姓名", "职务", "手机", "邮箱", "是否主要联系人"]] + rows)
    report = run_import(app, path, kind="contacts")
    assert report["status"] == "done", report


def history(app, customer_no):
    """The contacts' field history of a customer: (name, field, old, new), oldest first."""
    from app.extensions import db
    from app.models import FieldChange

    with app.app_context():
        return [(c.record_label, c.field, c.old_value, c.new_value) for c in db.session.query(FieldChange).filter(
            FieldChange.customer_no == customer_no, FieldChange.entity == "contact",
            FieldChange.action == "update").order_by(FieldChange.id)]


def post_import(client, token, path, **form):
    with open(path, "rb") as fh:
        return client.post("/api/v1/import/contacts", data={"file": (fh, path.name), **form},
                           headers={"X-CSRFToken": token}, content_type="multipart/form-data")


def test_update_by_mobile_cli_api_and_wizard_same_report_undo_restores(app, tmp_path, admin_client, rq_worker):
    a, b = uniq("更新联系人"), uniq("别家")
    nos = make_customers(app, tmp_path, a, b)
    p1, p2, p3, p4 = phone(), phone(), phone(), phone()
    seed_contacts(app, tmp_path, [[nos[a], "王芳", "采购经理", p1, "wf@example.com", "是"],
                                       [nos[a], "李雷", "工程师", p2, None, "否"],
                                       [nos[b], "韩梅", "经理", p3, None, "是"]])
    original = contacts_of(app, nos[a])
    path = xlsx(tmp_path / "again.xlsx", [
        ["客户编号", "姓名", "职务", "手机", "邮箱", "是否主要联系人"],
        [nos[a], "王芳", "采购总监", p1, None, None],          # title corrected; blank e-mail kept
        [nos[a], None, None, p2, "ll@example.com", "是"],      # e-mail added, made primary; name kept
        [nos[a], "新人", "助理", p4, None, None],               # a new phone: a new contact
        [nos[a], "冒名", None, p3, None, None],                 # 韩梅's phone, another customer's contact
    ])
    cli = subprocess.run(flask_cmd("crm", "import", "contacts", str(path), "--update-by", "mobile", "--mode", "valid",
                                   "--json", "--user", "admin"),
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads(cli.stdout)
    assert (from_cli["status"], from_cli["update_by"]) == ("done", "phone")
    assert [from_cli[k] for k in ("rows_total", "rows_valid", "rows_created", "rows_updated", "rows_rejected")] == \
        [4, 3, 1, 2, 1]
    assert codes(from_cli) == [(5, "手机", "duplicate_existing")]
    assert nos[b] in from_cli["errors"][0]["message"] and "韩梅" in from_cli["errors"][0]["message"]
    english = in_english(app, from_cli["batch"])["errors"][0]["message"]
    assert english.startswith("This phone belongs to contact 韩梅 of customer")
    updated = {"王芳": (p1, "采购总监", "wf@example.com", False), "李雷": (p2, "工程师", "ll@example.com", True),
               "新人": (p4, "助理", None, False)}
    assert contacts_of(app, nos[a]) == updated
    assert contacts_of(app, nos[b]) == {"韩梅": (p3, "经理", None, True)}
    assert history(app, nos[a]) == [("王芳", "is_primary", "true", "false"), ("王芳", "title", "采购经理", "采购总监"),
                                    ("李雷", "email", None, "ll@example.com"), ("李雷", "is_primary", "false", "true")]
    page = admin_client.get(f"/contactmodelview/list/?_flt_0_customer={a}").get_data(as_text=True)
    assert "采购总监" in page  # what the contacts list shows

    token = csrf_token(admin_client.get("/import/").get_data(as_text=True))

    def undo(batch_id):
        r = admin_client.post(f"/api/v1/import/batches/{batch_id}/undo", headers={"X-CSRFToken": token})
        assert r.status_code == 200 and (r.json["removed"], r.json["restored"]) == (1, 3), r.json
        assert contacts_of(app, nos[a]) == original  # the previous values, the old primary back

    undo(from_cli["batch"])
    assert sorted(history(app, nos[a])[4:]) == [("李雷", "email", "ll@example.com", None),
                                                ("李雷", "is_primary", "true", "false"),
                                                ("王芳", "is_primary", "false", "true"), ("王芳", "title", "采购总监", "采购经理")]

    r = post_import(admin_client, token, path, update_by="mobile", mode="valid")
    assert r.status_code == 200
    from_api = r.json
    assert from_cli.pop("batch") != from_api.pop("batch") and from_api == from_cli
    assert contacts_of(app, nos[a]) == updated
    undo(r.json["batch"])

    # the wizard: the contacts' own update key offered, the same report
    mapping_url, mapping_page = wizard_mapping(admin_client, path)
    assert '<option value="mobile"' in mapping_page and "按手机号匹配并更新" in mapping_page
    assert "已有联系人" in mapping_page and 'value="credit_code"' not in mapping_page
    form = {"csrf_token": csrf_token(mapping_page), "mode": "valid", "update_by": "mobile",
            **{f"map_{i}": key for i, key in enumerate(["customer_no", "name", "title", "phone", "email", "is_primary"])}}
    batch_url = admin_client.post(mapping_url, data=form).headers["Location"]
    batch_id = int(batch_url.rstrip("/").split("/")[-1])

    def status():
        return admin_client.get(f"/import/{batch_id}/progress").json["status"]

    wait_until(lambda: status() == "checked", 60, "the check")
    assert contacts_of(app, nos[a]) == original  # the check changes nothing
    admin_client.post(f"/import/{batch_id}/run", data={"csrf_token": csrf_token(admin_client.get(batch_url).get_data(
        as_text=True))})
    wait_until(lambda: status() == "done", 60, "the import")
    assert '<span id="batch-update-by">按手机号匹配并更新</span>' in admin_client.get(batch_url).get_data(as_text=True)
    from_wizard = admin_client.get(f"/api/v1/import/batches/{batch_id}").json
    assert {k: from_wizard[k] for k in from_cli} == {**from_cli, "file_name": path.name}
    assert contacts_of(app, nos[a]) == updated


def test_update_mode_dry_run_all_mode_new_names_and_bad_keys(app, tmp_path):
    a = uniq("更新检查")
    nos = make_customers(app, tmp_path, a)
    p1, p2 = phone(), phone()
    seed_contacts(app, tmp_path, [[nos[a], "老张", "经理", p1, "z@example.com", "是"]])
    before = contacts_of(app, nos[a])
    # no 姓名 column: the row matching 老张 updates him; a new phone needs a name
    path = csv_file(tmp_path / "u.csv", [["客户名称", "电话", "邮箱"], [a, p1, "new@example.com"], [a, p2, None]])
    report = run_import(app, path, kind="contacts", update_by="mobile")
    assert report["status"] == "rejected" and codes(report) == [(3, "", "required")]
    assert "联系人" in report["errors"][0]["message"]
    assert contacts_of(app, nos[a]) == before  # all or nothing
    report = run_import(app, path, kind="contacts", update_by="mobile", mode="valid", dry_run=True)
    assert (report["status"], report["rows_valid"], report["rows_rejected"]) == ("checked", 1, 1)
    assert contacts_of(app, nos[a]) == before  # a dry run saves nothing
    report = run_import(app, path, kind="contacts", update_by="mobile", mode="valid")
    assert (report["status"], report["rows_created"], report["rows_updated"]) == ("done", 0, 1)
    assert contacts_of(app, nos[a]) == {"老张": (p1, "经理", "new@example.com", True)}
    # without update mode the phone is a duplicate, as before
    named = csv_file(tmp_path / "d.csv", [["客户名称", "姓名", "电话"], [a, "老张", p1]])
    assert codes(run_import(app, named, kind="contacts")) == [(2, "电话", "duplicate_existing")]
    # update mode needs the phone column; other keys, other kinds refused with the choices named
    report = run_import(app, csv_file(tmp_path / "n.csv", [["客户名称", "姓名"], [a, "老张"]]), kind="contacts",
                        update_by="mobile")
    assert codes(report) == [(1, "", "missing_column")] and "电话" in report["errors"][0]["message"]
    report = run_import(app, path, kind="contacts", update_by="credit_code")
    assert report["errors"][0]["code"] == "bad_option" and "mobile" in report["errors"][0]["message"]
    report = run_import(app, path, kind="interactions", update_by="mobile")
    assert report["errors"][0]["code"] == "bad_option" and "互动记录" in report["errors"][0]["message"]


def wizard_mapping(client, path) -> tuple[str, str]:
    """Upload a contacts file in the wizard: its mapping step's URL and page."""
    page = client.get("/import/").get_data(as_text=True)
    with open(path, "rb") as fh:
        r = client.post("/import/upload", data={"file": (fh, path.name), "kind": "contacts",
                                                "csrf_token": csrf_token(page)}, content_type="multipart/form-data")
    return r.headers["Location"], client.get(r.headers["Location"]).get_data(as_text=True)


def sales_staff_without_edit(app, view: str) -> str:
    """A new user whose role is 销售部普通员工's permissions without can_edit on VIEW."""
    from app.extensions import appbuilder, db
    from app.models import SeedRecord

    tag = uuid.uuid4().hex[:6]
    with app.app_context():
        sm = appbuilder.sm
        base = db.session.get(sm.role_model, db.session.query(SeedRecord).filter_by(
            kind="role", key="sales_staff").one().record_id)
        role = sm.add_role(f"无编辑{tag}")
        role.permissions = [p for p in base.permissions
                            if not (p.view_menu.name == view and p.permission.name == "can_edit")]
        db.session.commit()
        user = f"adder{tag}"
        assert sm.add_user(user, "测试", "只增", f"{user}@test.invalid", role, password=USER_PASSWORD)
    return user


def test_only_roles_that_edit_contacts_may_update_them(app, tmp_path, client, make_user):
    """A role that may import and add contacts but not edit them: create-only imports only (API,
    wizard); a role with can_edit may update."""
    adder = sales_staff_without_edit(app, "ContactModelView")
    staff = make_user("sales_staff", "sales")
    (_, no), = make_customers(app, tmp_path, uniq("权限"), username=adder).items()
    (_, mine), = make_customers(app, tmp_path, uniq("权限"), username=staff).items()
    p1, p2 = phone(), phone()
    seed_contacts(app, tmp_path, [[no, "甲", "职员", p1, None, None], [mine, "丙", "职员", p2, None, None]])
    path = csv_file(tmp_path / "p.csv", [["客户编号", "姓名", "职务", "手机"], [no, "甲", "主管", p1]])

    login(client, adder, USER_PASSWORD)
    token = csrf_token(client.get("/import/").get_data(as_text=True))
    r = post_import(client, token, path, update_by="mobile")
    assert r.status_code == 403 and r.json["errors"][0]["code"] == "not_allowed"
    assert "无权修改联系人" in r.json["errors"][0]["message"]
    r = post_import(client, token, csv_file(tmp_path / "new.csv", [["客户编号", "姓名", "手机"], [no, "乙", phone()]]))
    assert r.status_code == 200 and r.json["rows_created"] == 1  # adding contacts is still allowed
    mapping_url, mapping_page = wizard_mapping(client, path)
    assert 'name="update_by"' not in mapping_page  # not offered
    r = client.post(mapping_url, data={"csrf_token": csrf_token(mapping_page), "update_by": "mobile", "mode": "all"},
                    follow_redirects=True)
    assert "无权修改联系人" in r.get_data(as_text=True)
    assert contacts_of(app, no)["甲"][1] == "职员"
    client.get("/logout/")

    login(client, staff, USER_PASSWORD)  # 销售部普通员工 may edit contacts
    token = csrf_token(client.get("/import/").get_data(as_text=True))
    r = post_import(client, token, csv_file(tmp_path / "m.csv", [["客户编号", "职务", "手机"], [mine, "主管", p2]]),
                    update_by="mobile")
    assert r.status_code == 200 and r.json["rows_updated"] == 1, r.json
    assert contacts_of(app, mine)["丙"][1] == "主管"


def test_only_roles_that_edit_customers_may_update_them(app, tmp_path, client):
    """The same rule for customers: without can_edit on 客户档案 an update import (by customer no.)
    is refused and the customer keeps its values; a create-only import still works."""
    adder = sales_staff_without_edit(app, "CustomerModelView")
    name = uniq("只增客户")
    (_, no), = make_customers(app, tmp_path, name, username=adder).items()
    login(client, adder, USER_PASSWORD)
    token = csrf_token(client.get("/import/").get_data(as_text=True))
    path = csv_file(tmp_path / "u.csv", [["客户编号", "客户名称", "所属行业"], [no, name + "改", "制造业"]])
    with open(path, "rb") as fh:
        r = client.post("/api/v1/import/customers", data={"file": (fh, path.name), "update_by": "no"},
                        headers={"X-CSRFToken": token}, content_type="multipart/form-data")
    assert r.status_code == 403 and r.json["errors"][0]["code"] == "not_allowed", r.json
    assert "无权修改客户" in r.json["errors"][0]["message"]
    r = client.get(f"/api/v1/customer/?q=(filters:!((col:customer_no,opr:eq,value:'{no}')))")
    assert [c["name"] for c in r.json["result"]] == [name]
