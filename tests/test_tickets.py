"""Service desk: SLA clocks across nights, weekends and holidays (and pauses), automatic
assignment, the ticket flow through the UI and the REST API with clear refusals, the SLA job
(warn once, escalate once, via `flask crm jobs run sla_check`), ticket and service-record scope
per role, service record numbers."""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import pytest

from conftest import as_system, ROOT, USER_PASSWORD, flask_cmd, login, subprocess_env
from test_roles import jwt, new_customer, session_csrf

LOCAL = timedelta(hours=8)  # Asia/Shanghai


def utc(text: str) -> datetime:
    """'2025-10-10 17:00' Beijing time -> naive UTC."""
    return datetime.fromisoformat(text) - LOCAL


@contextmanager
def as_user(app, username: str = "admin"):
    """A request context acting as ``username`` (the service checks its permissions)."""
    from flask import g
    from flask_login import login_user

    from app.extensions import appbuilder

    with app.test_request_context("/"):
        g.user = appbuilder.sm.find_user(username=username)
        login_user(g.user)
        yield


_addr = iter(range(1, 60_000))


def fresh(app):
    """A client with an address of its own (login attempts are rate limited per address)."""
    n = next(_addr)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.{200 + n // 62500 % 50}.{n // 250 % 250}.{n % 250 + 1}"
    return c


def tag() -> str:
    return uuid.uuid4().hex[:8]


# -- SLA clocks --------------------------------------------------------------------------------

@pytest.fixture()
def calendar(app):
    """Mon-Fri 09:00-12:00 and 13:00-18:00 Beijing time; 2025-10-01..08 off; Sat 2025-10-11 worked."""
    from app.extensions import db
    from app.models import Holiday, WorkCalendar

    with as_system(app):
        cal = WorkCalendar(key=f"test_{tag()}", name="测试日历", weekdays="1,2,3,4,5",
                           periods="09:00-12:00,13:00-18:00", timezone="Asia/Shanghai")
        cal.holidays = [Holiday(day=date(2025, 10, d), name="国庆节") for d in range(1, 9)] + \
            [Holiday(day=date(2025, 10, 11), name="调休上班", workday=True)]
        db.session.add(cal)
        db.session.commit()
        return cal.id


@pytest.mark.parametrize("start, minutes, due", [
    ("2025-09-23 10:00", 60, "2025-09-23 11:00"),   # inside a morning
    ("2025-09-23 11:30", 60, "2025-09-23 13:30"),   # across lunch
    ("2025-09-23 20:00", 60, "2025-09-24 10:00"),   # across a night
    ("2025-09-26 17:00", 120, "2025-09-29 10:00"),  # Friday evening -> Monday, over the weekend
    ("2025-09-27 10:00", 30, "2025-09-29 09:30"),   # opened on a Saturday
    ("2025-09-30 17:00", 120, "2025-10-09 10:00"),  # over the National Day holidays
    ("2025-10-10 17:00", 120, "2025-10-11 10:00"),  # a make-up Saturday is worked
    ("2025-09-22 09:00", 1440, "2025-09-24 18:00"),  # 24 working hours = three working days
])
def test_sla_clock_counts_working_time_only(app, calendar, start, minutes, due):
    from app.extensions import db
    from app.models import WorkCalendar
    from app.services.sla import clock_of

    with app.app_context():
        clock = clock_of(db.session.get(WorkCalendar, calendar))
        assert clock.add(utc(start), minutes) == utc(due)
        assert clock.between(utc(start), utc(due)) == pytest.approx(minutes)
        back = clock.add(utc(due), -minutes)  # counting back lands on the same working minute
        assert clock.between(utc(start), back) == 0 and back >= utc(start)


def _open(app, customer_id: int, type_code: str, title: str, priority: str | None = None, username="admin",
          now: datetime | None = None) -> int:
    from app.extensions import db
    from app.models import DictionaryItem, Ticket
    from app.services.tickets import open_ticket

    with as_user(app, username):
        item = lambda t, c: db.session.query(DictionaryItem).filter_by(type_key=t, code=c).one()  # noqa: E731
        t = Ticket(customer_id=customer_id, type=item("ticket_type", type_code), title=title,
                   priority=item("priority", priority) if priority else None)
        open_ticket(t, now=now)
        db.session.add(t)
        db.session.commit()
        return t.id


def test_deadlines_follow_the_policy_and_pause_while_waiting_on_the_customer(app):
    """Repair: response in 4 working hours (seeded policy, standard calendar). Waiting on the
    customer from Tuesday 10:00 to Wednesday 10:00 (8 working hours) moves both deadlines."""
    from app.extensions import db
    from app.models import Ticket
    from app.services import sla
    from app.services.tickets import transition

    cid = new_customer(app)
    pk = _open(app, cid, "repair", f"设备报修 {tag()}", now=utc("2026-12-01 09:00"))
    with as_user(app):
        from flask import g

        t = db.session.get(Ticket, pk)
        assert t.sla_policy.key == "repair"
        assert t.first_response_due == utc("2026-12-01 14:00")  # 09-12 and 13-14
        assert t.resolution_due == utc("2026-12-03 18:00")  # 24 working hours = Tue, Wed, Thu
        transition(t, "assign", handler_id=g.user.id, now=utc("2026-12-01 09:05"))
        transition(t, "start", now=utc("2026-12-01 09:30"))
        transition(t, "wait", comment="等客户提供序列号", now=utc("2026-12-01 10:00"))
        response, resolution = sla.deadlines(t, now=utc("2026-12-02 09:00"))
        assert response.state == "met"
        # frozen while waiting: Tue 10:00-18:00, Wed and Thu whole days
        assert (resolution.state, resolution.minutes_left) == ("paused", 420 + 480 + 480)
        transition(t, "resume", comment="客户已回复", now=utc("2026-12-02 10:00"))
        assert t.paused_minutes == 480  # Tue 10-12, 13-18, Wed 9-10
        assert t.resolution_due == utc("2026-12-04 18:00")  # one working day later
        transition(t, "submit", comment="已更换主板", now=utc("2026-12-02 11:00"))
        # handling time: Tue 09:00 -> Wed 11:00 = 10 working hours, 8 of them waiting
        assert t.handling_hours == pytest.approx(2.0)
        assert [e.action for e in t.events][-5:] == ["assign", "start", "wait", "resume", "submit"]
        assert all(e.user_id == g.user.id for e in t.events[-5:])


# -- automatic assignment ----------------------------------------------------------------------

@pytest.fixture()
def team(app, make_user):
    """A team of its own with a rule on a unique keyword (tried first), a supervisor, and
    service agents: a (repair, east), b (repair, any region), c (complaint), d (repair, away)."""
    from app.extensions import appbuilder, db
    from app.models import AgentProfile, AssignmentRule, Department, Team

    word = f"KW{tag()}"
    users = {k: make_user("service_staff", "service") for k in "abcd"}
    boss = make_user("service_supervisor", "service")
    with as_system(app):
        find = appbuilder.sm.find_user
        team = Team(key=f"t_{word}", name=f"测试组{word}", supervisor=find(username=boss),
                    department=db.session.query(Department).filter_by(key="service").one())
        db.session.add(team)
        for k, (skills, regions, away) in {"a": ("repair", "east", False), "b": ("repair,complaint", "", False),
                                           "c": ("complaint", "", False), "d": ("repair", "", True)}.items():
            db.session.add(AgentProfile(user=find(username=users[k]), team=team, skills=skills, regions=regions,
                                        away=away))
        rule = AssignmentRule(key=f"r_{word}", name=f"测试规则{word}", sort=1, keywords=word, team=team, skill="repair")
        db.session.add(rule)
        db.session.commit()
        return {"word": word, "users": users, "boss": boss, "team_id": team.id, "rule_id": rule.id}


def _customer_in(app, region_code: str | None) -> int:
    from app.extensions import db
    from app.models import Customer, DictionaryItem

    cid = new_customer(app)
    with as_system(app):
        c = db.session.get(Customer, cid)
        c.region = db.session.query(DictionaryItem).filter_by(type_key="region", code=region_code).one() \
            if region_code else None
        db.session.commit()
    return cid


def _ticket(app, pk):
    from app.extensions import db
    from app.models import Ticket

    return db.session.get(Ticket, pk)


def test_assignment_picks_the_least_loaded_skilled_member_and_records_the_rule(app, team):
    from app.extensions import appbuilder

    users, word = team["users"], team["word"]
    east, south = _customer_in(app, "east"), _customer_in(app, "south")
    picked = []
    for cid in (east, east, east, south):
        pk = _open(app, cid, "consult", f"设备{word}无法开机")
        with app.app_context():
            t = _ticket(app, pk)
            assert t.status == "assigned" and t.assignment_rule_id == team["rule_id"] and t.team_id == team["team_id"]
            assert f"测试规则{word}" in t.events[-1].comment  # the rule that chose is recorded
            picked.append(t.handler.username)
    # c lacks the skill, d is away; a and b share the east customers by load; a does not serve the south
    assert picked[:2] in ([users["a"], users["b"]], [users["b"], users["a"]])
    assert picked[3] == users["b"]
    assert users["c"] not in picked and users["d"] not in picked
    with app.app_context():
        assert appbuilder.sm.find_user(username=picked[2]).username in (users["a"], users["b"])


def test_round_robin_hands_out_in_turn(app, team):
    from app.extensions import db
    from app.models import Team

    with as_system(app):
        db.session.get(Team, team["team_id"]).round_robin = True
        db.session.commit()
    cid = _customer_in(app, "east")
    picked = []
    for _ in range(4):
        with app.app_context():
            picked.append(_ticket(app, _open(app, cid, "consult", f"{team['word']} 报错")).handler.username)
    a, b = team["users"]["a"], team["users"]["b"]
    assert picked in ([a, b, a, b], [b, a, b, a])


def test_no_member_available_leaves_the_ticket_new_in_the_team_queue(app, team):
    from app.extensions import appbuilder, db
    from app.models import AgentProfile

    with as_system(app):
        for k in "ab":
            uid = appbuilder.sm.find_user(username=team["users"][k]).id
            db.session.query(AgentProfile).filter_by(user_id=uid).one().away = True
        db.session.commit()
    pk = _open(app, _customer_in(app, None), "consult", f"{team['word']} 宕机")
    with app.app_context():
        t = _ticket(app, pk)
        assert (t.status, t.handler_id, t.team_id) == ("new", None, team["team_id"])
        assert t.events[-1].action == "queue"


# -- the flow through the API, with refusals -----------------------------------------------------

def item_id(app, type_key: str, code: str) -> int:
    from app.extensions import db
    from app.models import DictionaryItem

    with app.app_context():
        return db.session.query(DictionaryItem.id).filter_by(type_key=type_key, code=code).scalar()


def api(client, headers, method, url, body=None):
    resp = getattr(client, method)(url, json=body, headers=headers)
    return resp.status_code, resp.get_json()


def test_api_flow_refusals_and_reassignment(app, client, team, make_user):
    from app.extensions import appbuilder

    users = team["users"]
    boss, sales = team["boss"], make_user("sales_staff", "sales")
    cid = _customer_in(app, "east")
    staff = jwt(client, users["c"], USER_PASSWORD)  # opens the ticket (complaint skill: not picked)
    type_id = item_id(app, "ticket_type", "repair")
    code, body = api(client, staff, "post", "/api/v1/ticket/",
                     {"customer": cid, "type": type_id, "title": f"{team['word']} 打印机故障", "description": "卡纸"})
    assert code == 201, body
    pk = body["id"]
    code, shown = api(client, staff, "get", f"/api/v1/ticket/{pk}")
    assert code == 200 and re.fullmatch(r"W\d{8}\d{3,}", shown["result"]["ticket_no"])
    assert shown["result"]["status"] == "assigned" and shown["result"]["handler"]["username"] in (users["a"], users["b"])
    assert [d["state"] for d in shown["result"]["sla"]] == ["ok", "ok"]
    handler = shown["result"]["handler"]["username"]
    other = users["b"] if handler == users["a"] else users["a"]

    # an illegal step: archive before handling
    boss_h = jwt(client, boss, USER_PASSWORD)
    code, body = api(client, boss_h, "post", f"/api/v1/ticket/{pk}/transition", {"action": "approve"})
    assert code == 422 and "已分配" in body["message"] and "待审核" in body["message"]
    # staff cannot assign; the supervisor cannot assign to someone without the role
    code, body = api(client, staff, "post", f"/api/v1/ticket/{pk}/transition", {"action": "assign", "handler_id": 1})
    assert code == 422 and body["field"] == "action" and "分派" in body["message"], body
    with app.app_context():
        sales_id = appbuilder.sm.find_user(username=sales).id
        other_id = appbuilder.sm.find_user(username=other).id
    code, body = api(client, boss_h, "post", f"/api/v1/ticket/{pk}/transition", {"action": "assign", "handler_id": sales_id})
    assert code == 422 and body["field"] == "handler" and "不能处理工单" in body["message"]
    code, body = api(client, boss_h, "post", f"/api/v1/ticket/{pk}/transition",
                     {"action": "assign", "handler_id": other_id, "comment": "改派"})
    assert (code, body["handler_id"]) == (200, other_id)

    new_h = jwt(client, other, USER_PASSWORD)
    for action, status in (("start", "in_progress"), ("submit", "pending_review")):
        code, body = api(client, new_h, "post", f"/api/v1/ticket/{pk}/transition", {"action": action})
        assert (code, body["status"]) == (200, status), body
    code, body = api(client, new_h, "post", f"/api/v1/ticket/{pk}/transition", {"action": "approve"})
    assert code == 422  # only a reviewer archives
    code, body = api(client, boss_h, "post", f"/api/v1/ticket/{pk}/transition", {"action": "reject"})
    assert code == 422 and body["field"] == "comment"  # sending back needs a reason
    code, body = api(client, boss_h, "post", f"/api/v1/ticket/{pk}/transition", {"action": "approve", "comment": "好"})
    assert (code, body["status"]) == (200, "archived")
    code, shown = api(client, boss_h, "get", f"/api/v1/ticket/{pk}")
    steps = [(e["action"], e["to"], e["user"]) for e in shown["result"]["events"]]
    assert steps[-4:] == [("assign", "assigned", boss), ("start", "in_progress", other),
                          ("submit", "pending_review", other), ("approve", "archived", boss)]
    assert shown["result"]["handling_hours"] is not None


# -- the SLA job -------------------------------------------------------------------------------

def _flask(*args):
    return subprocess.run(flask_cmd(*args), cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)


def test_sla_job_warns_the_handler_then_escalates_once(app, client, team):
    from app.extensions import db
    from app.models import SlaAlert, Ticket

    pk = _open(app, _customer_in(app, "east"), "repair", f"{team['word']} 设备故障")
    now = datetime.utcnow()
    with as_system(app):  # time passes: the response deadline is near
        t = db.session.get(Ticket, pk)
        t.first_response_warn_at, t.first_response_due = now - timedelta(minutes=1), now + timedelta(minutes=20)
        db.session.commit()
        handler = t.handler.username
    for _ in range(2):  # twice: warned once
        ran = _flask("crm", "jobs", "run", "sla_check")
        assert ran.returncode == 0, ran.stderr[-2000:]
    with app.app_context():
        alerts = [(a.kind, a.user.username) for a in db.session.query(SlaAlert).filter_by(ticket_id=pk)]
        assert alerts == [("first_response_warning", handler)]
    with as_system(app):  # and now it is overdue
        t = db.session.get(Ticket, pk)
        t.first_response_due = now - timedelta(minutes=1)
        db.session.commit()
    for _ in range(2):
        ran = _flask("crm", "jobs", "run", "sla_check")
        assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout.strip().splitlines()[-1])["result"]["first_response_breach"] == 0
    with app.app_context():
        alerts = sorted((a.kind, a.user.username) for a in db.session.query(SlaAlert).filter_by(ticket_id=pk))
        assert alerts == [("first_response_breach", team["boss"]), ("first_response_warning", handler)]
    # shown on the supervisor's home page and on the ticket, with the breach colour in the queue
    assert login(client, team["boss"], USER_PASSWORD).status_code == 302
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'data-kind="first_response_breach"' in home and "首次响应已超时" in home
    page = client.get(f"/ticketmodelview/show/{pk}").get_data(as_text=True)
    assert 'data-kind="first_response_warning"' in page and 'data-state="breached"' in page
    queue = client.get(f"/ticketmodelview/list/?_flt_0_team={team['team_id']}").get_data(as_text=True)
    assert 'data-sla="breached"' in queue


