"""Customer feedback end to end on the real database: the public form (challenge, honeypot,
limits), classification and dispatch, the customer's status page, staff handling and
correction, the REST API with row scope, the satisfaction link and revisits, the 高频问题 list
and each role's rights."""
from __future__ import annotations

import re
import subprocess
import uuid
from datetime import datetime, timedelta

import pytest

from conftest import ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env

DIGITS = "零一二三四五六七八九十"


# helpers ------------------------------------------------------------------------------------

def public_form(client) -> dict[str, str]:
    """Open the public form: its challenge token and the right answer."""
    resp = client.get("/public/feedback/new")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    token = re.search(r'name="challenge_token" value="([^"]+)"', html).group(1)
    a, b = re.search(r"([零一二三四五六七八九十])加([零一二三四五六七八九十])", html).groups()
    return {"challenge_token": token, "challenge_answer": str(DIGITS.index(a) + DIGITS.index(b))}


def submit_public(client, **values):
    data = {**public_form(client), **values}
    return client.post("/public/feedback/new", data=data)


def submitted(resp) -> tuple[str, str]:
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    return (re.search(r'id="feedback-no">([^<]+)<', html).group(1), re.search(r'id="feedback-code">([^<]+)<', html).group(1))


def feedback(app, number: str):
    from app.extensions import db
    from app.models import Feedback

    with app.app_context():
        fb = db.session.query(Feedback).filter_by(feedback_no=number).one()
        db.session.expunge(fb)
        return fb


def user_id(app, username: str) -> int:
    from app.extensions import appbuilder

    with app.app_context():
        return appbuilder.sm.find_user(username=username).id


def count_feedback(app) -> int:
    from app.extensions import db
    from app.models import Feedback

    with app.app_context():
        return db.session.query(Feedback).count()


@pytest.fixture()
def staff(app, client, make_user):
    """Log a new user of a role in; returns (client, username)."""
    def factory(role_key: str, dept: str | None = None):
        username = make_user(role_key, dept)
        assert login(client, username, USER_PASSWORD).status_code == 302
        return client, username
    return factory


def page_csrf(client) -> str:
    return csrf_token(client.get("/resetmypassword/form").get_data(as_text=True))


