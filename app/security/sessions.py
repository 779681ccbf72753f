"""Server-side session records: a signed cookie alone survives logout, so each login gets a
row and every request checks it. Logging out (or an admin disabling a user) deletes the row,
and a cookie saved earlier then reads nothing, on every web process."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import Flask, current_app, request, session
from flask_login import current_user, logout_user, user_logged_in, user_logged_out
from sqlalchemy import delete, event
from sqlalchemy.orm import Session

SESSION_KEY = "_crm_sid"
_TOUCH_EVERY = timedelta(minutes=5)


def _on_login(sender, user, **extra) -> None:  # noqa: ARG001
    from app.extensions import db
    from app.models import UserSession

    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(
        token=token, user_id=user.id, ip=(request.remote_addr or "")[:64],
        user_agent=(request.user_agent.string or "")[:255],
    ))
    db.session.commit()
    session[SESSION_KEY] = token
    session.permanent = True
    if getattr(user, "locale", None) in current_app.config["LANGUAGES"]:
        session["locale"] = user.locale


def _on_logout(sender, user, **extra) -> None:  # noqa: ARG001
    from app.extensions import db
    from app.models import UserSession

    token = session.pop(SESSION_KEY, None)
    if token:
        db.session.query(UserSession).filter_by(token=token).delete()
        db.session.commit()


def _check_session() -> None:
    """Before every request: a logged-in cookie must name a live session row."""
    if request.endpoint == "static" or request.path.startswith("/static/"):
        return
    if not current_user.is_authenticated:
        return
    from app.extensions import db
    from app.models import UserSession

    token = session.get(SESSION_KEY)
    row = db.session.query(UserSession).filter_by(token=token).first() if token else None
    if row is None or row.user_id != current_user.id or not current_user.is_active:
        session.pop(SESSION_KEY, None)
        logout_user()
        session.clear()
        return
    now = datetime.utcnow()
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()


def _remember_locale(response):
    """FAB's /lang/<locale> switches the session's language; we keep it per user as well."""
    if (request.endpoint == "LocaleView.index" and response.status_code in (301, 302)
            and current_user.is_authenticated):
        from app.extensions import db

        locale = (request.view_args or {}).get("locale")
        if locale in current_app.config["LANGUAGES"] and getattr(current_user, "locale", None) != locale:
            current_user.locale = locale
            db.session.commit()
    return response


def end_sessions_of(user_id: int) -> int:
    """End every session of a user (used when an account is disabled). Returns how many."""
    from app.extensions import db
    from app.models import UserSession

    n = db.session.query(UserSession).filter_by(user_id=user_id).delete()
    db.session.commit()
    return n


@event.listens_for(Session, "before_flush")
def _end_sessions_of_disabled_users(db_session, flush_context, instances) -> None:  # noqa: ARG001
    """A user saved as inactive (admin UI, API, CLI) loses every session in the same
    transaction, so re-enabling the account later does not bring an old cookie back."""
    from app.models import CrmUser, UserSession

    ids = [obj.id for obj in db_session.dirty
           if isinstance(obj, CrmUser) and obj.id is not None and obj.active is False]
    if ids:
        db_session.connection().execute(
            delete(UserSession.__table__).where(UserSession.__table__.c.user_id.in_(ids)))


def purge_expired() -> int:
    """Delete session rows older than the session lifetime (a periodic job)."""
    from app.extensions import db
    from app.models import UserSession

    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    seconds = lifetime.total_seconds() if hasattr(lifetime, "total_seconds") else int(lifetime)
    cutoff = datetime.utcnow() - timedelta(seconds=seconds)
    n = db.session.query(UserSession).filter(UserSession.last_seen_at < cutoff).delete()
    db.session.commit()
    return n


def init_app(app: Flask) -> None:
    user_logged_in.connect(_on_login, app)
    user_logged_out.connect(_on_logout, app)
    app.before_request(_check_session)
    app.after_request(_remember_locale)
