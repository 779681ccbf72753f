"""Service tickets (服务工单) through the same import as customers, contacts and interactions:
open and closed tickets from another helpdesk, numbers kept or given, SLA deadlines from the
opening time (an old open ticket is overdue and the SLA job alerts on it), the automatic
dispatch of unassigned tickets, an "imported" step on each timeline, every problem with its row
and column (Chinese and English), duplicate numbers, modes, who may import tickets, undo, and
the CLI and API giving the same report."""
from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta

from conftest import ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env
from test_import import codes, csv_file, run_import, uniq, xlsx
from test_import_kinds import in_english, make_customers
from test_tickets import LOCAL, fresh, team  # noqa: F401  (team: a fixture)

HEADERS = ["工单编号", "客户编号", "客户名称", "标题", "描述", "类型", "优先级", "状态", "处理团队", "处理人",
           "创建时间", "首次响应时间", "解决时间", "关闭时间", "满意度评分", "满意度评价"]


def row(**values):
    keys = ["no", "customer_no", "customer", "title", "description", "type", "priority", "status", "team", "handler",
            "opened", "responded", "resolved", "closed", "score", "comment"]
    return [values.get(k) for k in keys]


def local(dt: datetime) -> str:
    """A UTC time as the file writes it (Beijing time)."""
    return (dt + LOCAL).strftime("%Y-%m-%d %H:%M")


def tickets_of(app, batch_id):
    """The batch's tickets by title: (ticket no., status, handler, team id, ticket)."""
    from sqlalchemy.orm import selectinload

    from app.extensions import db
    from app.models import Ticket
    from app.models.importing import ImportItem

    ids = db.session.query(ImportItem.entity_id).filter_by(batch_id=batch_id, entity="ticket")
    return {t.title: t for t in db.session.query(Ticket).options(selectinload(Ticket.events))
            .filter(Ticket.id.in_(ids))}


def load_of(app, username):
    from app.extensions import appbuilder, db
    from app.models import AgentProfile

    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        return db.session.query(AgentProfile.open_tickets).filter_by(user_id=user.id).scalar()


def test_open_and_closed_tickets_numbers_sla_dispatch_and_timeline(app, tmp_path, admin_client, team):
    from app.extensions import db
    from app.services import sla

    a = uniq("工单客户")
    nos = make_customers(app, tmp_path, a)
    users, word, kept = team["users"], team["word"], f"HD-{uuid.uuid4().hex[:8]}"
    team_name = f"测试组{word}"
    old = datetime(2025, 9, 15, 2, 0)  # a Monday, 10:00 in Beijing
    load_a = load_of(app, users["a"])
    path = xlsx(tmp_path / "helpdesk.xlsx", [HEADERS,
        row(no=kept, customer_no=nos[a], title="旧报修未完", type="报修", priority="紧急", status="处理中",
            team=team_name, handler=users["a"], opened=local(old), responded=local(old + timedelta(hours=1))),
        row(customer=a, title="已关闭的咨询", type="咨询", status="已关闭", opened=local(old),
            closed=local(old + timedelta(days=1))),
        row(customer=a, title="已归档的投诉", type="Complaint", priority="高", status="Archived", handler=users["c"],
            opened=local(old), responded=local(old + timedelta(minutes=20)), resolved=local(old + timedelta(hours=3)),
            closed=local(old + timedelta(days=2)), score=5, comment="很满意"),
        row(customer=a, title=f"设备{word}无法开机", type="咨询"),  # new, nobody: dispatched
        row(customer=a, title="留在组里", type="咨询", team=team_name),  # new, a team: stays in its queue
    ])
    before = datetime.utcnow().replace(microsecond=0)
    report = run_import(app, path, kind="tickets")
    assert report["status"] == "done", report
    assert (report["rows_total"], report["rows_created"], report["errors"]) == (5, 5, [])
    with app.app_context():
        got = tickets_of(app, report["batch"])
        open_one, closed, archived = got["旧报修未完"], got["已关闭的咨询"], got["已归档的投诉"]
        dispatched, queued = got[f"设备{word}无法开机"], got["留在组里"]
        # numbers kept, or given by the numbering rule as the UI does
        assert open_one.ticket_no == kept
        assert all(t.ticket_no.startswith("W") for t in (closed, archived, dispatched, queued))
        # the open ticket: its handler and team, SLA from its opening time: overdue already
        assert (open_one.status, open_one.handler.username, open_one.team_id) == ("in_progress", users["a"],
                                                                                 team["team_id"])
        assert open_one.opened_at == old and open_one.sla_policy.key == "repair"
        clock = sla.clock_of(open_one.sla_policy.calendar)
        assert open_one.resolution_due == clock.add(old, open_one.sla_policy.resolution_minutes)
        assert sla.risk(open_one) == "breached"
        # closed and archived: their times; handling hours as the flow computes them
        assert (closed.status, closed.closed_at, closed.resolved_at) == ("closed", old + timedelta(days=1), None)
        assert archived.status == "archived" and archived.satisfaction_score == 5
        assert archived.handling_hours == sla.handling_hours(archived, old + timedelta(hours=3)) > 0
        assert [d.state for d in sla.deadlines(archived)] == ["met", "met"]
        # no handler, no team: the automatic dispatch of a new ticket; a team given: its queue
        assert dispatched.status == "assigned" and dispatched.handler.username in (users["a"], users["b"])
        assert dispatched.assignment_rule_id == team["rule_id"] and before <= dispatched.opened_at
        assert [e.action for e in dispatched.events] == ["import", "assign"]
        assert (queued.status, queued.handler_id, queued.team_id) == ("new", None, team["team_id"])
        # every timeline says where it came from
        assert all(t.events[0].action == "import" and f"#{report['batch']}" in t.events[0].comment
                   for t in got.values())
        pk, no, to_a = open_one.id, open_one.ticket_no, dispatched.handler.username == users["a"]
    assert load_of(app, users["a"]) == load_a + 1 + to_a
    listing = admin_client.get(f"/ticketmodelview/list/?_flt_0_ticket_no={no}").get_data(as_text=True)
    parts = listing.split(f"/ticketmodelview/show/{pk}")  # its row (the number alone is echoed in the filter box)
    assert len(parts) > 1 and 'data-sla="breached"' in parts[0].rsplit("<tr", 1)[-1] + parts[1].split("</tr>")[0]
    page = admin_client.get(f"/ticketmodelview/show/{pk}").get_data(as_text=True)
    assert 'data-action="import"' in page and "helpdesk.xlsx" in page
    # the SLA job treats the imported ticket like any other: escalated to the team's supervisor
    with app.app_context():
        from app.models import SlaAlert

        sla.run_sla_check()
        alerts = {(x.kind, x.user.username) for x in db.session.query(SlaAlert).filter_by(ticket_id=pk)}
        assert ("resolution_breach", team["boss"]) in alerts and not any(k.startswith("first_response")
                                                                         for k, _ in alerts)