def run_job(name: str) -> str:
    out = subprocess.run(flask_cmd("crm", "jobs", "run", name), cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


# the public form ----------------------------------------------------------------------------------

def test_public_form_classifies_numbers_and_dispatches_a_complaint(app, client, make_user):
    pm = make_user("product_manager")
    resp = submit_public(client, contact_name="王先生", phone="139 1234 5678",
                         content="你们的产品质量太差了，用了两天就坏了，我非常不满意，要投诉！")
    number, code = submitted(resp)
    today = datetime.utcnow() + timedelta(hours=8)  # numbers use the Asia/Shanghai date
    assert re.fullmatch(r"F\d{8}\d{3}", number) and number[1:9] in {today.strftime("%Y%m%d"), datetime.utcnow().strftime("%Y%m%d")}
    assert re.fullmatch(r"[A-Z2-9]{8}", code)
    assert "Set-Cookie" not in resp.headers, "public pages must not start a session"
    fb = feedback(app, number)
    assert fb.channel == "web" and fb.auto_type_code == "complaint" and fb.attribute == "product"
    assert {"投诉", "不满意", "太差", "质量"} <= set(fb.matched_words.split("、"))
    assert fb.confidence == 1.0
    # product -> 产品经理, the least busy one (the new user has none open)
    # a 产品经理 with the least open feedback: the new one, or another idle one (demo data)
    with app.app_context():
        from app.extensions import db
        from app.models import CrmUser

        handler = db.session.get(CrmUser, fb.handler_id)
        assert "产品经理" in [r.name for r in handler.roles], handler
    assert pm
    assert fb.promised_date == (fb.submitted_at + timedelta(hours=72)).date()
    assert fb.secret_hash and code not in fb.secret_hash  # stored hashed only


def test_public_form_refuses_bad_input_and_saves_nothing(app, client):
    before = count_feedback(app)
    resp = submit_public(client, phone="13912345678", content="")
    assert resp.status_code == 400 and "请描述您的反馈" in resp.get_data(as_text=True)
    resp = submit_public(client, phone="13912345678", content="太长" * 3000)
    assert resp.status_code == 400 and 'data-error="content"' in resp.get_data(as_text=True)
    assert "最多 5000 个字" in resp.get_data(as_text=True)
    resp = submit_public(client, content="没有联系方式的反馈")
    assert resp.status_code == 400 and 'data-error="phone"' in resp.get_data(as_text=True)
    # the wrong answer to the challenge, a reused challenge, the honeypot
    form = public_form(client)
    resp = client.post("/public/feedback/new", data={**form, "challenge_answer": "99", "phone": "13912345678", "content": "你好"})
    assert resp.status_code == 400 and "答案不正确" in resp.get_data(as_text=True)
    resp = client.post("/public/feedback/new", data={**form, "phone": "13912345678", "content": "你好"})
    assert resp.status_code == 400, "a challenge is good for one try only"
    resp = submit_public(client, phone="13912345678", content="机器人", website="http://spam.example")
    assert resp.status_code == 400
    assert count_feedback(app) == before


def test_public_form_is_rate_limited(app, client):
    app.config["CRM_PUBLIC_RATE_LIMIT"] = "3 per minute"
    try:
        codes = [client.post("/public/feedback/new", data={"content": "x"}).status_code for _ in range(5)]
    finally:
        app.config["CRM_PUBLIC_RATE_LIMIT"] = "10 per minute"
    assert codes[:3] == [400, 400, 400] and codes[3:] == [429, 429]


# the status page ----------------------------------------------------------------------------------

def test_status_page_shows_public_progress_only(app, client, make_user):
    from app.extensions import db
    from app.models import Feedback, FeedbackNote

    handler = make_user("service_supervisor", "service")
    number, code = submitted(submit_public(client, phone="137-0000-4321", content="请问你们的售后服务电话是多少？"))
    with app.app_context():
        fb = db.session.query(Feedback).filter_by(feedback_no=number).one()
        fb.handler_id, fb.status = user_id(app, handler), "processing"
        db.session.add_all([FeedbackNote(feedback_id=fb.id, text="已联系售后，明天回电", public=True),
                            FeedbackNote(feedback_id=fb.id, text="内部：客户上次也投诉过", public=False)])
        db.session.commit()
    for secret in (code, code.lower(), "4321"):  # the code, or the last 4 digits of the phone
        resp = client.post("/public/feedback/status", data={"number": number, "code": secret})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200, html
        assert "处理中" in html and "已联系售后，明天回电" in html and "内部" not in html
        assert "用户**" in html and "用户测试" not in html and handler not in html  # masked handler name
        assert "Set-Cookie" not in resp.headers


def test_status_page_never_tells_whether_a_number_exists(app, client):
    number, _code = submitted(submit_public(client, phone="13600001111", content="建议增加夜间客服"))
    wrong = client.post("/public/feedback/status", data={"number": number, "code": "WRONG123"})
    unknown = client.post("/public/feedback/status", data={"number": "F19990101999", "code": "WRONG123"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.get_data(as_text=True).replace(number, "") == unknown.get_data(as_text=True).replace("F19990101999", "")
    assert "编号和查询码不匹配" in wrong.get_data(as_text=True)


def test_wrong_lookups_are_rate_limited(app, client):
    number, code = submitted(submit_public(client, phone="13600002222", content="咨询价格"))
    codes = [client.post("/public/feedback/status", data={"number": number, "code": f"BAD{i}"}).status_code
             for i in range(6)]
    assert codes[:5] == [404] * 5 and codes[5] == 429
    # even the right code waits now: guessing cannot go on
    assert client.post("/public/feedback/status", data={"number": number, "code": code}).status_code == 429


# staff entry, correction, handling ------------------------------------------------------------------

def new_customer(app, owner: str | None = None, phone: str | None = None) -> tuple[int, str]:
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    with app.test_request_context("/"), as_system_user():
        user = appbuilder.sm.find_user(username=owner) if owner else None
        c = Customer(name=f"反馈测试客户{uuid.uuid4().hex[:6]}", customer_no=next_number("customer"),
                     owner_id=user.id if user else None, department_id=user.department_id if user else None)
        db.session.add(c)
        db.session.flush()
        if phone:
            db.session.add(Contact(customer_id=c.id, name="联系人", phone=phone))
        db.session.commit()
        return c.id, c.customer_no


def test_staff_entry_correction_and_handling(app, staff):
    client, username = staff("service_staff", "service")
    _cid, customer_no = new_customer(app)
    form = client.get("/feedbackmodelview/add")
    assert form.status_code == 200
    token = csrf_token(form.get_data(as_text=True))
    # an unknown customer number is named, nothing saved
    before = count_feedback(app)
    resp = client.post("/feedbackmodelview/add", data={"csrf_token": token, "customer_no": "C00000000999",
                                                        "content": "希望增加微信支付"})
    assert resp.status_code == 200 and "没有编号为 C00000000999 的客户" in resp.get_data(as_text=True)
    assert count_feedback(app) == before
    resp = client.post("/feedbackmodelview/add", data={"csrf_token": token, "customer_no": customer_no,
                                                        "content": "希望增加微信支付的方式，建议优化付款流程"},
                       follow_redirects=True)
    html = resp.get_data(as_text=True)
    shown = re.search(r"反馈 (F\d+) 已保存。客户的查询码（仅此一次显示）：([A-Z2-9]{8})", html)
    assert shown, html[-2000:]  # the code is shown to staff once, to pass on
    from app.extensions import db
    from app.models import DictionaryItem, Feedback

    with app.app_context():
        fb = db.session.query(Feedback).order_by(Feedback.id.desc()).first()
        assert fb.channel == "staff" and fb.customer.customer_no == customer_no and fb.feedback_no == shown.group(1)
        assert shown.group(2) not in fb.secret_hash
        assert fb.auto_type_code == "suggestion" and fb.attribute == "billing"
        complaint = db.session.query(DictionaryItem).filter_by(type_key="feedback_type", code="complaint").one()
        fb_id, complaint_id = fb.id, complaint.id
    public = app.test_client()  # the customer looks it up with that code
    public.environ_base["REMOTE_ADDR"] = f"10.252.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    assert public.post("/public/feedback/status", data={"number": shown.group(1), "code": shown.group(2)}).status_code == 200
    # the staff member corrects the type and resolves it: the correction is counted
    edit = client.get(f"/feedbackmodelview/edit/{fb_id}")
    assert edit.status_code == 200
    resp = client.post(f"/feedbackmodelview/edit/{fb_id}", data={
        "csrf_token": csrf_token(edit.get_data(as_text=True)), "type": str(complaint_id), "status": "resolved",
        "promised_date": ""})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    with app.app_context():
        fb = db.session.get(Feedback, fb_id)
        assert fb.type.code == "complaint" and fb.type_corrected and fb.auto_type_code == "suggestion"
        assert fb.status == "resolved" and fb.resolved_at is not None
    page = client.get(f"/feedbackmodelview/show/{fb_id}").get_data(as_text=True)
    assert "投诉" in page and "建议" in page  # current and classified-as type side by side


def test_problem_list_counts_types_keywords_customers_and_progress(app, staff, client):
    from app.extensions import db
    from app.models import Feedback

    cid, _no = new_customer(app, phone="13511112222")
    for text in ("物流太慢了，快递三天没到，投诉", "快递包装破损，不满意", "物流延误，请问什么时候到"):
        submitted(submit_public(client, phone="13511112222", content=text))
    with app.app_context():
        rows = db.session.query(Feedback).filter(Feedback.customer_id == cid).all()
        assert len(rows) == 3, "the phone on file links the feedback to its customer"
        rows[0].status = "resolved"
        db.session.commit()
    c, _ = staff("service_supervisor", "service")
    html = c.get("/feedback/problems/").get_data(as_text=True)
    words = re.search(r'id="problems-words">(.*?)</table>', html, re.S).group(1)
    row = re.search(r'<td class="crm-data">快递</td>' + r"\s*<td>(\d+)%?</td>" * 5, words)
    assert row, words
    count, customers, resolved, open_, progress = map(int, row.groups())
    assert count >= 2 and customers >= 1 and resolved >= 1 and open_ == count - resolved
    assert 'id="problems-types"' in html and "投诉" in html


# REST API --------------------------------------------------------------------------------------------

def jwt(client, username: str) -> dict[str, str]:
    resp = client.post("/api/v1/security/login", json={"username": username, "password": USER_PASSWORD, "provider": "db"})
    assert resp.status_code == 200
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def test_api_creates_and_scopes_feedback(app, client, make_user):
    seller, other = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    mine, _ = new_customer(app, owner=seller)
    theirs, _ = new_customer(app, owner=other)
    auth = jwt(client, seller)
    resp = client.post("/api/v1/feedback/", json={"customer_id": mine, "content": "表扬你们的工程师，非常专业耐心"}, headers=auth)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert re.fullmatch(r"[A-Z2-9]{8}", body["lookup_code"]) and body["result"]["content"].startswith("表扬")
    fb_id = body["id"]
    assert client.get(f"/api/v1/feedback/{fb_id}", headers=auth).get_json()["result"]["type"]["code"] == "praise"
    # another salesperson's customer: refused, and invisible
    resp = client.post("/api/v1/feedback/", json={"customer_id": theirs, "content": "投诉"}, headers=auth)
    assert resp.status_code == 403
    other_fb = client.post("/api/v1/feedback/", json={"customer_id": theirs, "content": "咨询发票"},
                           headers=jwt(client, other)).get_json()["id"]
    assert client.get(f"/api/v1/feedback/{other_fb}", headers=auth).status_code == 404
    ids = {r["id"] for r in client.get("/api/v1/feedback/?q=(page_size:100)", headers=auth).get_json()["result"]}
    assert fb_id in ids and other_fb not in ids
    # missing content: 422 naming the field; sales staff may not edit (no put)
    resp = client.post("/api/v1/feedback/", json={"customer_id": mine, "content": ""}, headers=auth)
    assert resp.status_code == 422 and "content" in resp.get_json()["message"]
    assert client.put(f"/api/v1/feedback/{fb_id}", json={"status": "closed"}, headers=auth).status_code == 403


def test_api_refuses_an_unknown_status(app, client, make_user):
    sup = make_user("service_supervisor", "service")
    auth = jwt(client, sup)
    fb_id = client.post("/api/v1/feedback/", json={"phone": "13800001234", "content": "请问怎么开发票"}, headers=auth).get_json()["id"]
    resp = client.put(f"/api/v1/feedback/{fb_id}", json={"status": "done-ish"}, headers=auth)
    assert resp.status_code == 422 and "status" in resp.get_json()["message"]
    assert client.put(f"/api/v1/feedback/{fb_id}", json={"status": "processing"}, headers=auth).status_code == 200


# satisfaction and revisits ------------------------------------------------------------------------

def resolve(app, number: str, handler: str | None = None) -> int:
    from app.extensions import db
    from app.models import Feedback

    with app.app_context():
        fb = db.session.query(Feedback).filter_by(feedback_no=number).one()
        fb.status, fb.resolved_at = "resolved", datetime.utcnow()
        if handler:
            fb.handler_id = user_id(app, handler)
        db.session.commit()
        return fb.id


def survey_link(app, fb_id: int) -> str:
    from app.extensions import db
    from app.models import Survey
    from app.services.satisfaction import token_of

    with app.app_context():
        survey = db.session.query(Survey).filter_by(subject_kind="feedback", subject_id=fb_id).one()
        return f"/public/survey/{token_of(survey)}"


def test_low_score_raises_a_revisit_for_the_supervisor(app, client, make_user, staff):
    handler = make_user("service_staff", "service")
    make_user("service_supervisor", "service")  # the revisit goes to a 客服部主管: one exists whatever ran before
    number, code = submitted(submit_public(client, phone="13700005555", content="客服态度很差，不满意"))
    fb_id = resolve(app, number, handler)
    out = run_job("satisfaction_followup")  # the periodic job, run once from the command line
    assert '"surveys":' in out
    link = survey_link(app, fb_id)
    # the customer also finds the link on the status page
    status = client.post("/public/feedback/status", data={"number": number, "code": code}).get_data(as_text=True)
    assert link in status
    page = client.get(link)
    assert page.status_code == 200 and 'name="score"' in page.get_data(as_text=True)
    resp = client.post(link, data={"score": "9"})
    assert resp.status_code == 400 and "1 到 5" in resp.get_data(as_text=True)
    resp = client.post(link, data={"score": "2", "comment": "还是没解决"})
    assert resp.status_code == 200 and 'id="survey-done"' in resp.get_data(as_text=True)
    assert "Set-Cookie" not in resp.headers
    # single use
    again = client.post(link, data={"score": "5"})
    assert again.status_code == 410 and "已经提交" in again.get_data(as_text=True)
    from app.extensions import db
    from app.models import Feedback, Revisit, Survey

    with app.app_context():
        fb = db.session.get(Feedback, fb_id)
        assert (fb.satisfaction_score, fb.satisfaction_comment) == (2, "还是没解决")
        survey = db.session.query(Survey).filter_by(subject_id=fb_id, subject_kind="feedback").one()
        assert survey.handler_id == user_id(app, handler) and survey.score == 2
        revisit = db.session.query(Revisit).filter_by(subject_kind="feedback", subject_id=fb_id).one()
        assert revisit.assignee is not None and any(r.name == "客服部主管" for r in revisit.assignee.roles)
        assert timedelta(hours=23) < revisit.due_at - survey.answered_at <= timedelta(hours=24)
        supervisor = revisit.assignee.username
        # the least loaded 客服部主管 may be one another test made (demo data): sign in as them
        from app.extensions import appbuilder
        appbuilder.sm.reset_password(revisit.assignee_id, USER_PASSWORD)
    # the supervisor sees it on the home page and on the feedback page, and records the call
    sup = app.test_client()
    sup.environ_base["REMOTE_ADDR"] = "10.250.1.1"
    assert login(sup, supervisor, USER_PASSWORD).status_code == 302
    home = sup.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'id="my-revisits"' in home and number in home
    show = sup.get(f"/feedbackmodelview/show/{fb_id}").get_data(as_text=True)
    assert 'class="revisit text-danger"' in show and 'id="survey-answer"' in show
    with app.app_context():
        revisit_id = db.session.query(Revisit.id).filter_by(subject_kind="feedback", subject_id=fb_id).scalar()
    edit = sup.get(f"/revisitmodelview/edit/{revisit_id}")
    resp = sup.post(f"/revisitmodelview/edit/{revisit_id}", data={
        "csrf_token": csrf_token(edit.get_data(as_text=True)), "result": "已回电，客户同意再观察一周", "done": "y"})
    assert resp.status_code == 302
    assert number not in sup.get("/", follow_redirects=True).get_data(as_text=True).split('id="my-revisits"')[-1] or 'id="my-revisits"' not in sup.get("/", follow_redirects=True).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Revisit, revisit_id).done_at is not None


def test_second_job_run_sends_no_second_survey_and_old_resolutions_get_none(app, client):
    from app.extensions import db
    from app.models import Feedback, Survey

    number, _ = submitted(submit_public(client, phone="13700006666", content="谢谢你们，非常满意"))
    old, _ = submitted(submit_public(client, phone="13700006667", content="谢谢"))
    fb_id = resolve(app, number)
    with app.app_context():
        o = db.session.query(Feedback).filter_by(feedback_no=old).one()
        o.status, o.resolved_at = "resolved", datetime.utcnow() - timedelta(hours=30)
        db.session.commit()
        old_id = o.id
    run_job("satisfaction_followup")
    run_job("satisfaction_followup")
    with app.app_context():
        assert db.session.query(Survey).filter_by(subject_kind="feedback", subject_id=fb_id).count() == 1
        assert db.session.query(Survey).filter_by(subject_kind="feedback", subject_id=old_id).count() == 0


def test_expired_and_unknown_links_say_so(app, client):
    from app.extensions import db
    from app.models import Survey

    number, _ = submitted(submit_public(client, phone="13700007777", content="已解决了吗"))
    fb_id = resolve(app, number)
    run_job("satisfaction_followup")
    link = survey_link(app, fb_id)
    with app.app_context():
        s = db.session.query(Survey).filter_by(subject_kind="feedback", subject_id=fb_id).one()
        s.expires_at = datetime.utcnow() - timedelta(minutes=1)
        db.session.commit()
    resp = client.get(link)
    assert resp.status_code == 410 and "链接已过期" in resp.get_data(as_text=True)
    resp = client.get("/public/survey/" + "0" * 32)
    assert resp.status_code == 404 and "链接无效" in resp.get_data(as_text=True)
