"""Reminders (提醒), made by periodic jobs: tasks coming due (per the plan's lead time), tasks
overdue (their status becomes 已逾期), customers with no contact for N days (per level, data in
crm_cadence) and customers whose contact info has not changed for CRM_KEY_INFO_STALE_DAYS; and
from the service desk: the SLA job's warnings and escalations (one per SLA alert, kinds as in
app/services/sla.py ALERT_KINDS), feedback past its promised date, and revisits raised by a low
satisfaction score. They all land in 我的工作台 (reminders, counted in the menu), linking to their
ticket, feedback or customer.

Each reminder is inserted with INSERT ... ON CONFLICT DO NOTHING on its unique key (kind,
subject, user, period): a job run twice, or by two workers at the same moment, makes it once.
New reminders are e-mailed when SMTP_URL is set (logged to the console otherwise)."""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from flask import current_app
from sqlalchemy import Integer, String, and_, cast, func, literal, null, select, update

from app.extensions import db
from app.models import Cadence, Contact, Customer, Feedback, FollowupPlan, Reminder, Revisit, Task
from app.services.followup import now

log = logging.getLogger(__name__)
DEFAULT_LEAD_MINUTES = 60
KINDS = ("task_due", "task_overdue", "no_contact", "key_info_stale", "feedback_overdue", "revisit")
FEEDBACK_OPEN = ("pending", "processing")


def _once(stmt) -> list[int]:
    """Run an INSERT of reminders that skips those already made (their unique key) and commit;
    the ids of those that were new."""
    stmt = stmt.on_conflict_do_nothing(index_elements=["kind", "subject_id", "user_id", "period"]).returning(Reminder.id)
    ids = [r for (r,) in db.session.execute(stmt)]
    db.session.commit()
    return ids


def _insert_into():
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Reminder)


def _insert(rows: select, links: tuple[str, ...] = ()) -> list[int]:
    """Insert the reminders a SELECT yields (kind, subject_id, user_id, period, customer_id,
    task_id, created_on, then the ``links``: ticket_id / feedback_id); the ids of the new ones."""
    cols = ["kind", "subject_id", "user_id", "period", "customer_id", "task_id", "created_on", *links]
    return _once(_insert_into().from_select(cols, rows))


def remind(kind: str, subject_id: int, user_id: int, period: str, **links) -> list[int]:
    """One reminder (once per kind, subject, user and period), e-mailed like the others."""
    ids = _once(_insert_into().values(kind=kind, subject_id=subject_id, user_id=user_id, period=period[:32],
                                      created_on=now(), **links))
    send_emails(ids)
    return ids


def sla_reminders(alert_ids: list[int]) -> int:
    """The SLA job's new alerts (a warning to the handler, an escalation to the supervisor) as
    reminders to the person told, linking to the ticket, in the job's transaction. Not e-mailed:
    one INSERT .. SELECT keeps the job within its 30 s on a backlog of 100,000 open tickets,
    where e-mailing each (~0.5 ms) would not."""
    from app.models import SlaAlert, Ticket

    made, t = 0, now()
    for start in range(0, len(alert_ids), 10_000):  # bound parameters per statement stay few
        made += len(_insert(select(SlaAlert.kind, SlaAlert.ticket_id, SlaAlert.user_id, cast(SlaAlert.id, String),
                                   Ticket.customer_id, cast(null(), Integer), literal(t), SlaAlert.ticket_id)
                            .join(Ticket, Ticket.id == SlaAlert.ticket_id)
                            .where(SlaAlert.id.in_(alert_ids[start:start + 10_000]), SlaAlert.user_id.isnot(None)),
                            links=("ticket_id",)))
    return made


def feedback_reminders() -> dict:
    """Feedback still open the day after its promised date: a reminder to its handler, once per
    promised date (a new promise reminds again when it passes)."""
    t = now()
    ids = _insert(select(literal("feedback_overdue"), Feedback.id, Feedback.handler_id, _period(Feedback.promised_date),
                         Feedback.customer_id, cast(null(), Integer), literal(t), Feedback.id)
                  .where(Feedback.handler_id.isnot(None), Feedback.status.in_(FEEDBACK_OPEN),
                         Feedback.promised_date < t.date()), links=("feedback_id",))
    return {"feedback_overdue": len(ids), "emailed": send_emails(ids)}