# -- scope per role, the UI flow, service records -------------------------------------------------

def _ticket_nos(client, word) -> set[str]:
    html = client.get(f"/ticketmodelview/list/?_flt_2_title={word}&psize_TicketModelView=100").get_data(as_text=True)
    return set(re.findall(r"W\d{11,}", html))


def test_ticket_scope_per_role(app, client, team, make_user):
    """Handler, collaborator and creator see their tickets; the service supervisor the
    department's; analysts all; other staff nothing, in the UI and the API alike."""
    from app.extensions import appbuilder, db
    from app.models import Ticket

    word, users = team["word"], team["users"]
    sales = make_user("sales_staff", "sales")
    analyst = make_user("analytics_staff", "analytics")
    outsider = make_user("service_staff", "service")  # no profile: never picked
    collaborator = make_user("service_staff", "service")
    cid = new_customer(app, owner=sales)
    pk = _open(app, cid, "repair", f"{word} 范围测试", username=sales)  # opened by sales staff
    with as_system(app):
        t = db.session.get(Ticket, pk)
        t.collaborators.append(appbuilder.sm.find_user(username=collaborator))
        db.session.commit()
        no, handler = t.ticket_no, t.handler.username
    for who, sees in ((sales, True), (handler, True), (collaborator, True), (team["boss"], True), (analyst, True),
                      (outsider, False)):
        c = fresh(app)
        assert login(c, who, USER_PASSWORD).status_code == 302
        assert (no in _ticket_nos(c, word)) is sees, who
        assert (c.get(f"/ticketmodelview/show/{pk}").status_code == 200) is sees, who
        a = fresh(app)  # cookie-less: the API with a JWT
        assert (a.get(f"/api/v1/ticket/{pk}", headers=jwt(a, who, USER_PASSWORD)).status_code == 200) is sees, who
    # the outsider cannot act on it either: 404, not a hint that it exists
    c = fresh(app)
    auth = jwt(c, outsider, USER_PASSWORD)
    assert c.post(f"/api/v1/ticket/{pk}/transition", json={"action": "start"}, headers=auth).status_code == 404
    # sales staff may open tickets for their customers but not take steps
    c = fresh(app)
    auth = jwt(c, sales, USER_PASSWORD)
    assert c.post(f"/api/v1/ticket/{pk}/transition", json={"action": "close", "comment": "x"},
                  headers=auth).status_code == 403
    other = new_customer(app)  # not theirs
    resp = c.post("/api/v1/ticket/", json={"customer": other, "type": item_id(app, "ticket_type", "consult"),
                                          "title": "越权"}, headers=auth)
    assert resp.status_code == 403