def test_ticket_problems_name_row_and_column_in_chinese_and_english(app, tmp_path, team, make_user):
    a = uniq("工单问题")
    nos = make_customers(app, tmp_path, a)
    sales, users = make_user("sales_staff", "sales"), team["users"]
    day = "2024-05-01 09:00"
    path = csv_file(tmp_path / "bad.csv", [HEADERS,
        row(customer_no=nos[a], title="状态错", type="咨询", status="挂起"),
        row(customer_no=nos[a], title="优先级错", type="咨询", priority="紧"),
        row(customer_no=nos[a], title="团队错", type="咨询", team="没有这个组"),
        row(customer_no=nos[a], title="不能处理", type="咨询", handler=sales),
        row(customer_no=nos[a], title="不在组", type="咨询", team="客户关怀组", handler=users["a"]),
        row(customer_no=nos[a], title="没处理人", type="咨询", status="处理中"),
        row(customer_no=nos[a], title="关闭没时间", type="咨询", status="已关闭", opened=day),
        row(customer_no=nos[a], title="倒流", type="咨询", status="已归档", handler=users["a"], opened=day,
            resolved="2024-04-30 09:00", closed="2024-05-02"),
        row(customer_no=nos[a], title="将来", type="咨询", opened="2099-01-01 10:00"),
        row(customer_no=nos[a], title="评分", type="咨询", status="已关闭", opened=day, closed=day, score=7),
        row(customer_no=nos[a], title="新建带解决时间", type="咨询", opened=day, resolved=day),
        row(customer_no=nos[a], title=None, type=None),
    ])
    report = run_import(app, path, kind="tickets", mode="valid")
    assert report["status"] == "done" and report["rows_created"] == 0
    assert sorted(codes(report)) == [
        (2, "状态", "unknown_status"), (3, "优先级", "unknown_choice"), (4, "处理团队", "unknown_team"),
        (5, "处理人", "not_handler"), (6, "处理人", "not_in_team"), (7, "状态", "needs_handler"),
        (8, "关闭时间", "missing_time"), (9, "解决时间", "time_order"), (10, "创建时间", "future_date"),
        (11, "满意度评分", "bad_score"), (12, "解决时间", "open_with_time"), (13, "标题", "required"),
        (13, "类型", "required")]
    zh = {(e["row"], e["column"]): e["message"] for e in report["errors"]}
    assert "新建、已分配、处理中、待审核、已归档、已关闭" in zh[(2, "状态")]
    assert "紧急" in zh[(3, "优先级")]  # the suggestion
    assert "处理中" in zh[(7, "状态")] and "处理人" in zh[(7, "状态")]
    assert "已关闭" in zh[(8, "关闭时间")] and "创建时间" in zh[(9, "解决时间")]
    en = {(e["row"], e["column"]): e["message"] for e in in_english(app, report["batch"])["errors"]}
    assert en[(2, "状态")] == "'挂起' is not a ticket status: use one of New, Assigned, In progress, Pending review, " \
                              "Archived, Closed."
    assert en[(8, "关闭时间")] == "A ticket that is Closed needs 关闭时间."
    assert en[(4, "处理团队")] == "There is no team '没有这个组'."
    assert "cannot handle tickets" in en[(5, "处理人")] and "is not an agent of team" in en[(6, "处理人")]


