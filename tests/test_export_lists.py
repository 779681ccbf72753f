"""导出 on the business lists beyond customers, contacts and interactions: service tickets, my
tickets, service records, feedback, satisfaction follow-ups, revisits, tasks and follow-up
plans. Each file is read back (openpyxl / csv) and compared with what the list shows: labels not
codes, names not ids, typed dates, no HTML, the viewer's rows in the list's order, masked."""
from __future__ import annotations

import io
import json
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

import openpyxl
import pytest

import test_export
from conftest import as_system
from test_export import _flask, _wait_export, as_user, csv_rows, other_client, ui_export

small_threshold = test_export.small_threshold  # the fixture: big exports from 3 rows

PHONE = "13955556666"
NEW_LISTS = {
    # export name: the list view's route
    "tickets": "ticketmodelview", "my_tickets": "mytickets", "service_records": "servicerecordmodelview",
    "feedback": "feedbackmodelview", "surveys": "surveymodelview", "revisits": "revisitmodelview",
    "tasks": "taskmodelview", "followup_plans": "followupplanmodelview",
}


def _zh(app, label) -> str:
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("zh"):
        return str(label)


def _item(type_key: str, code: str):
    from app.extensions import db
    from app.models import DictionaryItem

    return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one()


@pytest.fixture()
def desk(app, make_user):
    """Two departments' work around one tag: customers, tickets (handled by different agents),
    service records, feedback with a phone, a survey and its revisit, tasks and plans."""
    from app.extensions import appbuilder, db
    from app.models import Customer, Feedback, FollowupPlan, Revisit, ServiceRecord, Survey, Task, Ticket
    from app.services.numbering import next_number

    tag = uuid.uuid4().hex[:6]
    users = {"seller": make_user("sales_staff", "sales"), "sales_boss": make_user("sales_supervisor", "sales"),
             "agent": make_user("service_staff", "service"), "agent2": make_user("service_staff", "service"),
             "service_boss": make_user("service_supervisor", "service"),
             "analyst": make_user("analytics_staff", "analytics")}
    with as_system(app):
        u = {k: appbuilder.sm.find_user(username=v) for k, v in users.items()}
        customers = {}
        for key, owner in (("s", u["seller"]), ("v", u["agent"])):
            c = Customer(name=f"导出列表{tag}{key}", customer_no=next_number("customer"), owner_id=owner.id,
                         department_id=owner.department_id, level=_item("customer_level", "A"))
            db.session.add(c)
            customers[key] = c
        db.session.flush()
        due = datetime(2030, 5, 6, 7, 8)
        tickets = {}
        for i, (key, handler, status, prio) in enumerate((("a", u["agent"], "in_progress", "high"),
                                                          ("b", u["agent2"], "new", "low"),
                                                          ("c", u["service_boss"], "assigned", "urgent"))):
            t = Ticket(ticket_no=f"W{tag}{i}", customer_id=customers["s"].id, title=f"{tag} 工单{key}",
                       type=_item("ticket_type", "repair"), priority=_item("priority", prio), status=status,
                       handler_id=handler.id, department_id=handler.department_id,
                       resolution_due=due + timedelta(hours=i))
            db.session.add(t)
            tickets[key] = t
        db.session.flush()
        db.session.add(ServiceRecord(service_no=f"S{tag}1", customer_id=customers["s"].id, ticket_id=tickets["a"].id,
                                     kind=_item("service_kind", "after_sales"), content="上门", progress="in_progress",
                                     handler_id=u["agent"].id, score=4, occurred_at=due))
        feedback = {}
        for key, customer in (("s", customers["s"]), ("v", customers["v"])):
            fb = Feedback(feedback_no=f"F{tag}{key}", customer_id=customer.id, channel="staff", content=f"{tag} 反馈",
                          contact_name="王先生", phone=PHONE, email="wang.xs@example.com", status="processing",
                          submitted_at=due)
            db.session.add(fb)
            feedback[key] = fb
        db.session.flush()
        survey = Survey(subject_kind="feedback", subject_id=feedback["s"].id, subject_no=feedback["s"].feedback_no,
                        handler_id=u["agent"].id, expires_at=due, answered_at=due, score=2, comment=f"{tag} 太慢",
                        sent_to="w***@example.com")
        db.session.add(survey)
        db.session.flush()
        db.session.add(Revisit(subject_kind="feedback", subject_id=feedback["s"].id,
                               subject_no=feedback["s"].feedback_no, survey_id=survey.id,
                               assignee_id=u["sales_boss"].id, due_at=due))
        for key, who, status in (("s", u["seller"], "pending"), ("y", u["analyst"], "done")):
            db.session.add(Task(title=f"{tag} 任务{key}", customer_id=customers["s"].id, assignee_id=who.id, due_at=due,
                                status=status))
        db.session.add(FollowupPlan(customer_id=customers["s"].id, stage=_item("followup_stage", "proposal"),
                                    assignee_id=u["seller"].id, remind_before_minutes=90, active=True))
        db.session.commit()
    return {"tag": tag, "users": users, "due": due}


