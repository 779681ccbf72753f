"""Daily work as staff live it: recording interactions (to-dos become tasks, the customer's last
contact moves), follow-up plans scheduling the next task at the cadence of the customer's level
and the plan's stage, reminders made once however many workers run the job, the personal inbox
(我的工作台), the interaction and task APIs, and who sees which tasks."""
from __future__ import annotations

import re
import subprocess
import time
import uuid
from datetime import datetime, timedelta

import pytest

from conftest import ROOT, USER_PASSWORD, as_system, csrf_token, flask_cmd, login, subprocess_env




def user_id(app, username: str) -> int:
    from app.extensions import appbuilder

    with app.app_context():
        return appbuilder.sm.find_user(username=username).id


def item_id(app, type_key: str, code: str) -> int:
    from app.extensions import db
    from app.models import DictionaryItem

    with app.app_context():
        return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one().id


def new_customer(app, owner: str, level: str | None = None, **values) -> int:
    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services.numbering import next_number

    level_id = item_id(app, "customer_level", level) if level else None
    with as_system(app):
        user = appbuilder.sm.find_user(username=owner)
        c = Customer(name=f"日常客户{uuid.uuid4().hex[:8]}", customer_no=next_number("customer"), owner_id=user.id,
                     department_id=user.department_id, level_id=level_id, **values)
        db.session.add(c)
        db.session.commit()
        return c.id


def new_task(app, assignee: str, due: datetime, customer_id: int | None = None, title: str | None = None) -> int:
    """A task written directly (the past is allowed here: it is how a task becomes overdue)."""
    from app.extensions import db
    from app.models import Task

    uid = user_id(app, assignee)
    with as_system(app):
        t = Task(title=title or f"任务{uuid.uuid4().hex[:6]}", assignee_id=uid, due_at=due, customer_id=customer_id)
        db.session.add(t)
        db.session.commit()
        return t.id


def staff(client, make_user, role="sales_staff", dept="sales"):
    username = make_user(role, dept)
    assert login(client, username, USER_PASSWORD).status_code == 302
    return username


def api_headers(client) -> dict:
    html = client.get("/resetmypassword/form").get_data(as_text=True)
    return {"X-CSRFToken": csrf_token(html)}


def fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M")


def add_interaction_form(client, customer_id: int, **extra):
    page = client.get(f"/interactionmodelview/add?_flt_0_customer={customer_id}")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "customer": str(customer_id),
            "occurred_at": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "kind": str(extra.pop("kind_id", "")),
            "key_points": extra.pop("key_points", "电话沟通需求"), "next_step": "发送报价", **extra}
    return client.post("/interactionmodelview/add", data=data, follow_redirects=True)


# -- interactions ---------------------------------------------------------------------------

def test_recording_an_interaction_makes_its_todo_a_task_and_moves_last_contact(app, client, make_user):
    from app.extensions import db
    from app.models import Customer, Interaction, Task

    me = staff(client, make_user)
    cid = new_customer(app, me, level="A")
    due = datetime.now() + timedelta(days=2)
    resp = add_interaction_form(client, cid, kind_id=item_id(app, "interaction_kind", "phone"),
                                key_points="确认采购数量", **{"todos-0-title": "寄送样品", "todos-0-due": fmt(due)})
    assert resp.status_code == 200
    with app.app_context():
        inter = db.session.query(Interaction).filter_by(customer_id=cid).one()
        task = db.session.query(Task).filter_by(interaction_id=inter.id).one()
        assert (task.title, task.assignee.username, task.status) == ("寄送样品", me, "pending")
        assert task.due_at == due.replace(second=0, microsecond=0)
        assert db.session.get(Customer, cid).last_contact_at == inter.occurred_at
    # the customer page shows it on the timeline, and filters it by kind
    def timeline(query: str = "") -> str:
        page = client.get(f"/customermodelview/show/{cid}{query}").get_data(as_text=True)
        return page[page.index('id="Timeline"'):page.index('id="Home"')]
    assert "确认采购数量" in timeline() and "寄送样品" in timeline()
    assert "确认采购数量" not in timeline("?kind=visit")
    assert "确认采购数量" in timeline("?kind=phone")
    # and the new task is on the inbox, under 最近分配
    inbox = client.get("/workbench/").get_data(as_text=True)
    assert "寄送样品" in inbox


