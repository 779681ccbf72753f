"""A complaint walked through in a real browser (Chromium) on a real `python run.py` server: the
customer's public form on a phone-sized screen, automatic classification and dispatch, the
handler's progress note and resolution, the satisfaction link from the real periodic job, a low
score, and the revisit task on the supervisor's home page. Screenshots in tests/artifacts/."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT, USER_PASSWORD, flask_cmd, subprocess_env
from e2e.test_browser import CHROMIUM, assert_page_ok, chromium, log_in, shot  # noqa: F401 (fixture)

PHONE = {"width": 390, "height": 844}
DIGITS = "零一二三四五六七八九十"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")


def page_in(browser, viewport):
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.set_default_timeout(15_000)
    return context, context.new_page()


def can_log_in(app, user_id: int) -> str:
    """The username of a user the flow picked (handler, supervisor), with a known password."""
    from app.extensions import appbuilder, db

    with app.app_context():
        user = db.session.get(appbuilder.sm.user_model, user_id)
        appbuilder.sm.reset_password(user.id, USER_PASSWORD)
        return user.username


def feedback_row(app, number: str):
    from app.extensions import db
    from app.models import Feedback

    with app.app_context():
        fb = db.session.query(Feedback).filter_by(feedback_no=number).one()
        return fb.id, fb.handler_id


def test_complaint_from_public_form_to_revisit(app, live_server, chromium, make_user):
    make_user("service_supervisor", "service")  # someone to dispatch service complaints to
    # 1. The customer, on a phone, without logging in.
    public_ctx, page = page_in(chromium, PHONE)
    page.goto(f"{live_server}/public/feedback/new")
    assert_page_ok(page)
    assert page.locator(".navbar").count() == 0, "no back-office layout on public pages"
    page.get_by_label("您的称呼").fill("王先生")
    page.get_by_label("电话").fill("13912345678")
    page.get_by_label("反馈内容").fill("客服态度很差，电话一直没人接，问题拖了一周也没解决，我要投诉！")
    question = page.locator("label[for=challenge_answer]").inner_text()
    a, b = re.search(r"([零一二三四五六七八九十])加([零一二三四五六七八九十])", question).groups()
    page.get_by_label(question.strip(" *")).fill(str(DIGITS.index(a) + DIGITS.index(b)))
    shot(page, "fb-01-public-form-phone")
    page.get_by_role("button", name="提交").click()
    number = page.locator("#feedback-no").inner_text()
    code = page.locator("#feedback-code").inner_text()
    assert re.fullmatch(r"F\d{11}", number) and len(code) == 8
    shot(page, "fb-02-submitted-phone")
    assert not any(c["name"] == "session" for c in public_ctx.cookies()), "public pages keep no session"

    # 2. Classified and dispatched: the handler finds it, classified as a complaint about service.
    fb_id, handler_id = feedback_row(app, number)
    assert handler_id, "dispatched to a 客服部主管"
    handler = can_log_in(app, handler_id)
    staff_ctx, desk = page_in(chromium, {"width": 1280, "height": 800})
    log_in(desk, live_server, handler, USER_PASSWORD)
    assert "待我处理的反馈：" in desk.locator("body").inner_text()
    desk.goto(f"{live_server}/feedbackmodelview/list/")
    assert number in assert_page_ok(desk)
    desk.goto(f"{live_server}/feedbackmodelview/show/{fb_id}")
    text = assert_page_ok(desk)
    for word in ("投诉", "服务问题", "态度", "100%"):
        assert word in text, (word, text[:1500])
    shot(desk, "fb-03-classified-dispatched")

    # 3. Handling: a public progress note, then resolved.
    desk.goto(f"{live_server}/feedbacknotemodelview/add?_flt_0_feedback={fb_id}")
    desk.get_by_label("进展说明").fill("已致电王先生道歉，并安排专人跟进")
    desk.get_by_label("客户可见").check()
    desk.get_by_role("button", name="保存").click()
    desk.wait_for_load_state("networkidle")
    desk.goto(f"{live_server}/feedbackmodelview/edit/{fb_id}")
    desk.locator("select#status").select_option("resolved")
    desk.get_by_role("button", name="保存").click()
    desk.wait_for_load_state("networkidle")
    assert "已解决" in assert_page_ok(desk)

    # 4. The periodic job makes the satisfaction link (run once, as an operator would).
    out = subprocess.run(flask_cmd("crm", "jobs", "run", "satisfaction_followup"), cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]

    # 5. The customer checks progress with number + code and answers: 2 points.
    page.goto(f"{live_server}/public/feedback/status")
    page.get_by_label("反馈编号").fill(number)
    page.get_by_label("查询码，或手机号后 4 位").fill(code)
    page.get_by_role("button", name="查询进度").click()
    status = assert_page_ok(page)
    assert "已解决" in status and "已致电王先生道歉" in status
    assert handler not in status
    shot(page, "fb-04-status-phone")
    page.locator("#survey-link").click()
    page.locator("input[name=score][value='2']").check()
    page.get_by_label("评价（选填）").fill("道歉了，但问题还是反复出现")
    shot(page, "fb-05-survey-phone")
    page.get_by_role("button", name="提交").click()
    assert "感谢您的评价" in assert_page_ok(page)

    # 6. The low score made a revisit task, due within 24 hours, on the supervisor's home page.
    from app.extensions import db
    from app.models import Revisit

    with app.app_context():
        revisit = db.session.query(Revisit).filter_by(subject_kind="feedback", subject_id=fb_id).one()
        assignee_id = revisit.assignee_id
    supervisor = can_log_in(app, assignee_id)
    sup_ctx, home = page_in(chromium, {"width": 1280, "height": 800})
    log_in(home, live_server, supervisor, USER_PASSWORD)
    panel = home.locator("#my-revisits").inner_text()
    assert number in panel and "评分 2" in panel
    shot(home, "fb-06-revisit-on-home")
    home.goto(f"{live_server}/feedbackmodelview/show/{fb_id}")
    detail = assert_page_ok(home)
    assert "道歉了，但问题还是反复出现" in detail and "回访" in detail
    for ctx in (public_ctx, staff_ctx, sup_ctx):
        ctx.close()