def test_duplicate_ticket_numbers_in_file_and_stored_all_or_valid_rows(app, tmp_path):
    from app.extensions import db
    from app.models import Ticket

    a = uniq("工单编号")
    nos = make_customers(app, tmp_path, a)
    taken, new = f"OLD-{uuid.uuid4().hex[:8]}", f"NEW-{uuid.uuid4().hex[:8]}"
    assert run_import(app, csv_file(tmp_path / "first.csv", [HEADERS, row(no=taken, customer_no=nos[a], title="第一",
                                                                          type="咨询")]),
                      kind="tickets")["status"] == "done"
    path = csv_file(tmp_path / "dup.csv", [HEADERS,
        row(no=new, customer_no=nos[a], title="好的", type="咨询"),
        row(no=taken, customer_no=nos[a], title="已存在", type="咨询"),
        row(no=new, customer_no=nos[a], title="文件内重复", type="咨询"),
        row(customer_no=nos[a], title="没编号", type="咨询")])
    report = run_import(app, path, kind="tickets")
    assert report["status"] == "rejected" and codes(report) == [(3, "工单编号", "duplicate_existing"),
                                                                 (4, "工单编号", "duplicate_in_file")]
    assert report["errors"][1]["message"] == "与本文件第 2 行的工单编号相同。"
    with app.app_context():  # all or nothing: nothing saved
        assert db.session.query(Ticket).filter(Ticket.title.in_(("好的", "没编号"))).count() == 0
    report = run_import(app, path, kind="tickets", mode="valid")
    assert (report["status"], report["rows_created"], report["rows_rejected"]) == ("done", 2, 2)
    with app.app_context():
        assert db.session.query(Ticket.title).filter_by(ticket_no=new).scalar() == "好的"


