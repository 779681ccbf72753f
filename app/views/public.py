"""Public pages (/public/): the feedback form, the status look-up and the satisfaction link.

No login, no back-office layout or menus, no session cookie (nothing here reads or writes the
session; the CSRF token of the back office is replaced by the single-use server-side challenge),
mobile-friendly templates under templates/public/. Form posts are rate limited per address
(Flask-Limiter, the login limiter's storage); wrong status look-ups have a stricter limit of
their own. A look-up answers the same for an unknown number and a wrong code.

Language: ?lang=zh|en (the switch link on every page; forms post back to the same address, so
it stays), else the browser's Accept-Language, else Simplified Chinese. It is never read from
or stored in the back office's session."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import Blueprint, Flask, current_app, has_request_context, render_template, request, session, url_for
from flask_babel import get_locale, gettext

from app.extensions import db
from app.models import PublicChallenge
from app.security.masking import mask_person_name
from app.services import feedback as svc
from app.services import satisfaction
from app.services.actor import as_system_user

CHALLENGE_MINUTES = 30
_DIGITS = {"zh": "零一二三四五六七八九十",
           "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")}


def public_locale() -> str:
    """The public pages' language: ?lang=, else Accept-Language, else the default (zh)."""
    languages = list(current_app.config["LANGUAGES"])
    chosen = request.args.get("lang")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def _language_links() -> dict:
    """For the templates: the page's language, the switch to the other one, links keeping it."""
    lang = str(get_locale())
    other = "en" if lang == "zh" else "zh"
    args = {**(request.view_args or {}), **request.args.to_dict(), "lang": other}
    return {"lang": lang, "other_lang": other, "other_lang_name": current_app.config["LANGUAGES"][other]["name"],
            "switch_url": url_for(request.endpoint, **args) if request.endpoint else None}


def new_challenge() -> tuple[str, str]:
    """(token, question): a small sum in Chinese numerals, its answer kept in the database."""
    now = datetime.utcnow()
    db.session.query(PublicChallenge).filter(PublicChallenge.expires_at < now).delete()
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    token = secrets.token_urlsafe(24)
    db.session.add(PublicChallenge(token=token, answer=str(a + b), expires_at=now + timedelta(minutes=CHALLENGE_MINUTES)))
    db.session.commit()
    words = _DIGITS.get(str(get_locale()), _DIGITS["zh"])
    return token, gettext("How much is %(a)s plus %(b)s? (digits)", a=words[a], b=words[b])


def passes_challenge(token: str | None, answer: str | None) -> bool:
    """True once per challenge: it is deleted whatever the answer."""
    row = db.session.query(PublicChallenge).filter_by(token=token or "").first()
    if row is None:
        return False
    ok = row.expires_at >= datetime.utcnow() and (answer or "").strip() == row.answer
    db.session.delete(row)
    db.session.commit()
    return ok


def _form_page(values=None, errors=None, status=200):
    token, question = new_challenge()
    return render_template("public/feedback_new.html", values=values or {}, errors=errors or {},
                           challenge_token=token, challenge_question=question), status


def feedback_new():
    if request.method == "GET":
        return _form_page()
    values = {k: request.form.get(k, "") for k in svc.LIMITS}
    if request.form.get("website"):  # the honeypot: people never see it, bots fill it
        return _form_page(values, {"_form": gettext("Your feedback could not be accepted.")}, 400)
    if not passes_challenge(request.form.get("challenge_token"), request.form.get("challenge_answer")):
        return _form_page(values, {"challenge_answer": gettext("The answer to the question is wrong (or the page "
                                                               "was open too long); please try the new question.")}, 400)
    try:
        fb, code = svc.submit(values, "web")
    except svc.FeedbackError as exc:
        return _form_page(values, exc.errors, 400)
    return render_template("public/feedback_done.html", fb=fb, code=code)


def _lookup_failed(response) -> bool:
    return response.status_code == 404


def feedback_status():
    if request.method == "GET":
        return render_template("public/feedback_status.html", fb=None, number=request.args.get("no", ""))
    number = request.form.get("number", "")
    fb = svc.look_up(number, request.form.get("code", ""))
    if fb is None:
        return render_template("public/feedback_status.html", fb=None, number=number,
                               error=gettext("The feedback number and code do not match. Please check both.")), 404
    survey = satisfaction.survey_for("feedback", fb.id)
    open_survey = survey if survey and survey.answered_at is None and survey.expires_at > datetime.utcnow() else None
    return render_template("public/feedback_status.html", fb=fb, number=fb.feedback_no,
                           status=svc.STATUS_LABELS.get(fb.status, fb.status), notes=svc.public_notes(fb),
                           handler=mask_person_name(str(fb.handler)) if fb.handler else "",
                           survey_link=satisfaction.link_of(open_survey) if open_survey else None)


def survey(token: str):
    try:
        if request.method == "POST":
            with as_system_user():  # the customer has no account: the ticket's audit columns name the system
                done = satisfaction.answer(token, request.form.get("score"), request.form.get("comment"))
            return render_template("public/survey.html", done=done)
        item = satisfaction.find(token)
    except satisfaction.SurveyError as exc:
        item = satisfaction.find(token) if exc.status == 400 else None  # a bad score: the form again
        return render_template("public/survey.html", error=str(exc), survey=item, token=token), exc.status
    return render_template("public/survey.html", survey=item, token=token)


def _no_session(response):
    """Nothing here may start or change a session (FAB's locale lookup writes one)."""
    session.modified = False
    return response


def init_app(app: Flask, limiter) -> None:
    """Register the pages: exempt from the back office's CSRF (no session to tie a token to),
    posts rate limited per address, failed look-ups counted apart."""
    bp = Blueprint("public", __name__, url_prefix="/public")
    status_view = feedback_status
    if limiter is not None:
        limiter.limit(lambda: current_app.config["CRM_PUBLIC_RATE_LIMIT"], methods=["POST"])(bp)
        status_view = limiter.limit(lambda: current_app.config["CRM_PUBLIC_LOOKUP_LIMIT"], methods=["POST"],
                                    deduct_when=_lookup_failed, override_defaults=False,
                                    scope="public-lookup")(feedback_status)
    bp.add_url_rule("/feedback/new", "feedback_new", feedback_new, methods=["GET", "POST"])
    bp.add_url_rule("/feedback/status", "feedback_status", status_view, methods=["GET", "POST"])
    bp.add_url_rule("/survey/<token>", "survey", survey, methods=["GET", "POST"])
    bp.after_request(_no_session)
    bp.context_processor(_language_links)
    babel = app.extensions["babel"]
    back_office = babel.locale_selector  # FAB's: the session's language
    babel.locale_selector = lambda: (public_locale() if has_request_context() and request.blueprint == "public"
                                     else back_office())
    app.extensions["csrf"].exempt(bp)
    app.register_blueprint(bp)