def revisit_reminder(revisit: Revisit, customer_id: int | None) -> list[int]:
    """A revisit (a low score) in its assignee's inbox, linking to the ticket or feedback."""
    if revisit.assignee_id is None:
        return []
    return remind("revisit", revisit.id, revisit.assignee_id, revisit.due_at.isoformat(sep=" ")[:19],
                  customer_id=customer_id, **{f"{revisit.subject_kind}_id": revisit.subject_id})


def _period(column):
    """The occurrence a reminder is about, as text (a timestamp, or 'never')."""
    return func.coalesce(func.substr(cast(column, String), 1, 19), literal("never"))


def task_reminders() -> dict:
    """Tasks due within their lead time, and overdue tasks (marked 已逾期); one reminder each."""
    t = now()
    lead = func.coalesce(FollowupPlan.remind_before_minutes, DEFAULT_LEAD_MINUTES)
    open_tasks = and_(Task.status != "done")
    if db.engine.dialect.name == "postgresql":
        remind_from = Task.due_at - func.make_interval(0, 0, 0, 0, 0, lead)
    else:
        remind_from = func.datetime(Task.due_at, func.printf("-%d minutes", lead))
    due = _insert(select(literal("task_due"), Task.id, Task.assignee_id, _period(Task.due_at), Task.customer_id,
                         Task.id, literal(t))
                  .select_from(Task).outerjoin(FollowupPlan, Task.plan_id == FollowupPlan.id)
                  .where(open_tasks, Task.due_at >= t, remind_from <= t))
    overdue_ids = db.session.execute(update(Task).where(open_tasks, Task.due_at < t).values(status="overdue")
                                     .execution_options(synchronize_session=False))
    db.session.commit()
    overdue = _insert(select(literal("task_overdue"), Task.id, Task.assignee_id, _period(Task.due_at),
                             Task.customer_id, Task.id, literal(t)).where(open_tasks, Task.due_at < t))
    sent = send_emails(due + overdue)
    return {"task_due": len(due), "task_overdue": len(overdue), "marked_overdue": overdue_ids.rowcount, "emailed": sent}


def no_contact_reminders() -> dict:
    """Customers not contacted for their level's no_contact_days: a reminder to the owner, once
    per last contact time."""
    t = now()
    days = Cadence.no_contact_days
    if db.engine.dialect.name == "postgresql":
        limit = literal(t) - func.make_interval(0, 0, 0, days)
    else:
        limit = func.datetime(literal(t), func.printf("-%d days", days))
    since = func.coalesce(Customer.last_contact_at, Customer.created_on)
    ids = _insert(select(literal("no_contact"), Customer.id, Customer.owner_id, _period(Customer.last_contact_at),
                         Customer.id, cast(null(), Integer), literal(t))
                  .select_from(Customer).join(Cadence, Cadence.item_id == Customer.level_id)
                  .where(Customer.owner_id.isnot(None), Customer.archived.is_(False), days.isnot(None), since < limit))
    return {"no_contact": len(ids), "emailed": send_emails(ids)}


def key_info_reminders() -> dict:
    """Customers whose contact info (their contacts' phones, e-mails, IM accounts...) has not been
    updated for CRM_KEY_INFO_STALE_DAYS days (no contacts: counted from the customer's creation):
    a reminder to the owner, once per last update. Other edits of the customer, such as the last
    contact time an interaction moves, do not count."""
    t = now()
    cutoff = t - timedelta(days=int(current_app.config.get("CRM_KEY_INFO_STALE_DAYS", 30)))
    latest = (select(Contact.customer_id, func.max(Contact.changed_on).label("changed"))
              .group_by(Contact.customer_id).subquery())
    last_update = func.coalesce(latest.c.changed, Customer.created_on)
    ids = _insert(select(literal("key_info_stale"), Customer.id, Customer.owner_id, _period(last_update),
                         Customer.id, cast(null(), Integer), literal(t))
                  .select_from(Customer).outerjoin(latest, latest.c.customer_id == Customer.id)
                  .where(Customer.owner_id.isnot(None), Customer.archived.is_(False), last_update < cutoff))
    return {"key_info_stale": len(ids), "emailed": send_emails(ids)}