def test_ui_open_handle_and_refuse(app, client, team):
    """Through the screens: open a ticket on the form, see it assigned with SLA deadlines, take
    a step, and read a refused step's message."""
    from app.extensions import db
    from app.models import Ticket

    word, users = team["word"], team["users"]
    cid = _customer_in(app, "east")
    assert login(client, users["c"], USER_PASSWORD).status_code == 302
    form = client.get("/ticketmodelview/add").get_data(as_text=True)
    resp = client.post("/ticketmodelview/add", data={
        "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1), "customer": cid,
        "type": item_id(app, "ticket_type", "repair"), "priority": item_id(app, "priority", "high"),
        "title": f"{word} 界面报修", "description": "无法开机"}, follow_redirects=True)
    assert resp.status_code == 200
    with app.app_context():
        t = db.session.query(Ticket).filter(Ticket.title == f"{word} 界面报修").one()
        pk, handler, creator = t.id, t.handler.username, t.created_by.username
    assert creator == users["c"]
    page = client.get(f"/ticketmodelview/show/{pk}").get_data(as_text=True)
    assert "首次响应" in page and 'id="ticket-sla"' in page and "已分配" in page
    assert 'id="ticket-actions"' not in page  # the creator is not the handler: nothing to do
    client.get("/logout/")
    assert login(client, handler, USER_PASSWORD).status_code == 302
    page = client.get(f"/ticketmodelview/show/{pk}").get_data(as_text=True)
    token = session_csrf(client)
    resp = client.post(f"/ticketmodelview/act/{pk}", data={"csrf_token": token, "action": "submit"},
                       follow_redirects=True)
    assert "只有在“处理中”时才能“提交审核”" in resp.get_data(as_text=True)
    resp = client.post(f"/ticketmodelview/act/{pk}", data={"csrf_token": token, "action": "start"},
                       follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "处理中" in html and 'data-action="start"' in html
    mine = client.get("/mytickets/list/").get_data(as_text=True)
    assert f"{word} 界面报修" in mine


def test_service_records_numbered_per_customer_and_scoped(app, client, make_user):
    from app.extensions import db
    from app.models import Customer

    owner, stranger = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    service = make_user("service_staff", "service")
    cid = new_customer(app, owner=owner)
    with app.app_context():
        customer_no = db.session.get(Customer, cid).customer_no
    kind = item_id(app, "service_kind", "after_sales")
    c = fresh(app)
    auth = jwt(c, service, USER_PASSWORD)
    nos = []
    for content in ("上门检修空调", "回访确认"):
        resp = c.post("/api/v1/service_record/", headers=auth, json={
            "customer": cid, "kind": kind, "content": content, "progress": "done", "score": 5})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        nos.append(c.get(f"/api/v1/service_record/{resp.get_json()['id']}", headers=auth).get_json()["result"]["service_no"])
    assert nos == [f"{customer_no}-001", f"{customer_no}-002"]
    bad = c.post("/api/v1/service_record/", headers=auth, json={"customer": cid, "kind": kind, "content": "x",
                                                                 "score": 6})
    assert bad.status_code == 422 and "score" in bad.get_data(as_text=True)
    # the owner sees them, another sales person does not
    for who, count in ((owner, 2), (stranger, 0)):
        h = jwt(fresh(app), who, USER_PASSWORD)
        q = f"(filters:!((col:customer,opr:rel_o_m,value:{cid})))"
        resp = c.get(f"/api/v1/service_record/?q={q}", headers=h)
        assert resp.status_code == 200 and resp.get_json()["count"] == count, who


# -- menus and pages per role ------------------------------------------------------------------

T, MINE, BOARD, REC, AGENTS = ("/ticketmodelview/list/", "/mytickets/list/", "/serviceboard/",
                               "/servicerecordmodelview/list/", "/agentprofilemodelview/list/")
CONFIG = ["/workcalendarmodelview/list/", "/slapolicymodelview/list/", "/teammodelview/list/",
          "/assignmentrulemodelview/list/", "/workcalendarmodelview/add"]
SERVICE_MENUS = {
    "sales_staff": {T, REC}, "sales_supervisor": {T, REC},
    "service_staff": {T, MINE, REC}, "service_supervisor": {T, MINE, BOARD, REC, AGENTS},
    "analytics_staff": {T, REC}, "analytics_supervisor": {T, BOARD, REC},
}


@pytest.mark.parametrize("role_key", list(SERVICE_MENUS))
def test_service_menus_and_pages_per_role(role_key, app, make_user):
    from test_roles import assert_opens, assert_refused

    dept = {"sales": "sales", "service": "service", "analytics": "analytics"}[role_key.split("_")[0]]
    client = fresh(app)
    assert login(client, make_user(role_key, dept), USER_PASSWORD).status_code == 302
    links = set(re.findall(r'href="([^"#]+)"', client.get("/", follow_redirects=True).get_data(as_text=True)))
    every = {T, MINE, BOARD, REC, AGENTS, *CONFIG}
    assert links & every == SERVICE_MENUS[role_key]
    for path in every:
        (assert_opens if path in SERVICE_MENUS[role_key] else assert_refused)(client, path)


def test_admin_configures_the_service_desk(app, admin_client):
    from test_roles import assert_opens

    for path in [T, MINE, BOARD, REC, AGENTS, *CONFIG]:
        assert_opens(admin_client, path)
    html = admin_client.get("/slapolicymodelview/list/").get_data(as_text=True)
    assert "投诉：2 小时内响应" in html  # seeded policies are data an admin edits
    html = admin_client.get("/assignmentrulemodelview/list/").get_data(as_text=True)
    assert "报修 → 技术支持组" in html


def test_close_needs_a_reason_and_reopen_brings_the_ticket_back(app):
    from flask import g

    from app.extensions import db
    from app.models import Ticket
    from app.services.tickets import TicketError, transition

    pk = _open(app, new_customer(app), "consult", f"咨询 {tag()}")
    with as_user(app):
        t = db.session.get(Ticket, pk)
        transition(t, "assign", handler_id=g.user.id)
        with pytest.raises(TicketError, match="原因"):
            transition(t, "close")
        transition(t, "close", comment="客户撤回")
        assert (t.status, t.closed_at is not None) == ("closed", True)
        with pytest.raises(TicketError, match="已关闭"):
            transition(t, "start")
        transition(t, "reopen", comment="客户再次来电")
        assert (t.status, t.closed_at) == ("assigned", None)
        transition(t, "start")
        transition(t, "wait")
        with pytest.raises(TicketError, match="已在等待客户"):
            transition(t, "wait")
        assert [e.action for e in t.events][-4:] == ["close", "reopen", "start", "wait"]