def test_who_may_import_tickets_and_the_supervisor_undoes(app, tmp_path, make_user, team):
    from app.extensions import db
    from app.models import FieldChange, SlaAlert, Ticket, TicketEvent

    staff, sales_boss = make_user("sales_staff", "sales"), make_user("sales_supervisor", "sales")
    boss, other_boss = team["boss"], make_user("service_supervisor", "service")
    a = uniq("工单权限")
    nos = make_customers(app, tmp_path, a)
    old = datetime.utcnow() - timedelta(days=30)
    path = xlsx(tmp_path / "perm.xlsx", [HEADERS,
        row(customer_no=nos[a], title="逾期", type="报修", status="处理中", handler=team["users"]["b"],
            opened=local(old)),
        row(customer_no=nos[a], title="关掉的", type="咨询", status="已关闭", opened=local(old),
            closed=local(old + timedelta(days=1)))])
    # sales staff may add tickets but not assign or close them: no ticket import, anywhere
    client = fresh(app)
    login(client, staff, USER_PASSWORD)
    page = client.get("/import/").get_data(as_text=True)
    assert 'name="kind" value="contacts"' in page and 'name="kind" value="tickets"' not in page
    assert "导入数据" in page and "服务工单" not in page.split('id="import-kind"')[1].split("</span>")[0]
    with open(path, "rb") as fh:
        r = client.post("/api/v1/import/tickets", data={"file": (fh, "perm.xlsx")},
                        headers={"X-CSRFToken": csrf_token(page)}, content_type="multipart/form-data")
    assert r.status_code == 403 and r.json["errors"][0]["code"] == "not_allowed"
    assert r.json["errors"][0]["message"] == "您的角色不能导入服务工单。"
    cli = subprocess.run(flask_cmd("crm", "import", "tickets", str(path), "--json", "--user", staff), cwd=ROOT,
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and json.loads(cli.stdout)["errors"][0]["code"] == "not_allowed"
    # nobody loses an import they had: sales supervisors still import customers, contacts, interactions
    login(client := fresh(app), sales_boss, USER_PASSWORD)
    page = client.get("/import/").get_data(as_text=True)
    assert all(f'name="kind" value="{k}"' in page for k in ("customers", "contacts", "interactions"))
    # the service supervisor: the menu, the choice, the import
    login(client := fresh(app), boss, USER_PASSWORD)
    page = client.get("/import/").get_data(as_text=True)
    assert 'href="/import/"' in client.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'name="kind" value="tickets"' in page and 'name="kind" value="customers"' not in page
    token = csrf_token(page)
    with open(path, "rb") as fh:
        r = client.post("/api/v1/import/tickets", data={"file": (fh, "perm.xlsx")}, headers={"X-CSRFToken": token},
                        content_type="multipart/form-data")
    assert r.status_code == 200 and r.json["status"] == "done" and r.json["rows_created"] == 2, r.json
    batch = r.json["batch"]
    with app.app_context():
        from app.services import sla

        sla.run_sla_check()
        ids = [t.id for t in tickets_of(app, batch).values()]
        assert db.session.query(SlaAlert).filter(SlaAlert.ticket_id.in_(ids)).count() >= 1
    load_b = load_of(app, team["users"]["b"])
    # undo: not by a supervisor of another department's importer ... here the same department, so
    # the importer's own supervisor colleague may; a sales supervisor may not
    login(client := fresh(app), sales_boss, USER_PASSWORD)
    r = client.post(f"/api/v1/import/batches/{batch}/undo",
                    headers={"X-CSRFToken": csrf_token(client.get("/import/").get_data(as_text=True))})
    assert r.status_code == 404  # another department's batch is not even visible
    login(client := fresh(app), other_boss, USER_PASSWORD)
    r = client.post(f"/api/v1/import/batches/{batch}/undo",
                    headers={"X-CSRFToken": csrf_token(client.get("/import/").get_data(as_text=True))})
    assert r.status_code == 200 and (r.json["removed"], r.json["restored"]) == (2, 0)
    with app.app_context():
        assert db.session.query(Ticket).filter(Ticket.id.in_(ids)).count() == 0
        assert db.session.query(TicketEvent).filter(TicketEvent.ticket_id.in_(ids)).count() == 0
        assert db.session.query(SlaAlert).filter(SlaAlert.ticket_id.in_(ids)).count() == 0
        assert db.session.query(FieldChange).filter(FieldChange.entity == "ticket", FieldChange.action == "delete",
                                                    FieldChange.entity_id.in_(ids)).count() == 2
    assert load_of(app, team["users"]["b"]) == load_b - 1


def test_cli_json_equals_api_report_and_the_template(app, tmp_path, admin_client):
    import io

    import openpyxl

    a = uniq("工单接口")
    nos = make_customers(app, tmp_path, a)
    path = xlsx(tmp_path / "t.xlsx", [["Ticket No.", "Customer No.", "Subject", "Type", "Status", "Closed at"],
                                      [None, nos[a], "x", "Repair", "Closed", None],
                                      [None, uniq("没有"), "y", "维修", None, None]])
    token = csrf_token(admin_client.get("/import/").get_data(as_text=True))
    cli = subprocess.run(flask_cmd("crm", "import", "tickets", str(path), "--json", "--user", "admin"),
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1, cli.stderr
    from_cli = json.loads(cli.stdout)
    with open(path, "rb") as fh:
        resp = admin_client.post("/api/v1/import/tickets", data={"file": (fh, path.name)},
                                 headers={"X-CSRFToken": token}, content_type="multipart/form-data")
    from_api = resp.json
    assert resp.status_code == 200 and from_cli.pop("batch") != from_api.pop("batch")
    assert from_cli == from_api and from_cli["kind"] == "tickets" and from_cli["status"] == "rejected"
    assert sorted(codes(from_cli)) == [(2, "Closed at", "missing_time"), (3, "Customer No.", "not_found"),
                                       (3, "Type", "unknown_choice")]
    r = admin_client.get("/import/template.xlsx?kind=tickets")
    ws = openpyxl.load_workbook(io.BytesIO(r.data)).worksheets[0]
    assert [c.value for c in ws[2]][:6] == ["工单编号", "客户编号", "客户名称", "主题 *", "说明", "类型 *"]
    # dropdowns for the states (as the ticket pages name them) and the teams, from the hidden lists sheet
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    headers = [c.value for c in book.worksheets[0][2]]
    lists = book["lists"]
    choices = {}
    for dv in book.worksheets[0].data_validations.dataValidation:
        column = headers[openpyxl.utils.column_index_from_string(str(dv.sqref).split(":")[0].rstrip("0123456789")) - 1]
        ref = dv.formula1.split("!")[-1].replace("$", "")
        choices[column] = [c.value for row in lists[ref] for c in row] if ":" in ref else dv.formula1
    assert choices["状态"] == ["新建", "已分配", "处理中", "待审核", "已归档", "已关闭"]
    assert choices["团队"][:2] == ["技术支持组", "客户关怀组"]  # the seeded teams (tests may add more)
