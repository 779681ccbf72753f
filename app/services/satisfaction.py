"""Satisfaction follow-up (满意度回访): within 24 hours of a subject (a feedback, or a ticket whose
resolution was approved: 已归档) being resolved, its customer gets a one-question link
(score 1-5 and a comment; single use; expires). A score of 3 or less raises a revisit for a
supervisor, due within 24 hours. Scores and comments attach to the subject and its handler.

The link's token is an HMAC of the survey id under SECRET_KEY: it can be shown again (staff
page, the customer's status page, the e-mail) without being stored; only its SHA-256 is kept,
to find the survey."""
from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Callable
from urllib.parse import urlparse

from flask import current_app, has_request_context, request
from flask_babel import gettext
from sqlalchemy import func

from app.extensions import db
from app.models import Contact, CrmUser, Feedback, Revisit, Survey, Ticket
from app.models.service import ARCHIVED

log = logging.getLogger(__name__)
LOW_SCORE = 3


@dataclass(frozen=True)
class Subject:
    model: type
    number_attr: str
    resolved_attr: str  # datetime column set when resolved
    score_attrs: tuple[str, str]  # where the score and comment attach
    only: Callable[[], Any] | None  # an extra SQL condition for "resolved"
    page: str  # the staff page's endpoint (the revisit's link)


SUBJECTS: dict[str, Subject] = {}


def register_subject(kind: str, model: type, number_attr: str, page: str, resolved_attr: str = "resolved_at",
                     score_attrs: tuple[str, str] = ("satisfaction_score", "satisfaction_comment"),
                     only: Callable[[], Any] | None = None) -> None:
    """Make ``model`` surveyable: it needs ``handler_id``, ``email`` or a customer, a resolution
    time and two columns for the score and comment."""
    SUBJECTS[kind] = Subject(model, number_attr, resolved_attr, score_attrs, only, page)


register_subject("feedback", Feedback, "feedback_no", "FeedbackModelView.show")
# a ticket is resolved for its customer when the supervisor approves the resolution (待审核 →
# 已归档: closed_at); 送回 and 重开 clear it, 已关闭 (closed unresolved) asks nothing
register_subject("ticket", Ticket, "ticket_no", "TicketModelView.show", resolved_attr="closed_at",
                 only=lambda: Ticket.status == ARCHIVED)


class SurveyError(ValueError):
    """The link is unknown (404), used or expired (410), or the answer is wrong (400)."""

    def __init__(self, message: str, status: int = 410):
        super().__init__(message)
        self.status = status


def token_of(survey: Survey) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"survey:{survey.id}".encode(), hashlib.sha256).hexdigest()[:32]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_of(survey: Survey) -> str:
    """The full link: CRM_PUBLIC_URL (the address customers reach) + /public/survey/<token>."""
    path = f"/public/survey/{token_of(survey)}"
    base = current_app.config.get("CRM_PUBLIC_URL") or (request.host_url if has_request_context() else "")
    return base.rstrip("/") + path


def survey_for(kind: str, subject_id: int) -> Survey | None:
    return (db.session.query(Survey).filter_by(subject_kind=kind, subject_id=subject_id)
            .order_by(Survey.id.desc()).first())


def address_of(subject) -> str | None:
    """Where the link goes: the subject's own e-mail (feedback), else its customer's primary
    (or first) contact's."""
    address = getattr(subject, "email", None)
    if address or getattr(subject, "customer_id", None) is None:
        return address
    return (db.session.query(Contact.email).filter(Contact.customer_id == subject.customer_id, Contact.email.isnot(None),
                                                   Contact.email != "")
            .order_by(Contact.is_primary.desc(), Contact.id).limit(1).scalar())


def _send(survey: Survey, subject) -> str | None:
    """E-mail the link when the subject has an address: through SMTP_URL (returns the address),
    or logged to the console when SMTP_URL is not set (returns None: not sent). Staff read the
    link on the subject's page, a feedback's customer on the status page."""
    address = address_of(subject)
    smtp_url = current_app.config.get("SMTP_URL")
    if not address:
        return None
    if not smtp_url:
        log.info("survey e-mail (SMTP_URL unset) to %s: %s", address, link_of(survey))
        return None
    url = urlparse(smtp_url)
    msg = EmailMessage()
    msg["Subject"] = gettext("How did we do? (%(no)s)", no=survey.subject_no)
    msg["From"] = current_app.config["CRM_MAIL_FROM"]
    msg["To"] = address
    msg.set_content(gettext("Please rate how we handled %(no)s (one question): %(link)s",
                            no=survey.subject_no, link=link_of(survey)))
    cls = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with cls(url.hostname, url.port or (465 if url.scheme == "smtps" else 25), timeout=20) as smtp:
        if url.username:
            smtp.login(url.username, url.password or "")
        smtp.send_message(msg)
    return address


def create_survey(kind: str, subject: Any) -> Survey:
    spec = SUBJECTS[kind]
    hours = current_app.config["CRM_SURVEY_VALID_HOURS"]
    survey = Survey(subject_kind=kind, subject_id=subject.id, subject_no=getattr(subject, spec.number_attr),
                    handler_id=subject.handler_id, expires_at=datetime.utcnow() + timedelta(hours=hours))
    db.session.add(survey)
    db.session.flush()
    survey.token_hash = _hash(token_of(survey))
    db.session.commit()
    try:
        survey.sent_to = _send(survey, subject)
    except (OSError, smtplib.SMTPException):
        log.exception("survey %s: sending the link failed; it stays on the subject's page", survey.id)
    db.session.commit()
    return survey


