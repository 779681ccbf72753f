"""Every export keeps the viewer's row scope, column scope and masking: user by user, the file
(the list's 导出 button, and `flask crm export --user`) holds exactly the rows that user's list
shows with the same filters, only the columns the list shows that user, and every contact value
masked as the list masks it. Data is this module's own (a tag in every name and number): the
database is shared by the whole suite."""
from __future__ import annotations

import io
import re
import subprocess
import uuid
from datetime import datetime, timedelta
from html import unescape

import openpyxl
import pytest

from conftest import ROOT, as_system, flask_cmd, subprocess_env
from test_custom_fields import add_field  # noqa: F401 (fixture)
from test_export import _wait_export, as_user, other_client, small_threshold, ui_export  # noqa: F401 (fixture)

PHONE, EMAIL, ID_NUMBER = "13912348765", "qian.er@example.com", "110101199003071234"
CUSTOM_PHONE = "13698761234"

# who may press 导出 on the lists of ROW_CASES (seeds/roles.yaml); the others get the file from the
# command line only
EXPORTERS = {"sales_boss", "boss_far", "service_boss", "analyst"}


def _item(type_key: str, code: str):
    from app.extensions import db
    from app.models import DictionaryItem

    return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one()


@pytest.fixture(scope="module")
def world(app, make_user_module):
    """Four customers, one per owner: a salesman of 销售部 (s), a salesman filed in 客服部 (f), the
    销售部 supervisor (b) and an analyst (a); per customer a service record, a follow-up plan and
    a feedback; a ticket handled by a 客服部 agent; a survey and a revisit per feedback/ticket."""
    from app.extensions import appbuilder, db
    from app.models import (Contact, Customer, Feedback, FollowupPlan, Interaction, Revisit, ServiceRecord, Survey,
                            Task, Ticket)
    from app.services.numbering import next_number

    tag = uuid.uuid4().hex[:6]
    make = make_user_module
    users = {"seller": make("sales_staff", "sales"), "seller_far": make("sales_staff", "service"),
             "sales_boss": make("sales_supervisor", "sales"), "boss_far": make("sales_supervisor", "service"),
             "agent": make("service_staff", "service"), "service_boss": make("service_supervisor", "service"),
             "analyst": make("analytics_staff", "analytics")}
    owners = {"s": "seller", "f": "seller_far", "b": "sales_boss", "a": "analyst"}
    due = datetime(2031, 3, 4, 5, 6)
    with as_system(app):
        u = {k: appbuilder.sm.find_user(username=v) for k, v in users.items()}
        cust, fb = {}, {}
        for i, (k, owner) in enumerate(owners.items()):
            c = Customer(name=f"导出范围{tag}{k}", customer_no=next_number("customer"), owner_id=u[owner].id,
                         department_id=u[owner].department_id, level=_item("customer_level", "A"))
            db.session.add(c)
            db.session.flush()
            cust[k] = c
            db.session.add(Contact(customer_id=c.id, name=f"联系{tag}{k}", phone=PHONE, email=EMAIL, is_primary=True))
            db.session.add(ServiceRecord(service_no=f"S{tag}{k}", customer_id=c.id, kind=_item("service_kind", "after_sales"),
                                         content="上门", progress="in_progress", handler_id=u["agent"].id,
                                         score=i + 2, occurred_at=due - timedelta(days=i)))
            db.session.add(FollowupPlan(customer_id=c.id, stage=_item("followup_stage", "proposal" if k in "sf" else "needs"),
                                        assignee_id=u[owner].id, remind_before_minutes=30 + i, active=True))
            fb[k] = Feedback(feedback_no=f"F{tag}{k}", customer_id=c.id, channel="staff", content=f"{tag} 反馈",
                             phone=PHONE, email=EMAIL, status="processing", submitted_at=due,
                             handler_id=u["seller_far"].id if k == "b" else None)
            db.session.add(fb[k])
        ticket = Ticket(ticket_no=f"W{tag}t", customer_id=cust["s"].id, title=f"{tag} 工单",
                        type=_item("ticket_type", "repair"), priority=_item("priority", "high"), status="in_progress",
                        handler_id=u["agent"].id, department_id=u["agent"].department_id, resolution_due=due)
        db.session.add(ticket)
        # a 销售部 ticket handled by the 客服部 supervisor: in their 我的工单, in 销售部's ticket scope
        db.session.add(Ticket(ticket_no=f"W{tag}u", customer_id=cust["b"].id, title=f"{tag} 工单",
                              type=_item("ticket_type", "repair"), priority=_item("priority", "low"), status="assigned",
                              handler_id=u["service_boss"].id, department_id=u["sales_boss"].department_id,
                              resolution_due=due))
        db.session.add(Interaction(customer_id=cust["s"].id, occurred_at=due, kind=_item("interaction_kind", "phone"),
                                   key_points=f"{tag} 通话", owner_id=u["seller"].id))
        for who in ("sales_boss", "service_boss", "analyst", "agent"):
            db.session.add(Task(title=f"{tag} 任务", customer_id=cust["s"].id, assignee_id=u[who].id, due_at=due))
        db.session.flush()
        subjects = [("feedback", f.id, f.feedback_no) for f in (fb["s"], fb["f"], fb["b"])] + [
            ("ticket", ticket.id, ticket.ticket_no)]
        # a revisit is also its assignee's: the 销售部 supervisor gets the 客服部 customer's one
        assignees = {f"F{tag}s": "seller", f"F{tag}f": "sales_boss", f"F{tag}b": "sales_boss", f"W{tag}t": "agent"}
        for i, (kind, sid, no) in enumerate(subjects):
            s = Survey(subject_kind=kind, subject_id=sid, subject_no=no, handler_id=u["agent"].id, expires_at=due,
                       answered_at=due, score=1 + i % 2, comment=f"{tag} 评价", sent_to=PHONE)
            db.session.add(s)
            db.session.flush()
            db.session.add(Revisit(subject_kind=kind, subject_id=sid, subject_no=no, survey_id=s.id,
                                   assignee_id=u[assignees[no]].id, due_at=due + timedelta(hours=i),
                                   done_at=due if no == f"W{tag}t" else None))
        db.session.commit()
        stages = {code: _item("followup_stage", code).id for code in ("proposal", "needs")}
    return {"tag": tag, "users": users, "stages": stages}