def test_a_todo_due_in_the_past_is_refused_and_nothing_is_saved(app, client, make_user):
    from app.extensions import db
    from app.models import Interaction, Task

    me = staff(client, make_user)
    cid = new_customer(app, me)
    past = datetime.now() - timedelta(hours=3)
    html = add_interaction_form(client, cid, key_points="不应保存",
                                **{"todos-0-title": "补发资料", "todos-0-due": fmt(past)}).get_data(as_text=True)
    assert "已经过去" in html and fmt(past) in html, html[-3000:]
    headers = api_headers(client)
    resp = client.post("/api/v1/interaction/", headers=headers, json={
        "customer": cid, "key_points": "也不应保存",
        "todos": [{"title": "好的", "due_at": (datetime.now() + timedelta(days=1)).isoformat()},
                  {"title": "过期", "due_at": past.isoformat()}]})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert "todos[2].due_at" in resp.json["message"] and "todos[1].due_at" not in resp.json["message"]
    resp = client.post("/api/v1/task/", headers=headers, json={"title": "过期任务", "due_at": past.isoformat(),
                                                             "assignee": user_id(app, me)})
    assert resp.status_code == 422 and "due_at" in resp.json["message"]
    with app.app_context():
        assert db.session.query(Interaction).filter_by(customer_id=cid).count() == 0
        assert db.session.query(Task).filter(Task.title.in_(["补发资料", "好的", "过期", "过期任务"])).count() == 0


def test_interaction_api_records_todos_and_is_row_scoped(app, client, make_user):
    from app.extensions import db
    from app.models import Customer, Task

    me = staff(client, make_user)
    other = make_user("sales_staff", "sales")
    mine, theirs = new_customer(app, me), new_customer(app, other)
    headers = api_headers(client)
    due = (datetime.now() + timedelta(days=1)).replace(microsecond=0)
    resp = client.post("/api/v1/interaction/", headers=headers, json={
        "customer": mine, "key_points": "线上会议", "kind": item_id(app, "interaction_kind", "meeting"),
        "todos": [{"title": "整理会议纪要", "due_at": due.isoformat()}]})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    new_id = resp.json["id"]
    with app.app_context():
        assert db.session.query(Task).filter_by(interaction_id=new_id).one().due_at == due
        assert db.session.get(Customer, mine).last_contact_at is not None
    assert client.post("/api/v1/interaction/", headers=headers,
                       json={"customer": theirs, "key_points": "越权"}).status_code == 403
    listed = client.get("/api/v1/interaction/").json["result"]
    assert {r["customer"]["id"] for r in listed} == {mine}
    assert client.get(f"/api/v1/interaction/{new_id}").status_code == 200


# -- plans and cadence -----------------------------------------------------------------------