def _sheet(data: bytes) -> list[dict]:
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    header = [c.value for c in ws[1]]
    return [dict(zip(header, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]


# -- what a cell shows ------------------------------------------------------------------------

def test_tickets_export_holds_the_filtered_sorted_rows_with_labels_names_and_datetimes(app, desk, admin_client):
    from app.services.tickets import STATUS_LABELS
    from app.views.service import SLA_LABELS

    tag, due = desk["tag"], desk["due"]
    resp = ui_export(admin_client, "xlsx", {"_flt_2_title": tag, "_oc_TicketModelView": "ticket_no",
                                            "_od_TicketModelView": "desc"}, view="ticketmodelview")
    assert resp.status_code == 200, resp.headers.get("Location")
    ws = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    assert [c.value for c in ws[1]] == ["工单编号", "主题", "客户", "类型", "优先级", "状态", "处理人", "团队",
                                        "解决时限", "SLA"]
    rows = _sheet(resp.data)
    assert [r["工单编号"] for r in rows] == [f"W{tag}{i}" for i in (2, 1, 0)]  # the list's sort
    first = rows[-1]
    assert (first["客户"], first["类型"], first["优先级"]) == (f"导出列表{tag}s", "报修", "高")
    assert [r["状态"] for r in rows] == [_zh(app, STATUS_LABELS[s]) for s in ("assigned", "new", "in_progress")]
    assert first["SLA"] == _zh(app, SLA_LABELS["none"])  # the badge's text, no HTML
    assert first["解决时限"] == due and isinstance(first["解决时限"], datetime)
    assert not any("<" in str(v) for r in rows for v in r.values())


def test_an_english_user_gets_english_headers_and_labels(app, desk):
    from app.extensions import appbuilder, db

    tag, analyst = desk["tag"], desk["users"]["analyst"]
    with as_system(app):
        appbuilder.sm.find_user(username=analyst).locale = "en"
        db.session.commit()
    client = as_user(other_client(app), analyst)
    resp = ui_export(client, "csv", {"_flt_2_title": tag, "_oc_TicketModelView": "ticket_no",
                                     "_od_TicketModelView": "asc"}, view="ticketmodelview")
    assert resp.status_code == 200
    rows = csv_rows(resp.data)
    assert rows[0][:6] == ["Ticket No.", "Subject", "Customer", "Type", "Priority", "Status"]
    assert rows[1][3:6] == ["Repair", "High", "In progress"] and rows[1][9] == "No SLA"
    assert 'filename="Service Tickets-' in resp.headers["Content-Disposition"]


@pytest.mark.parametrize("name, args, expect", [
    ("service_records", "_flt_0_service_no=S{tag}1",
     {"服务编号": "S{tag}1", "类别": "售后维护", "进度": "处理中", "评分": 4}),
    ("feedback", "_flt_0_feedback_no=F{tag}s",
     {"反馈编号": "F{tag}s", "状态": "处理中", "客户": "导出列表{tag}s"}),
    ("surveys", "_flt_0_subject_no=F{tag}s", {"编号": "F{tag}s", "评分": 2, "评价": "{tag} 太慢"}),
    ("revisits", "_flt_0_subject_no=F{tag}s", {"编号": "F{tag}s"}),
    ("tasks", "_flt_2_title={tag}&_oc_TaskModelView=title&_od_TaskModelView=asc",
     {"任务": "{tag} 任务s", "状态": "待执行"}),
    ("followup_plans", "_flt_0_customer=导出列表{tag}s", {"客户": "导出列表{tag}s", "阶段": "方案洽谈", "提前提醒（分钟）": 90,
                                            "启用": "是"}),
])
def test_each_new_list_exports_what_it_shows(app, desk, admin_client, name, args, expect):
    """Codes as their Chinese labels (the list's own label dicts), names, numbers as numbers,
    是/否, never HTML; the first row of the filtered list."""
    from app.extensions import db
    from app.models import FollowupPlan
    from app.services.followup import cadence_days

    tag = desk["tag"]
    args = args.format(tag=tag)
    if name == "followup_plans":  # the cadence the list computes per row, the file from one read
        with app.app_context():
            plan = db.session.query(FollowupPlan).filter(FollowupPlan.customer.has(name=f"导出列表{tag}s")).one()
            expect = {**expect, "跟进频率（天）": cadence_days(plan.customer, plan.stage_id)}
    resp = ui_export(admin_client, "xlsx", args, view=NEW_LISTS[name])
    assert resp.status_code == 200, resp.headers.get("Location")
    rows = _sheet(resp.data)
    assert rows, name
    for header, value in expect.items():
        value = value.format(tag=tag) if isinstance(value, str) else value
        got = rows[0].get(header, KeyError(f"{header} not in {list(rows[0])}"))
        assert got == value, (name, header, got)
    assert not any("<" in str(v) for r in rows for v in r.values())


def test_feedback_export_never_holds_the_senders_phone_or_email(app, desk, admin_client):
    tag = desk["tag"]
    for fmt in ("csv", "xlsx"):
        resp = ui_export(admin_client, fmt, {"_flt_0_feedback_no": f"F{tag}"}, view="feedbackmodelview")
        assert resp.status_code == 200
        body = resp.data if fmt == "csv" else json.dumps(_sheet(resp.data), ensure_ascii=False, default=str).encode()
        assert PHONE.encode() not in body and b"wang.xs@example.com" not in body
    rows = csv_rows(ui_export(admin_client, "csv", {"_flt_0_feedback_no": f"F{tag}"}, view="feedbackmodelview").data)
    assert len(rows) == 3  # header + both feedback


# -- row scope: the file holds the viewer's list --------------------------------------------------

def _listed(client, path: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, client.get(path).get_data(as_text=True)))


def _exported(app, name: str, username: str, args: dict) -> list[list[str]]:
    """The file as ``username`` gets it: through the buttons when the role may export, else as
    `flask crm export --user` writes it (the same code path), to compare with any role's list."""
    from werkzeug.datastructures import MultiDict

    from app.extensions import appbuilder
    from app.services.export import export_to_file

    import tempfile

    with tempfile.TemporaryDirectory() as tmp, app.test_request_context("/"):
        out = f"{tmp}/{name}.csv"
        export_to_file(name, out, appbuilder.sm.find_user(username=username), MultiDict(args))
        with open(out, "rb") as fh:
            return csv_rows(fh.read())


@pytest.mark.parametrize("name, route, args, pattern, who", [
    ("tickets", "ticketmodelview", "_flt_2_title={tag}", r"W{tag}\d",
     ("agent", "service_boss", "sales_boss", "analyst")),
    ("my_tickets", "mytickets", "_flt_2_title={tag}", r"W{tag}\d", ("agent", "service_boss")),
    ("feedback", "feedbackmodelview", "_flt_0_feedback_no=F{tag}", r"F{tag}[sv]", ("seller", "sales_boss", "analyst")),
    ("tasks", "taskmodelview", "_flt_2_title={tag}", r"{tag} 任务[sy]", ("seller", "sales_boss", "analyst")),
])
def test_each_user_exports_exactly_the_rows_of_their_list(app, desk, name, route, args, pattern, who):
    tag, users = desk["tag"], desk["users"]
    args, pattern = args.format(tag=tag), pattern.format(tag=tag)
    seen = {}
    for key in who:
        client = as_user(other_client(app), users[key])
        listed = _listed(client, f"/{route}/list/?{args}", pattern)
        rows = _exported(app, name, users[key], dict(a.split("=") for a in args.split("&")))
        exported = {m for r in rows[1:] for cell in r for m in re.findall(pattern, cell)}
        assert exported == listed, (name, key)
        seen[key] = exported
    if name == "tickets":
        assert seen["agent"] == {f"W{tag}0"}  # own
        assert seen["service_boss"] == seen["analyst"] == {f"W{tag}{i}" for i in range(3)}  # department / all
        assert seen["sales_boss"] == set()  # the sales department handles none of them
    if name == "my_tickets":
        assert seen == {"agent": {f"W{tag}0"}, "service_boss": {f"W{tag}2"}}  # only the ones they handle
    if name == "feedback":
        assert seen["seller"] == seen["sales_boss"] == {f"F{tag}s"} and seen["analyst"] == {f"F{tag}s", f"F{tag}v"}
    if name == "tasks":
        assert seen["sales_boss"] == {f"{tag} 任务s"} and seen["analyst"] == {f"{tag} 任务y"}


# -- who may export ---------------------------------------------------------------------------

@pytest.mark.parametrize("role_key, dept, allowed", [
    ("service_staff", "service", set()),
    ("sales_staff", "sales", set()),
    ("service_supervisor", "service", set(NEW_LISTS)),
    ("sales_supervisor", "sales", set(NEW_LISTS) - {"my_tickets"}),
    ("analytics_staff", "analytics", set(NEW_LISTS) - {"my_tickets", "revisits"}),
])
def test_buttons_and_export_route_follow_can_export(app, client, make_user, role_key, dept, allowed):
    from app.extensions import db
    from app.models import ExportLog

    username = make_user(role_key, dept)
    as_user(client, username)
    for name, route in NEW_LISTS.items():
        page = client.get(f"/{route}/list/")
        resp = ui_export(client, "csv", "", view=route)
        if name in allowed:
            assert page.status_code == 200 and "导出 Excel" in page.get_data(as_text=True), (role_key, name)
            assert resp.status_code == 200 and resp.data.startswith(b"\xef\xbb\xbf"), (role_key, name)
            continue
        # refused: either the role lacks the list itself, or it opens the list without the buttons
        assert page.status_code in (200, 403) and resp.status_code == 403, (role_key, name, resp.status_code)
        assert page.status_code == 403 or "导出 Excel" not in page.get_data(as_text=True), (role_key, name)
    with app.app_context():
        logged = {n for (n,) in db.session.query(ExportLog.list_name).join(ExportLog.user).filter_by(username=username)}
    assert logged == allowed  # every export logged, refused ones not


def test_an_upgraded_install_gets_the_new_export_grants_on_reseeding(app):
    """An older database whose roles lack can_export on these lists gets it from seeds/roles.yaml
    when `crm seed` (or the start-up's init) runs."""
    from app.extensions import appbuilder, db
    from app.services.seeding import load_seeds

    def grants(role):
        return {(p.permission.name, p.view_menu.name) for p in role.permissions}

    with as_system(app):
        role = appbuilder.sm.find_role("销售部主管")
        old = [p for p in role.permissions if p.permission.name == "can_export" and p.view_menu.name in
               ("TicketModelView", "FeedbackModelView", "TaskModelView")]
        assert len(old) == 3
        for p in old:
            role.permissions.remove(p)
        db.session.commit()
        assert ("can_export", "TicketModelView") not in grants(role)
        load_seeds()
        role = appbuilder.sm.find_role("销售部主管")
        assert {("can_export", v) for v in ("TicketModelView", "FeedbackModelView", "TaskModelView")} <= grants(role)


# -- command line and jobs ----------------------------------------------------------------------

def test_cli_exports_the_new_lists_by_name_and_names_them_all(app, desk, tmp_path):
    tag, users = desk["tag"], desk["users"]
    out = tmp_path / "我的工单.xlsx"
    done = _flask("crm", "export", "my_tickets", str(out), "--user", users["service_boss"],
                  "--filter", f"_flt_2_title={tag}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["rows"] == 1
    assert [r["工单编号"] for r in _sheet(out.read_bytes())] == [f"W{tag}2"]
    out = tmp_path / "反馈.csv"
    done = _flask("crm", "export", "feedback", str(out), "--filter",
                  f"http://127.0.0.1:5000/feedbackmodelview/list/?_flt_0_feedback_no=F{tag}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(csv_rows(out.read_bytes())) == 3 and PHONE not in out.read_text(encoding="utf-8-sig")
    unknown = _flask("crm", "export", "nothing", str(tmp_path / "x.csv"))
    assert unknown.returncode == 2 and all(n in unknown.stderr for n in NEW_LISTS)
    helped = app.test_cli_runner().invoke(args=["crm", "export", "--help"])
    assert all(n in helped.output for n in [*NEW_LISTS, "customers", "contacts", "interactions"]), helped.output


def test_big_ticket_export_runs_as_a_job_for_the_requester_only(app, rq_worker, small_threshold, desk):
    from app.extensions import db
    from app.models import ExportLog

    tag, users = desk["tag"], desk["users"]
    client = as_user(other_client(app), users["analyst"])
    resp = ui_export(client, "xlsx", {"_flt_2_title": tag, "_oc_TicketModelView": "ticket_no",
                                      "_od_TicketModelView": "asc"}, view="ticketmodelview")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/myexports/list/")
    with app.app_context():
        export_id = db.session.query(ExportLog.id).join(ExportLog.user).filter_by(username=users["analyst"]).scalar()
    log = _wait_export(app, export_id)
    assert (log.status, log.channel, log.list_name, log.total, log.rows) == ("done", "job", "tickets", 3, 3), log.error
    got = client.get(f"/myexports/fetch/{export_id}")
    assert got.status_code == 200
    rows = _sheet(got.data)
    assert [r["工单编号"] for r in rows] == [f"W{tag}{i}" for i in range(3)]
    assert rows[0]["状态"] == "处理中" and isinstance(rows[0]["解决时限"], datetime)
    other = as_user(other_client(app), users["service_boss"])
    assert other.get(f"/myexports/fetch/{export_id}").status_code == 404
    assert urlencode({"_flt_2_title": tag}) in log.filter


# -- no query per row -------------------------------------------------------------------------------

def test_an_export_reads_the_same_few_queries_for_3_or_30_rows(app, admin_client):
    """Relations are loaded with the rows, labels looked up once per code (feedback's problem
    attribute), the plans' cadence table read once, the SLA badge computed from loaded rows:
    ten times the rows, not more queries."""
    from sqlalchemy import event

    from app.extensions import db
    from app.models import Customer, Feedback, FollowupPlan, SlaPolicy, Ticket
    from app.services.numbering import next_number

    def world(n: int) -> str:
        tag = uuid.uuid4().hex[:6]
        with as_system(app):
            policy = db.session.query(SlaPolicy).filter_by(key="repair").one()
            now = datetime.utcnow()
            for i in range(n):
                c = Customer(name=f"查询{tag}{i:02d}", customer_no=next_number("customer"),
                             level=_item("customer_level", "B"))
                db.session.add(c)
                db.session.flush()
                db.session.add(Ticket(ticket_no=f"Q{tag}{i:02d}", customer_id=c.id, title=f"{tag} 查询", status="new",
                                      type=_item("ticket_type", "repair"), priority=_item("priority", "low"),
                                      sla_policy_id=policy.id, opened_at=now, first_response_due=now + timedelta(hours=4),
                                      resolution_due=now + timedelta(hours=24 + i)))
                db.session.add(Feedback(feedback_no=f"Q{tag}{i:02d}", customer_id=c.id, content="x", status="pending",
                                        attribute=("product", "logistics")[i % 2], phone=PHONE))
                db.session.add(FollowupPlan(customer_id=c.id, stage=_item("followup_stage", "needs"),
                                            assignee_id=c.created_by_fk or 1, remind_before_minutes=30))
            db.session.commit()
        return tag

    def queries(tag: str, n: int) -> dict[str, int]:
        counts = {}
        for name, route, args in (("tickets", "ticketmodelview", f"_flt_2_title={tag}"),
                                  ("feedback", "feedbackmodelview", f"_flt_0_feedback_no=Q{tag}"),
                                  ("followup_plans", "followupplanmodelview", f"_flt_0_customer=查询{tag}")):
            seen = []
            listen = lambda *a: seen.append(a[2])  # noqa: E731
            with app.app_context():
                engine = db.engine
            event.listen(engine, "before_cursor_execute", listen)
            try:
                resp = ui_export(admin_client, "xlsx", args, view=route)
            finally:
                event.remove(engine, "before_cursor_execute", listen)
            assert resp.status_code == 200 and len(_sheet(resp.data)) == n, name
            counts[name] = len([s for s in seen if s.lstrip().upper().startswith("SELECT")])
        return counts

    small, big = queries(world(3), 3), queries(world(30), 30)
    # (a warm cache may spare the bigger export a query: never more)
    assert all(big[k] <= small[k] for k in small), (small, big)


def test_exports_read_in_a_second_process_leave_this_process_working(app, desk, admin_client, tmp_path):
    """From CRM_EXPORT_FORK_ROWS rows a forked process reads the rows: it reads through its own
    connection, never this process's (on PostgreSQL a shared connection broke the next export
    of a long-lived process: the CLI, a bench); the files equal the one-process ones."""
    from werkzeug.datastructures import MultiDict

    from app.extensions import appbuilder
    from app.services.export import export_to_file

    tag = desk["tag"]
    args = {"_flt_2_title": tag, "_oc_TicketModelView": "ticket_no", "_od_TicketModelView": "asc"}
    plain = _sheet(ui_export(admin_client, "xlsx", args, view="ticketmodelview").data)
    old = app.config.get("CRM_EXPORT_FORK_ROWS", 50_000)
    app.config["CRM_EXPORT_FORK_ROWS"] = 0
    try:
        with app.test_request_context("/"):
            user = appbuilder.sm.find_user(username=desk["users"]["analyst"])
            for i, fmt in enumerate(("xlsx", "csv", "xlsx", "csv", "xlsx", "csv", "xlsx")):
                export_to_file("tickets", tmp_path / f"{i}.{fmt}", user, MultiDict(args))
    finally:
        app.config["CRM_EXPORT_FORK_ROWS"] = old
    assert _sheet((tmp_path / "0.xlsx").read_bytes()) == _sheet((tmp_path / "6.xlsx").read_bytes()) == plain
    assert len(plain) == 3
    assert [r[0] for r in csv_rows((tmp_path / "5.csv").read_bytes())[1:]] == [f"W{tag}{i}" for i in range(3)]