# -- reading the list page and the files ---------------------------------------------------------

def _table(html: str) -> tuple[list[str], list[list[str]]]:
    """The list's header labels and its rows' cell texts (the data table only: not the search
    widget, which echoes the filter values)."""
    tables = [t for t in re.findall(r"<table[^>]*>(.*?)</table>", html, re.S) if "<thead" in t]
    assert len(tables) <= 1
    if not tables:  # an empty list: FAB shows no table
        return [], []

    def text(cell: str) -> str:
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
    head = [text(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", tables[0], re.S)]
    rows = [[text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", tables[0], re.S)]
    head = [h for h in head if h]
    return head, [r[-len(head):] for r in rows if r]  # without the row's buttons cell


def _listed(client, route: str, args: str) -> tuple[list[str], list[list[str]]]:
    resp = client.get(f"/{route}/list/?{args}")
    assert resp.status_code == 200, (route, resp.status_code)
    return _table(resp.get_data(as_text=True))


def _sheet(data: bytes) -> tuple[list[str], list[list]]:
    rows = [list(r) for r in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]
    return [str(h) for h in rows[0]], rows[1:]


def _matches(rows, pattern: str) -> set[str]:
    return {m for r in rows for cell in r if cell is not None for m in re.findall(pattern, str(cell))}


def _cli(app, name: str, username: str, args: str, out) -> tuple[list[str], list[list]]:
    """`flask crm export NAME OUT --user U --filter ARGS` (the command itself, in this process)."""
    done = app.test_cli_runner().invoke(args=["crm", "export", name, str(out), "--user", username, "--filter", args])
    assert done.exit_code == 0, done.output
    return _sheet(out.read_bytes())


def _web(client, route: str, args: str) -> tuple[list[str], list[list]]:
    resp = ui_export(client, "xlsx", args, view=route)
    assert resp.status_code == 200, (route, resp.status_code, resp.headers.get("Location"))
    return _sheet(resp.data)


# -- 1. rows: each user's file holds exactly their list's rows ----------------------------------

ROW_CASES = {
    # export name: (list route, {filter set: list URL arguments}, pattern of the test's row keys,
    #               {user: the keys their list shows without the second filter})
    "service_records": ("servicerecordmodelview",
                        {"mine": "_flt_0_service_no=S{tag}", "scored": "_flt_0_service_no=S{tag}&_flt_1_score=3"},
                        r"S{tag}[sfba]",
                        {"seller": "s", "seller_far": "f", "sales_boss": "sb", "boss_far": "f", "agent": "sfba",
                         "service_boss": "sfba", "analyst": "sfba"}),
    "followup_plans": ("followupplanmodelview",
                       {"mine": "_flt_0_customer=导出范围{tag}", "proposal": "_flt_0_customer=导出范围{tag}&_flt_0_stage={proposal}"},
                       r"导出范围{tag}[sfba]",
                       {"seller": "s", "seller_far": "f", "sales_boss": "sb", "boss_far": "f", "agent": "sfba",
                        "service_boss": "sfba", "analyst": "sfba"}),
    "surveys": ("surveymodelview",
                {"mine": "_flt_2_subject_no={tag}", "low": "_flt_2_subject_no={tag}&_flt_0_score=1"},
                r"[FW]{tag}[sfbt]",
                # feedback of customers in scope (or handled by the user), tickets in ticket scope
                {"sales_boss": "sb", "boss_far": "ft", "agent": "sfbt", "service_boss": "sfbt", "analyst": "sfbt"}),
    "revisits": ("revisitmodelview",
                 {"mine": "_flt_2_subject_no={tag}",  # assignee: the user name contains
                  "assigned": "_flt_2_subject_no={tag}&_flt_0_assignee=sales_supervisor"},
                 r"[FW]{tag}[sfbt]",
                 # plus the ones assigned to the user
                 {"sales_boss": "sfb", "boss_far": "ft", "agent": "sfbt", "service_boss": "sfbt"}),
}


@pytest.mark.parametrize("name", list(ROW_CASES))
def test_each_user_exports_exactly_the_rows_of_their_list(app, world, name, tmp_path):
    route, filter_sets, pattern, expected = ROW_CASES[name]
    tag, users = world["tag"], world["users"]
    pattern = pattern.format(tag=tag)
    narrowed = False
    for who, keys in expected.items():
        client = as_user(other_client(app), users[who])
        for label, args in filter_sets.items():
            args = args.format(tag=tag, **world["stages"])
            head, rows = _listed(client, route, args)
            listed = _matches(rows, pattern)
            if label == "mine":  # the scope itself, not only list == file
                assert {m[-1] for m in listed} == set(keys), (name, who, listed)
                everything = listed
            else:
                assert listed <= everything, (name, who, label)
                narrowed |= listed < everything
            cli_head, cli_rows = _cli(app, name, users[who], args, tmp_path / f"{who}-{label}.xlsx")
            assert _matches(cli_rows, pattern) == listed, (name, who, label, "cli")
            assert len(cli_rows) == len(listed), (name, who, label)  # nothing else of anyone's
            if who in EXPORTERS:
                web_head, web_rows = _web(client, route, args)
                assert (web_head, web_rows) == (cli_head, cli_rows), (name, who, label)
    assert narrowed, "the second filter never left a row out: it tests nothing"


def test_the_command_line_itself_writes_the_users_rows(app, world, tmp_path):
    """`flask crm export` as its own process (two at once), as a 销售部 salesman and as the
    supervisor of another department: each file holds that user's list."""
    tag, users = world["tag"], world["users"]
    runs = {}
    for name, who, route, args in (("service_records", "seller", "servicerecordmodelview", f"_flt_0_service_no=S{tag}"),
                                   ("surveys", "boss_far", "surveymodelview", f"_flt_2_subject_no={tag}")):
        out = tmp_path / f"{name}.xlsx"
        proc = subprocess.Popen(flask_cmd("crm", "export", name, str(out), "--user", users[who], "--filter", args),
                                cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs[name] = (proc, out, who, route, args)
    for name, (proc, out, who, route, args) in runs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        listed = _matches(_listed(as_user(other_client(app), users[who]), route, args)[1], rf"[SFW]{tag}\w")
        assert _matches(_sheet(out.read_bytes())[1], rf"[SFW]{tag}\w") == listed == \
            ({f"S{tag}s"} if name == "service_records" else {f"F{tag}f", f"W{tag}t"}), name


def test_big_exports_run_by_the_worker_keep_the_requesters_rows_and_masking(app, rq_worker, small_threshold, world):
    """Past CRM_EXPORT_SYNC_ROWS the file is written by the RQ worker, as the requester: the
    销售部 supervisor's revisits (their department's and the one assigned to them), the
    analyst's contacts masked."""
    from app.extensions import db
    from app.models import ExportLog

    tag, users = world["tag"], world["users"]
    for who, route, args, pattern in (("sales_boss", "revisitmodelview", f"_flt_2_subject_no={tag}", rf"[FW]{tag}\w"),
                                      ("analyst", "contactmodelview", f"_flt_0_customer=导出范围{tag}", rf"导出范围{tag}\w")):
        client = as_user(other_client(app), users[who])
        head, rows = _listed(client, route, args)
        resp = ui_export(client, "xlsx", args, view=route)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/myexports/list/"), who
        with app.app_context():
            export_id = db.session.query(ExportLog.id).join(ExportLog.user).filter_by(username=users[who]) \
                .filter(ExportLog.channel == "job").order_by(ExportLog.id.desc()).limit(1).scalar()
        log = _wait_export(app, export_id)
        assert log.status == "done", log.error
        file_head, file_rows = _sheet(client.get(f"/myexports/fetch/{export_id}").data)
        assert file_head == head and len(file_rows) == len(rows) > 2, who
        assert _matches(file_rows, pattern) == _matches(rows, pattern), who
        _no_raw_values(file_head, file_rows)
    assert _matches(rows, pattern)  # the analyst's four contacts, masked

# -- 2. columns and masking: the file shows what the list shows that user -----------------------

LISTS = {
    # export name: (list route, the test's rows)
    "contacts": ("contactmodelview", "_flt_0_customer=导出范围{tag}"),
    "interactions": ("interactionmodelview", "_flt_0_customer=导出范围{tag}"),
    "tickets": ("ticketmodelview", "_flt_2_title={tag}"),
    "my_tickets": ("mytickets", "_flt_2_title={tag}"),
    "service_records": ("servicerecordmodelview", "_flt_0_service_no=S{tag}"),
    "feedback": ("feedbackmodelview", "_flt_0_feedback_no=F{tag}"),
    "surveys": ("surveymodelview", "_flt_2_subject_no={tag}"),
    "revisits": ("revisitmodelview", "_flt_2_subject_no={tag}"),
    "tasks": ("taskmodelview", "_flt_2_title={tag}"),
    "followup_plans": ("followupplanmodelview", "_flt_0_customer=导出范围{tag}"),
}
RAW = (PHONE, EMAIL, ID_NUMBER, CUSTOM_PHONE)


def test_every_exportable_list_is_covered_here(app):
    """A new exportable list fails this until its scope is tested above; the archived
    customer's contact and interaction tabs are no export of their own (the export by name is
    always the active list)."""
    from app.services.export import export_views

    with app.app_context():
        views = export_views()
    assert set(views) == set(LISTS) | {"customers"}
    assert {name: v.route_base.strip("/") for name, v in views.items() if name in LISTS} == \
        {name: route for name, (route, _) in LISTS.items()}


def _file(app, client, name: str, route: str, username: str, args: str, tmp_path):
    """The file as the user gets it: the list's button when their role may export, else the
    command line as that user."""
    resp = ui_export(client, "xlsx", args, view=route)
    if resp.status_code == 200:
        return _sheet(resp.data)
    return _cli(app, name, username, args, tmp_path / f"{name}-{username}.xlsx")


def _no_raw_values(head, rows) -> None:
    cells = [str(c) for r in [head, *rows] for c in r if c is not None]
    assert not [c for c in cells if any(raw in c for raw in RAW)], "a full contact value in the file"


@pytest.mark.parametrize("who", ["service_boss", "agent", "analyst", "sales_boss"])
def test_each_list_file_has_the_columns_and_masked_values_of_the_users_list(app, world, who, tmp_path):
    """The same columns, in the same order, as the list page shows this user (nothing the page
    leaves out for their role, no show-page field such as a survey's 发送至 or a feedback's
    phone), the same number of rows, and the contacts' phones and e-mails masked as on the page."""
    tag, username = world["tag"], world["users"][who]
    client = as_user(other_client(app), username)
    compared = []
    for name, (route, args) in LISTS.items():
        args = args.format(tag=tag)
        if client.get(f"/{route}/list/").status_code != 200:  # a list the role does not have
            continue
        head, rows = _listed(client, route, args)
        assert rows, (who, name, "the fixture gives every list rows")
        file_head, file_rows = _file(app, client, name, route, username, args, tmp_path)
        assert file_head == head, (who, name)
        assert len(file_rows) == len(rows), (who, name)
        _no_raw_values(file_head, file_rows)
        if name == "contacts":
            phone, email = head.index("电话"), head.index("邮箱")
            assert sorted((r[phone], r[email]) for r in rows) == sorted((r[phone], r[email]) for r in file_rows) \
                == [("139****8765", "q***@example.com")] * len(rows), who
        compared.append(name)
    assert {"contacts", "tickets", "service_records", "feedback", "tasks", "followup_plans"} <= set(compared), compared


def test_customer_file_hides_the_roles_hidden_fields_and_masks_like_the_list(app, world, add_field, tmp_path):
    """Customers: the file holds every field of the catalogue the user may see (more than the
    list's columns), never one the role hides (the amounts, 业务信息's admin-defined fields), and
    masks as the list does: an admin-defined phone field, a person's ID number, the primary
    contact's phone and e-mail; for supervisors holding 'view full contact info' too."""
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer
    from app.security.masking import mask_id_number, mask_phone
    from app.services.numbering import next_number

    tag = world["tag"]
    mobile = add_field("phone", label_zh=f"备用手机{tag}", category="basic", in_list=True, searchable=True)
    secret = add_field("text", label_zh=f"机密业务{tag}", category="business", in_list=True)
    with as_system(app):
        owner = appbuilder.sm.find_user(username=world["users"]["sales_boss"])
        c = Customer(name=f"脱敏{tag}", customer_no=next_number("customer"), owner_id=owner.id,
                     department_id=owner.department_id, kind=_item("customer_kind", "person"), credit_code=ID_NUMBER,
                     total_amount=4321.5, annual_revenue=98765, extra={mobile: CUSTOM_PHONE, secret: "独家渠道"})
        db.session.add(c)
        db.session.flush()
        db.session.add(Contact(customer_id=c.id, name="本人", phone=PHONE, email=EMAIL, is_primary=True))
        db.session.commit()
    hidden_labels = {"累计交易金额", "年营业额", f"机密业务{tag}"}
    args = f"_flt_2_name=脱敏{tag}"
    for who, hides in (("service_boss", True), ("agent", True), ("analyst", False), ("sales_boss", False)):
        username = world["users"][who]
        client = as_user(other_client(app), username)
        head, rows = _listed(client, "customermodelview", args)
        assert len(rows) == 1, who
        listed = dict(zip(head, rows[0]))
        file_head, file_rows = _file(app, client, "customers", "customermodelview", username, args, tmp_path)
        assert len(file_rows) == 1, who
        got = dict(zip(file_head, file_rows[0]))
        assert set(head) - {"标签"} <= set(file_head), (who, set(head) - set(file_head))
        assert (hidden_labels & set(file_head) == set()) is hides, (who, file_head)
        assert (f"机密业务{tag}" in head) is not hides  # the list hides it alike
        if not hides:
            assert got[f"机密业务{tag}"] == "独家渠道" and got["累计交易金额"] == pytest.approx(4321.5)
        assert got[f"备用手机{tag}"] == listed[f"备用手机{tag}"] == mask_phone(CUSTOM_PHONE), who
        assert got["统一社会信用代码/身份证号"] == mask_id_number(ID_NUMBER), who
        assert (got["联系电话"], got["联系邮箱"]) == ("139****8765", "q***@example.com"), who
        _no_raw_values(file_head, file_rows)
    # the admin-defined phone: found by its full number, never by a piece (list, file, command line)
    analyst = as_user(other_client(app), world["users"]["analyst"])
    piece, full = f"{args}&_flt_0_{mobile}=1369", f"{args}&_flt_1_{mobile}={CUSTOM_PHONE}"
    assert analyst.get(f"/customermodelview/list/?{piece}").status_code == 403
    resp = ui_export(analyst, "csv", piece)
    assert resp.status_code == 302 and "只能按完整值" in analyst.get(resp.headers["Location"]).get_data(as_text=True)
    done = app.test_cli_runner().invoke(args=["crm", "export", "customers", str(tmp_path / "p.csv"), "--user",
                                              world["users"]["analyst"], "--filter", piece])
    assert done.exit_code == 2 and f"备用手机{tag}" in done.output
    assert len(_listed(analyst, "customermodelview", full)[1]) == len(_web(analyst, "customermodelview", full)[1]) == 1


# -- 3. filters: no file answers a question the list refuses --------------------------------------

def test_masked_fields_filter_in_the_file_only_as_on_the_list(app, world, tmp_path):
    """Someone who sees phones masked may find a contact by the full number or its last four
    digits, never by a piece (starts with 1391, contains ...): the list refuses such a filter, and
    so does the export, from the button and from the command line, or the file's rows would
    give the digits away. Holders of 'view full contact info' filter freely; the file stays masked."""
    from app.extensions import db
    from app.models import ExportLog

    tag, users = world["tag"], world["users"]
    mine = f"_flt_0_customer=导出范围{tag}"
    probes = [("contactmodelview", "contacts", f"{mine}&_flt_0_phone=1391"),
              ("contactmodelview", "contacts", f"{mine}&_flt_2_email=qian"),
              ("customermodelview", "customers", "_flt_0_credit_code=1101")]
    analyst = as_user(other_client(app), users["analyst"])  # exports, sees masked values
    for route, name, args in probes:
        assert analyst.get(f"/{route}/list/?{args}").status_code == 403, args
        resp = ui_export(analyst, "xlsx", args, view=route)
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/{route}/list/"), args
        page = analyst.get(resp.headers["Location"]).get_data(as_text=True)
        assert "只能按完整值" in page, args
        done = app.test_cli_runner().invoke(args=["crm", "export", name, str(tmp_path / "x.xlsx"), "--user",
                                                  users["analyst"], "--filter", args])
        assert done.exit_code == 2 and "只能按完整值" in done.output, (args, done.output)
    with app.app_context():
        assert db.session.query(ExportLog).join(ExportLog.user).filter_by(username=users["analyst"]) \
            .filter(ExportLog.filter.like("%phone%") | ExportLog.filter.like("%credit_code%")
                    | ExportLog.filter.like("%email%")).count() == 0
    # the full number, or the last four digits, are fine
    for args in (f"{mine}&_flt_3_phone={PHONE}", f"{mine}&_flt_1_phone=8765"):
        head, rows = _listed(analyst, "contactmodelview", args)
        file_head, file_rows = _web(analyst, "contactmodelview", args)
        assert len(rows) == len(file_rows) == 4, args
        _no_raw_values(file_head, file_rows)
    boss = as_user(other_client(app), users["service_boss"])  # holds view full contact info
    head, rows = _listed(boss, "contactmodelview", probes[0][2])
    file_head, file_rows = _web(boss, "contactmodelview", probes[0][2])
    assert len(rows) == len(file_rows) == 4
    _no_raw_values(file_head, file_rows)


def test_masked_fields_sort_only_for_those_who_see_them(app, world):
    """Sorting contacts by phone or e-mail would tell the hidden digits by the rows' order: someone
    who sees them masked gets no sort link on those columns, a 403 for the list sorted by them, a
    refusal for the export and the API; a holder of 'view full contact info' sorts freely."""
    from test_scopes import token

    tag, users = world["tag"], world["users"]
    mine = f"_flt_0_customer=导出范围{tag}"
    analyst = as_user(other_client(app), users["analyst"])
    page = analyst.get(f"/contactmodelview/list/?{mine}").get_data(as_text=True)
    assert "_oc_ContactModelView=name" in page  # other columns still sort
    assert "_oc_ContactModelView=phone" not in page and "_oc_ContactModelView=email" not in page
    for column, label in (("phone", "电话"), ("email", "邮箱")):
        args = f"{mine}&_oc_ContactModelView={column}&_od_ContactModelView=asc"
        assert analyst.get(f"/contactmodelview/list/?{args}").status_code == 403, column
        resp = ui_export(analyst, "xlsx", args, view="contactmodelview")
        assert resp.status_code == 302, column
        assert f"列表不能按“{label}”排序" in analyst.get(resp.headers["Location"]).get_data(as_text=True)
        api = app.test_client().get(f"/api/v1/contact/?q=(order_column:{column},order_direction:asc)",
                                    headers=token(app, users["analyst"]))
        assert api.status_code == 400, (column, api.status_code)
    assert analyst.get(f"/contactmodelview/list/?{mine}&_oc_ContactModelView=name").status_code == 200
    boss = as_user(other_client(app), users["service_boss"])  # holds view full contact info
    page = boss.get(f"/contactmodelview/list/?{mine}")
    assert "_oc_ContactModelView=phone" in page.get_data(as_text=True)
    assert boss.get(f"/contactmodelview/list/?{mine}&_oc_ContactModelView=phone").status_code == 200
    api = app.test_client().get("/api/v1/contact/?q=(order_column:phone,order_direction:asc)",
                                headers=token(app, users["service_boss"]))
    assert api.status_code == 200