def send_due_surveys(now: datetime | None = None) -> dict[str, int]:
    """The periodic job: a survey for every subject resolved in the last 24 hours that has none."""
    now = now or datetime.utcnow()
    made = 0
    for kind, spec in SUBJECTS.items():
        resolved = getattr(spec.model, spec.resolved_attr)
        has_survey = db.session.query(Survey.id).filter(Survey.subject_kind == kind,
                                                        Survey.subject_id == spec.model.id).exists()
        extra = [spec.only()] if spec.only else []
        for subject in (db.session.query(spec.model).filter(resolved.isnot(None), resolved >= now - timedelta(hours=24),
                                                             ~has_survey, *extra).order_by(spec.model.id)):
            create_survey(kind, subject)
            made += 1
    return {"surveys": made}


def find(token: str) -> Survey:
    """The open survey behind a link, or SurveyError saying why not."""
    survey = db.session.query(Survey).filter_by(token_hash=_hash(token or "")).first()
    if survey is None:
        raise SurveyError(gettext("This link is not valid. Please check that you opened the whole link."), 404)
    if survey.answered_at is not None:
        raise SurveyError(gettext("This survey has already been answered. Thank you!"))
    if survey.expires_at < datetime.utcnow():
        raise SurveyError(gettext("This link has expired."))
    return survey


def supervisor_for_revisit() -> CrmUser | None:
    """The holder of the revisit role (default 客服部主管) with the fewest open revisits."""
    from app.extensions import appbuilder

    role = appbuilder.sm.find_role(current_app.config["CRM_REVISIT_ROLE"])
    if role is None:
        return None
    open_count = (db.session.query(func.count(Revisit.id)).filter(Revisit.assignee_id == CrmUser.id,
                                                                    Revisit.done_at.is_(None)).scalar_subquery())
    return (db.session.query(CrmUser).filter(CrmUser.active.is_(True), CrmUser.roles.any(id=role.id))
            .order_by(open_count, CrmUser.id).first())


def answer(token: str, score: Any, comment: str | None) -> Survey:
    """Record an answer (once). A score ≤ 3 raises a revisit due within 24 hours."""
    survey = find(token)
    try:
        score = int(score)
    except (TypeError, ValueError):
        score = 0
    if not 1 <= score <= 5:
        raise SurveyError(gettext("Please choose a score from 1 to 5."), 400)
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise SurveyError(gettext("The comment may have at most %(n)s characters.", n=2000), 400)
    # single use even when two answers race: only the first update finds it unanswered
    now = datetime.utcnow()
    done = db.session.query(Survey).filter(Survey.id == survey.id, Survey.answered_at.is_(None)).update(
        {"answered_at": now, "score": score, "comment": comment or None}, synchronize_session=False)
    if done != 1:
        db.session.rollback()
        raise SurveyError(gettext("This survey has already been answered. Thank you!"))
    spec = SUBJECTS[survey.subject_kind]
    subject = db.session.get(spec.model, survey.subject_id)
    if subject is not None:
        setattr(subject, spec.score_attrs[0], score)
        setattr(subject, spec.score_attrs[1], comment or None)
    revisit = None
    if score <= LOW_SCORE:
        supervisor = supervisor_for_revisit()
        revisit = Revisit(subject_kind=survey.subject_kind, subject_id=survey.subject_id,
                          subject_no=survey.subject_no, survey_id=survey.id,
                          assignee_id=supervisor.id if supervisor else None, due_at=now + timedelta(hours=24))
        db.session.add(revisit)
        db.session.flush()
    if revisit is not None:  # in the supervisor's 我的工作台; commits the answer with it
        from app.services.reminders import revisit_reminder

        revisit_reminder(revisit, getattr(subject, "customer_id", None))
    db.session.commit()
    db.session.refresh(survey)
    return survey


def handler_scores(handler_id: int) -> tuple[int, float | None]:
    """(answers, mean score) of a handler's surveys."""
    n, mean = db.session.query(func.count(Survey.score), func.avg(Survey.score)).filter(
        Survey.handler_id == handler_id, Survey.score.isnot(None)).one()
    return n, (round(float(mean), 2) if mean is not None else None)



def follow_up(kind: str, subject) -> dict:
    """What a subject's page shows of its follow-up: the survey and its link, the answer, the
    revisits, and the handler's scores over all their surveys."""
    survey = survey_for(kind, subject.id) if subject is not None else None
    revisits = (db.session.query(Revisit).filter_by(subject_kind=kind, subject_id=subject.id).order_by(Revisit.id).all()
                if subject is not None else [])
    return {"kind": kind, "survey": survey, "survey_link": link_of(survey) if survey else None, "revisits": revisits,
            "handler_scores": handler_scores(subject.handler_id) if subject is not None and subject.handler_id else None}


def scores_by_handler(user_ids: list[int]) -> dict[int, tuple[int, float]]:
    """(answers, mean score) per handler, for a list of handlers (one query)."""
    if not user_ids:
        return {}
    rows = db.session.query(Survey.handler_id, func.count(Survey.score), func.avg(Survey.score)).filter(
        Survey.handler_id.in_(user_ids), Survey.score.isnot(None)).group_by(Survey.handler_id)
    return {uid: (n, round(float(mean), 2)) for uid, n, mean in rows}
