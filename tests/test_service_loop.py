"""The service loop's closing steps on the real database: a ticket's satisfaction link after
its resolution is approved (console mail, single use, expiry, a low score -> a revisit in the
supervisor's 我的工作台), SLA alerts and overdue feedback as inbox reminders made once by two
concurrent job runs, agents' open-ticket counters exact after a burst of concurrent openings and
transitions, and the public pages in Chinese and English."""
from __future__ import annotations

import re
import subprocess
import threading
from datetime import date, datetime, timedelta

from conftest import ROOT, USER_PASSWORD, as_system, flask_cmd, login, subprocess_env
from test_roles import jwt, new_customer
from test_tickets import _customer_in, _open, as_user, fresh, tag, team  # noqa: F401 (team: a fixture)


def run_jobs(name: str, times: int = 1) -> list[str]:
    """Run a periodic job from the command line ``times`` times at once; their outputs."""
    procs = [subprocess.Popen(flask_cmd("crm", "jobs", "run", name), cwd=ROOT, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(times)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return outs


def uid(app, username: str) -> int:
    from app.extensions import appbuilder

    with app.app_context():
        return appbuilder.sm.find_user(username=username).id


def reminders(app, user: str, kind: str) -> list:
    from app.extensions import db
    from app.models import Reminder

    with app.app_context():
        return [(r.subject_id, r.ticket_id, r.feedback_id) for r in
                db.session.query(Reminder).filter_by(user_id=uid(app, user), kind=kind)]


def handle_to_review(app, pk: int) -> str:
    """The handler starts and submits the ticket; returns the handler's username."""
    from app.extensions import db
    from app.models import Ticket
    from app.services.tickets import transition

    with app.app_context():
        handler = db.session.get(Ticket, pk).handler.username
    with as_user(app, handler):
        t = db.session.get(Ticket, pk)
        transition(t, "start")
        transition(t, "submit", comment="已更换配件")
    return handler


def approve(app, pk: int, boss: str) -> None:
    from app.extensions import db
    from app.models import Ticket
    from app.services.tickets import transition

    with as_user(app, boss):
        transition(db.session.get(Ticket, pk), "approve", comment="通过")


def survey_path(app, pk: int) -> str | None:
    from app.extensions import db
    from app.models import Survey
    from app.services.satisfaction import token_of

    with app.app_context():
        s = db.session.query(Survey).filter_by(subject_kind="ticket", subject_id=pk).one_or_none()
        return f"/public/survey/{token_of(s)}" if s else None


# -- 1. satisfaction for tickets ------------------------------------------------------------------

def test_archived_ticket_gets_a_link_and_a_low_score_reaches_the_supervisors_inbox(app, team):
    from app.extensions import db
    from app.models import Contact, Reminder, Revisit, Survey, Ticket

    cid = _customer_in(app, "east")
    email = f"kehu{tag()}@example.com"
    with as_system(app):
        db.session.add(Contact(customer_id=cid, name="王经理", email=email, is_primary=True))
        db.session.commit()
    pk = _open(app, cid, "repair", f"{team['word']} 空调不制冷")
    handler = handle_to_review(app, pk)
    run_jobs("satisfaction_followup")  # waiting for review is not resolved for the customer yet
    assert survey_path(app, pk) is None
    approve(app, pk, team["boss"])
    out = run_jobs("satisfaction_followup")[0]
    link = survey_path(app, pk)
    assert link and re.search(rf"survey e-mail \(SMTP_URL unset\) to {re.escape(email)}: \S*{re.escape(link)}", out), out
    run_jobs("satisfaction_followup")  # a second run sends no second link
    with app.app_context():
        assert db.session.query(Survey).filter_by(subject_kind="ticket", subject_id=pk).count() == 1

    customer = fresh(app)
    page = customer.get(link)
    with app.app_context():
        number = db.session.get(Ticket, pk).ticket_no
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and number in html and "空调" not in html  # number only, no details
    resp = customer.post(link, data={"score": "2", "comment": "修了两次还是坏"})
    assert resp.status_code == 200 and 'id="survey-done"' in resp.get_data(as_text=True)
    again = customer.post(link, data={"score": "5"})  # single use
    assert again.status_code == 410 and "已经提交" in again.get_data(as_text=True)

    with app.app_context():
        t = db.session.get(Ticket, pk)
        assert (t.satisfaction_score, t.satisfaction_comment) == (2, "修了两次还是坏")
        survey = db.session.query(Survey).filter_by(subject_kind="ticket", subject_id=pk).one()
        assert survey.handler_id == uid(app, handler)
        revisit = db.session.query(Revisit).filter_by(subject_kind="ticket", subject_id=pk).one()
        assert any(r.name == "客服部主管" for r in revisit.assignee.roles)
        assert timedelta(hours=23) < revisit.due_at - survey.answered_at <= timedelta(hours=24)
        supervisor, ticket_no = revisit.assignee.username, t.ticket_no
        assert db.session.query(Reminder).filter_by(kind="revisit", subject_id=revisit.id).count() == 1

    # the supervisor: the revisit in 我的工作台 (counted in the menu), linking to the ticket
    sup = fresh(app)
    assert login(sup, supervisor, USER_PASSWORD).status_code == 302
    bench = sup.get("/workbench/").get_data(as_text=True)
    item = re.search(r'data-reminder="revisit".*?</li>', bench, re.S).group(0)
    assert f'href="/ticketmodelview/show/{pk}"' in item and ticket_no in item and "回访" in item
    assert re.search(r"我的工作台 \(\d+\)", bench)
    # the score on the ticket page (with the handler's scores) and on the board's per-handler figures
    show = sup.get(f"/ticketmodelview/show/{pk}").get_data(as_text=True)
    assert 'id="survey-answer"' in show and "修了两次还是坏" in show and 'class="revisit text-danger"' in show
    # the board lists handlers with open tickets: give the handler another one
    pk2 = _open(app, cid, "consult", f"咨询 {tag()}")
    with as_user(app, team["boss"]):
        from app.services.tickets import transition

        transition(db.session.get(Ticket, pk2), "assign", handler_id=uid(app, handler))
    board = sup.get("/serviceboard/").get_data(as_text=True)
    row = re.search(rf'data-user="{handler}".*?</tr>', board, re.S).group(0)
    assert re.search(r'class="score">\s*2\.0 \(1\)', row), row


def test_used_expired_and_closed_unresolved_tickets_get_no_answer(app, team):
    from app.extensions import db
    from app.models import Survey, Ticket
    from app.services.tickets import transition

    cid = _customer_in(app, "east")
    pk = _open(app, cid, "repair", f"{team['word']} 打印机卡纸")
    handle_to_review(app, pk)
    approve(app, pk, team["boss"])
    closed = _open(app, cid, "repair", f"{team['word']} 重复工单")
    with as_user(app, team["boss"]):
        transition(db.session.get(Ticket, closed), "close", comment="重复提交")
    run_jobs("satisfaction_followup")
    assert survey_path(app, closed) is None  # closed without a resolution: nothing to rate
    link = survey_path(app, pk)
    with app.app_context():
        s = db.session.query(Survey).filter_by(subject_kind="ticket", subject_id=pk).one()
        s.expires_at = datetime.utcnow() - timedelta(minutes=1)
        db.session.commit()
    c = fresh(app)
    resp = c.post(link, data={"score": "1"})
    assert resp.status_code == 410 and "链接已过期" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Ticket, pk).satisfaction_score is None
    resp = c.get(link, headers={"Accept-Language": "en"})
    assert resp.status_code == 410 and "This link has expired." in resp.get_data(as_text=True)


# -- 2. reminders from tickets and feedback in the inbox --------------------------------------------

def test_sla_alerts_and_overdue_feedback_reach_the_inbox_once_under_concurrent_runs(app, team):
    from app.extensions import db
    from app.models import Feedback, Ticket

    pk = _open(app, _customer_in(app, "east"), "repair", f"{team['word']} 服务器宕机")
    now = datetime.utcnow()
    with as_system(app):
        t = db.session.get(Ticket, pk)
        t.first_response_warn_at, t.first_response_due = now - timedelta(minutes=1), now + timedelta(minutes=20)
        db.session.commit()
        handler = t.handler.username
    run_jobs("sla_check", times=2)
    assert reminders(app, handler, "first_response_warning") == [(pk, pk, None)]
    with as_system(app):
        db.session.get(Ticket, pk).first_response_due = now - timedelta(minutes=1)
        db.session.commit()
    run_jobs("sla_check", times=2)
    assert reminders(app, team["boss"], "first_response_breach") == [(pk, pk, None)]

    with as_system(app):  # a feedback past its promised date, and one still within it
        late = Feedback(feedback_no=f"FT{tag()}", content="发票开错了", channel="staff", status="processing",
                        handler_id=uid(app, handler), promised_date=date.today() - timedelta(days=1))
        fine = Feedback(feedback_no=f"FT{tag()}", content="咨询价格", channel="staff", status="pending",
                        handler_id=uid(app, handler), promised_date=date.today() + timedelta(days=2))
        db.session.add_all([late, fine])
        db.session.commit()
        late_id, late_no, fine_id = late.id, late.feedback_no, fine.id
    run_jobs("feedback_reminders", times=2)
    got = reminders(app, handler, "feedback_overdue")
    assert (late_id, None, late_id) in got and all(s != fine_id for s, *_ in got)
    assert got.count((late_id, None, late_id)) == 1

    # the handler's 我的工作台: both, linking to the ticket and the feedback, counted in the menu
    c = fresh(app)
    assert login(c, handler, USER_PASSWORD).status_code == 302
    html = c.get("/workbench/").get_data(as_text=True)
    warn = re.search(r'data-reminder="first_response_warning".*?</li>', html, re.S).group(0)
    assert f'href="/ticketmodelview/show/{pk}"' in warn and "首次响应即将到期" in warn
    late_item = re.search(rf'data-reminder="feedback_overdue">(?:(?!</li>).)*{late_no}.*?</li>', html, re.S).group(0)
    assert f'href="/feedbackmodelview/show/{late_id}"' in late_item and "已过承诺日期" in late_item
    n = int(re.search(r"我的工作台 \((\d+)\)", html).group(1))
    assert n >= 2
    b = fresh(app)
    assert login(b, team["boss"], USER_PASSWORD).status_code == 302
    html = b.get("/workbench/").get_data(as_text=True)
    assert re.search(rf'data-reminder="first_response_breach">.*?href="/ticketmodelview/show/{pk}"', html, re.S)


# -- 3. the agents' open-ticket counters ------------------------------------------------------------

def test_counters_equal_the_real_open_tickets_after_a_concurrent_burst(app, team):
    from sqlalchemy import func

    from app.extensions import db
    from app.models import AgentProfile, Ticket
    from app.models.service import OPEN_STATUSES

    users, word = team["users"], team["word"]
    cid = _customer_in(app, "east")
    with app.app_context():
        from app.models import DictionaryItem

        repair = db.session.query(DictionaryItem.id).filter_by(type_key="ticket_type", code="repair").scalar()
    threads_n, per_thread = 4, 6
    opener = [(fresh(app), None) for _ in range(threads_n)]
    opener = [(c, jwt(c, users["c"], USER_PASSWORD)) for c, _ in opener]
    boss = [(c, jwt(c, team["boss"], USER_PASSWORD)) for c in (fresh(app) for _ in range(threads_n))]
    b_id = uid(app, users["b"])
    created: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        c, auth = opener[n]
        bc, bauth = boss[n]
        start.wait()
        for i in range(per_thread):
            resp = c.post("/api/v1/ticket/", json={"customer": cid, "type": repair, "title": f"{word} 并发 {n}-{i}"},
                          headers=auth)
            if resp.status_code != 201:
                with lock:
                    failures.append(resp.get_data(as_text=True)[:300])
                continue
            pk = resp.get_json()["id"]
            with lock:
                created.append(pk)
                others = list(created)
            # the supervisor closes or reassigns, sometimes a ticket another thread acts on too
            target = others[(n + i) % len(others)]
            body = {"action": "close", "comment": "并发关闭"} if i % 2 else {"action": "assign", "handler_id": b_id}
            r = bc.post(f"/api/v1/ticket/{target}/transition", json=body, headers=bauth)
            if r.status_code not in (200, 422):
                with lock:
                    failures.append(f"{r.status_code} {r.get_data(as_text=True)[:300]}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert len(created) == threads_n * per_thread
    with app.app_context():
        members = [uid(app, users[k]) for k in "abcd"]
        counters = dict(db.session.query(AgentProfile.user_id, AgentProfile.open_tickets)
                        .filter(AgentProfile.user_id.in_(members)))
        real = {m: 0 for m in members}
        real.update(db.session.query(Ticket.handler_id, func.count(Ticket.id)).filter(
            Ticket.handler_id.in_(members), Ticket.status.in_(OPEN_STATUSES)).group_by(Ticket.handler_id))
        assert counters == real
        assert real[uid(app, users["a"])] + real[uid(app, users["b"])] > 0
    # and the next ticket goes to the least loaded of the two skilled members
    pk = _open(app, cid, "consult", f"{word} 之后的工单")
    with app.app_context():
        a, b = real[uid(app, users["a"])], real[uid(app, users["b"])]
        expected = users["a"] if (a, uid(app, users["a"])) < (b, uid(app, users["b"])) else users["b"]
        assert db.session.get(Ticket, pk).handler.username == expected


def test_a_stale_step_is_refused_not_counted_twice(app, team):
    """Two supervisors close the same ticket from pages loaded at the same time: one wins, the
    other is told the ticket changed; the handler's counter drops once."""
    from app.extensions import db
    from app.models import AgentProfile, Ticket
    from app.services.tickets import TicketError, transition

    pk = _open(app, _customer_in(app, "east"), "repair", f"{team['word']} 同时关闭")
    with app.app_context():
        handler_id = db.session.get(Ticket, pk).handler_id
        before = db.session.query(AgentProfile.open_tickets).filter_by(user_id=handler_id).scalar()
    with as_user(app, team["boss"]):
        stale = db.session.get(Ticket, pk)
        stale.status  # loaded: this page shows it 已分配
        with app.app_context(), as_user(app, team["boss"]):  # another request (own session) closes it meanwhile
            transition(db.session.get(Ticket, pk), "close", comment="第一位主管")
        try:
            transition(stale, "close", comment="第二位主管")
            raise AssertionError("the second close was accepted")
        except TicketError as exc:
            assert "已被他人修改" in str(exc)
    with app.app_context():
        assert db.session.query(AgentProfile.open_tickets).filter_by(user_id=handler_id).scalar() == before - 1
        assert [e.comment for e in db.session.get(Ticket, pk).events if e.action == "close"] == ["第一位主管"]


# -- 4. public pages in two languages -----------------------------------------------------------------

def test_public_pages_speak_the_visitors_language_without_a_session(app, make_user):
    zh = fresh(app)
    html = zh.get("/public/feedback/new").get_data(as_text=True)
    assert "提交反馈" in html
    assert 'lang="zh-CN"' in html and 'id="lang-switch"' in html and "English" in html
    switch = re.search(r'id="lang-switch" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "lang=en" in switch

    en = fresh(app)
    resp = en.get(switch)
    html = resp.get_data(as_text=True)
    assert 'lang="en"' in html and "Customer Feedback" in html and "简体中文" in html
    assert "Set-Cookie" not in resp.headers  # nothing of the back office's session
    a, b = re.search(r"How much is (\w+) plus (\w+)\? \(digits\)", html).groups()
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    token = re.search(r'name="challenge_token" value="([^"]+)"', html).group(1)
    # missing content and contact: English messages, saying which field
    resp = en.post("/public/feedback/new?lang=en", data={"challenge_token": token,
                                                          "challenge_answer": str(words.index(a) + words.index(b))})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Please describe your feedback." in html
    assert "Please give a phone number or an e-mail address" in html and "请" not in html

    # Accept-Language alone chooses English; ?lang wins over it
    browser = fresh(app)
    html = browser.get("/public/feedback/status", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert 'lang="en"' in html and "Check progress" in html
    resp = browser.post("/public/feedback/status?lang=en", data={"number": "F000", "code": "x"})
    assert resp.status_code == 404 and "The feedback number and code do not match" in resp.get_data(as_text=True)
    html = browser.get("/public/feedback/status?lang=zh", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="zh-CN"' in html and "查询进度" in html
    resp = browser.post("/public/feedback/status", data={"number": "F000", "code": "x"})
    assert resp.status_code == 404 and "反馈编号和查询码不匹配" in resp.get_data(as_text=True)

    # a logged-in staff member's English back office does not change the public pages' default
    staff = fresh(app)
    assert login(staff, make_user("sales_staff", "sales"), USER_PASSWORD).status_code == 302
    staff.get("/lang/en")
    assert "Customers" in staff.get("/workbench/").get_data(as_text=True)  # the back office is English now
    assert 'lang="zh-CN"' in staff.get("/public/feedback/new").get_data(as_text=True)