def test_plan_schedules_next_task_at_the_cadence_of_level_and_stage(app, client, make_user):
    from app.extensions import db
    from app.models import Customer, FollowupPlan, Task

    me = staff(client, make_user)
    cid = new_customer(app, me, level="A")
    page = client.get("/followupplanmodelview/add")
    resp = client.post("/followupplanmodelview/add", follow_redirects=True, data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "customer": str(cid),
        "stage": str(item_id(app, "followup_stage", "initial")), "assignee": str(user_id(app, me)),
        "remind_before_minutes": "60", "active": "y"})
    assert resp.status_code == 200
    with app.app_context():
        plan = db.session.query(FollowupPlan).filter_by(customer_id=cid).one()
        first = db.session.query(Task).filter_by(plan_id=plan.id).one()
        assert abs(first.due_at - (datetime.now() + timedelta(days=7))) < timedelta(minutes=5)  # A: weekly
        plan_id, first_id = plan.id, first.id
    # done from the inbox: the next one comes a week later
    inbox = client.get("/workbench/").get_data(as_text=True)
    assert f'data-task="{first_id}"' in inbox
    resp = client.post(f"/workbench/task/{first_id}/done", data={"csrf_token": csrf_token(inbox)}, follow_redirects=True)
    assert "下次跟进" in resp.get_data(as_text=True)
    with as_system(app):
        assert db.session.get(Task, first_id).status == "done"
        nxt = db.session.query(Task).filter(Task.plan_id == plan_id, Task.status != "done").one()
        assert abs(nxt.due_at - (datetime.now() + timedelta(days=7))) < timedelta(minutes=5)
        # level C and stage 方案洽谈 (3 days): the shorter wins; level C alone: monthly
        db.session.get(Customer, cid).level_id = item_id(app, "customer_level", "C")
        db.session.get(FollowupPlan, plan_id).stage_id = item_id(app, "followup_stage", "proposal")
        db.session.commit()
        nxt_id = nxt.id
    assert "<td>3</td>" in client.get("/followupplanmodelview/list/").get_data(as_text=True)
    resp = client.put(f"/api/v1/task/{nxt_id}", headers=api_headers(client), json={"status": "done"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with app.app_context():
        third = db.session.query(Task).filter(Task.plan_id == plan_id, Task.status != "done").one()
        assert abs(third.due_at - (datetime.now() + timedelta(days=3))) < timedelta(minutes=5)
        db.session.get(FollowupPlan, plan_id).stage_id = item_id(app, "followup_stage", "needs")
        db.session.commit()
    assert "<td>30</td>" in client.get("/followupplanmodelview/list/").get_data(as_text=True)


# -- reminders -------------------------------------------------------------------------------

def _reminders(app, **filters) -> list:
    from app.extensions import db
    from app.models import Reminder

    with app.app_context():
        return [(r.kind, r.subject_id, r.user_id, r.period) for r in db.session.query(Reminder).filter_by(**filters)]


def test_task_reminders_once_with_two_workers_running_the_job_at_the_same_time(app, rq_worker, make_user, tmp_path):
    """Two real RQ workers each run task_reminders (different run keys, so the run-once
    bookkeeping does not stop either): the unique key still lets each reminder in once."""
    from rq import Worker
    from rq.job import Job

    from app.extensions import db
    from app.jobs import enqueue
    from app.jobs.queue import get_queue, get_redis
    from app.models import Task

    me = make_user("sales_staff", "sales")
    overdue = [new_task(app, me, datetime.now() - timedelta(hours=h)) for h in (1, 2, 3)]
    soon = new_task(app, me, datetime.now() + timedelta(minutes=30))  # within the default hour's lead
    later = new_task(app, me, datetime.now() + timedelta(days=3))
    name = f"second-worker-{uuid.uuid4().hex[:6]}"
    log = open(tmp_path / "worker2.log", "w")
    proc = subprocess.Popen(flask_cmd("crm", "worker", "--name", name), cwd=ROOT, env=subprocess_env(),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        with app.app_context():
            conn = get_redis()
            deadline = time.time() + 30
            while not any(w.name == name for w in Worker.all(connection=conn)):
                assert time.time() < deadline and proc.poll() is None, (tmp_path / "worker2.log").read_text()
                time.sleep(0.2)
            ids = [enqueue("app.services.reminders:task_reminders", run_key=f"twice-{uuid.uuid4().hex}")
                   for _ in range(4)]
            deadline = time.time() + 60
            while not all(Job.fetch(i, connection=conn).get_status() == "finished" for i in ids):
                assert time.time() < deadline, [Job.fetch(i, connection=conn).get_status() for i in ids]
                time.sleep(0.2)
            workers = {Job.fetch(i, connection=conn).worker_name for i in ids}
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    uid = user_id(app, me)
    got = _reminders(app, user_id=uid)
    assert sorted(k for k, *_ in got) == ["task_due"] + ["task_overdue"] * 3
    assert {s for k, s, *_ in got if k == "task_overdue"} == set(overdue)
    assert [s for k, s, *_ in got if k == "task_due"] == [soon]
    assert later not in {s for _, s, *_ in got}
    with app.app_context():
        assert {db.session.get(Task, t).status for t in overdue} == {"overdue"}
    assert len(workers) >= 1  # both were available; the queue decides who ran what


def test_cli_runs_reminder_jobs_once_each_even_concurrently(app, make_user):
    from app.extensions import db
    from app.models import Customer

    from app.models import Contact

    me = make_user("sales_staff", "sales")
    fresh = new_customer(app, me)  # old, but a contact's phone changed yesterday
    quiet = new_customer(app, me, level="A")  # A: remind after 14 days without contact
    stale = new_customer(app, me)
    recent = new_customer(app, me, level="A")
    with as_system(app):
        db.session.get(Customer, quiet).last_contact_at = datetime.now() - timedelta(days=20)
        db.session.get(Customer, recent).last_contact_at = datetime.now() - timedelta(days=2)
        db.session.add(Contact(customer_id=fresh, name="联系人", phone="13800138000"))
        db.session.commit()
        long_ago = datetime.now() - timedelta(days=40)
        db.session.execute(Customer.__table__.update().where(Customer.id.in_([stale, quiet, recent, fresh]))
                           .values(created_on=long_ago))
        db.session.commit()
    for job in ("no_contact_reminders", "key_info_reminders"):
        procs = [subprocess.Popen(flask_cmd("crm", "jobs", "run", job), cwd=ROOT, env=subprocess_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
    uid = user_id(app, me)
    got = _reminders(app, user_id=uid)
    assert sorted((k, s) for k, s, *_ in got) == sorted(
        [("no_contact", quiet), ("key_info_stale", quiet), ("key_info_stale", stale), ("key_info_stale", recent)])
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|never", p) for *_, p in got)


def test_reminders_show_on_the_owners_inbox_only_and_can_be_dismissed(app, client, make_user):
    from app.extensions import db
    from app.models import Customer
    from app.services.reminders import key_info_reminders

    me = staff(client, make_user)
    other = make_user("sales_staff", "sales")
    mine, theirs = new_customer(app, me), new_customer(app, other)
    with as_system(app):
        db.session.execute(Customer.__table__.update().where(Customer.id.in_([mine, theirs]))
                           .values(created_on=datetime.now() - timedelta(days=31)))
        db.session.commit()
    with as_system(app):
        key_info_reminders()
        names = {cid: str(db.session.get(Customer, cid)) for cid in (mine, theirs)}
    inbox = client.get("/workbench/").get_data(as_text=True)
    assert names[mine] in inbox and "联系信息" in inbox and names[theirs] not in inbox
    assert re.search(r"我的工作台 \(\d+\)", inbox), "the menu shows the count"
    rid = re.search(r'action="/workbench/reminder/(\d+)/read"', inbox).group(1)
    client.post(f"/workbench/reminder/{rid}/read", data={"csrf_token": csrf_token(inbox)})
    assert names[mine] not in client.get("/workbench/").get_data(as_text=True)


# -- who sees which tasks --------------------------------------------------------------------

def test_tasks_are_scoped_own_for_staff_department_for_supervisors(app, client, make_user):
    a = make_user("sales_staff", "sales")
    b = make_user("sales_staff", "sales")
    svc = make_user("service_staff", "service")
    boss = make_user("sales_supervisor", "sales")
    svc_boss = make_user("service_supervisor", "service")
    late = datetime.now() - timedelta(days=1)
    ta, tb, ts = new_task(app, a, late, title=f"A的任务{uuid.uuid4().hex[:4]}"), \
        new_task(app, b, late, title=f"B的任务{uuid.uuid4().hex[:4]}"), \
        new_task(app, svc, late, title=f"客服任务{uuid.uuid4().hex[:4]}")

    def sees(username: str) -> set[int]:
        client.cookie_jar.clear() if hasattr(client, "cookie_jar") else None
        client.get("/logout/")
        assert login(client, username, USER_PASSWORD).status_code == 302
        ids = {r["id"] for r in client.get("/api/v1/task/?q=(page_size:100)").json["result"]}
        return ids & {ta, tb, ts}

    assert sees(a) == {ta}
    assert client.get(f"/api/v1/task/{tb}").status_code == 404
    assert client.get(f"/taskmodelview/show/{tb}").status_code == 404
    assert client.post(f"/workbench/task/{tb}/done",
                       data={"csrf_token": csrf_token(client.get("/workbench/").get_data(as_text=True))}).status_code == 404
    assert sees(boss) == {ta, tb}
    inbox = client.get("/workbench/").get_data(as_text=True)
    assert 'data-section="team_overdue"' in inbox and "A的任务" in inbox and "客服任务" not in inbox
    assert sees(svc_boss) == {ts}
    assert sees(svc) == {ts}
    assert 'data-section="team_overdue"' not in client.get("/workbench/").get_data(as_text=True)


def test_analytics_staff_read_interactions_but_cannot_write_them(app, client, make_user):
    from app.extensions import db
    from app.models import Interaction

    staff(client, make_user, "analytics_staff", "analytics")
    owner = make_user("sales_staff", "sales")
    cid = new_customer(app, owner)
    with as_system(app):
        db.session.add(Interaction(customer_id=cid, key_points="销售写的拜访记录", owner_id=user_id(app, owner)))
        db.session.commit()
    resp = client.post("/api/v1/interaction/", headers=api_headers(client), json={"customer": cid, "key_points": "x"})
    assert resp.status_code == 403
    listed = client.get("/api/v1/interaction/?q=(page_size:100,order_column:id,order_direction:desc)")
    assert listed.status_code == 200 and "销售写的拜访记录" in {r["key_points"] for r in listed.json["result"]}
    with app.app_context():
        assert db.session.query(Interaction).filter_by(customer_id=cid).count() == 1  # nothing written
    assert client.get("/followupplanmodelview/add").status_code == 403
