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

from conftest import ADMIN_PASSWORD, ROOT, USER_PASSWORD, flask_cmd, login, subprocess_env
from test_roles import _as_system, jwt, new_customer, session_csrf

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


def tag() -> str:
    return uuid.uuid4().hex[:8]


# -- SLA clocks --------------------------------------------------------------------------------

@pytest.fixture()
def calendar(app):
    """Mon-Fri 09:00-12:00 and 13:00-18:00 Beijing time; 2025-10-01..08 off; Sat 2025-10-11 worked."""
    from app.extensions import db
    from app.models import Holiday, WorkCalendar

    with _as_system(app):
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