def describe(reminder: Reminder) -> str:
    """The reminder's text in the current language."""
    from flask_babel import gettext

    if reminder.kind == "task_due":
        return gettext("Task due at %(due)s: %(task)s", due=reminder.period[:16], task=str(reminder.task))
    if reminder.kind == "task_overdue":
        return gettext("Task overdue since %(due)s: %(task)s", due=reminder.period[:16], task=str(reminder.task))
    if reminder.kind == "no_contact":
        return gettext("No contact with %(customer)s since %(since)s", customer=str(reminder.customer),
                       since=reminder.period[:10] if reminder.period != "never" else gettext("never"))
    if reminder.kind == "key_info_stale":
        return gettext("Contact info of %(customer)s not updated since %(since)s", customer=str(reminder.customer),
                       since=reminder.period[:10])
    if reminder.kind == "feedback_overdue":
        return gettext("Feedback %(no)s is past its promised date %(date)s", no=str(reminder.feedback),
                       date=reminder.period[:10])
    subject = reminder.ticket or reminder.feedback
    if reminder.kind == "revisit":
        return gettext("Low satisfaction score on %(no)s: call the customer back by %(due)s", no=str(subject),
                       due=reminder.period[:16])
    from app.services.sla import ALERT_KINDS

    return gettext("%(what)s: ticket %(no)s %(title)s", what=ALERT_KINDS.get(reminder.kind, reminder.kind),
                   no=str(subject), title=getattr(subject, "title", ""))


def send_emails(ids: list[int]) -> int:
    """E-mail new reminders to users with an address: through SMTP_URL (smtp://user:pass@host:port,
    smtps://... for TLS), or logged to the console when it is not set. Returns how many went."""
    if not ids:
        return 0
    from flask_babel import force_locale
    from sqlalchemy.orm import selectinload

    url = current_app.config.get("SMTP_URL")
    sent = 0
    for start in range(0, len(ids), 1000):  # the user and what the text names, loaded in bulk
        rows = db.session.query(Reminder).filter(Reminder.id.in_(ids[start:start + 1000]), Reminder.emailed_at.is_(None)) \
            .options(*(selectinload(getattr(Reminder, r)) for r in ("user", "customer", "task", "ticket", "feedback")))
        done = []
        for r in rows:
            user = r.user
            if not user or not user.email:
                continue
            with force_locale(user.locale or "zh"):
                body = describe(r)
            if url:
                _smtp_send(url, user.email, body)
            else:
                log.info("reminder e-mail (SMTP_URL unset) to %s: %s", user.email, body)
            done.append(r.id)
        if done:
            db.session.execute(update(Reminder).where(Reminder.id.in_(done)).values(emailed_at=datetime.now())
                               .execution_options(synchronize_session=False))
        db.session.commit()
        sent += len(done)
    return sent


def _smtp_send(url: str, to: str, body: str) -> None:
    u = urlparse(url)
    msg = EmailMessage()
    msg["From"] = current_app.config.get("CRM_MAIL_FROM") or (unquote(u.username or "") or "crm@localhost")
    msg["To"], msg["Subject"] = to, f"[{current_app.config.get('APP_NAME', 'CRM')}] {body[:60]}"
    msg.set_content(body)
    cls = smtplib.SMTP_SSL if u.scheme == "smtps" else smtplib.SMTP
    with cls(u.hostname, u.port or (465 if u.scheme == "smtps" else 25), timeout=20) as smtp:
        if u.username:
            smtp.login(unquote(u.username), unquote(u.password or ""))
        smtp.send_message(msg)
