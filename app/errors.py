"""Error pages: a plain message in the user's language and a reference number; never a stack
trace or SQL (those go to the log under the same reference)."""
from __future__ import annotations

import logging
import uuid

from flask import Flask, g, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _render(status: int, title: str, message: str, ref: str | None = None):
    if _wants_json():
        body = {"message": message}
        if ref:
            body["reference"] = ref
        return jsonify(body), status
    from app.extensions import appbuilder

    if "user" not in g:  # errors raised before FAB's own before_request (e.g. CSRF) still get a menu
        g.user = current_user
    try:
        return render_template("crm/error.html", status=status, title=title, message=message, ref=ref,
                               appbuilder=appbuilder, base_template=appbuilder.base_template), status
    except Exception:  # the full page needs the menu (and so the database): fall back to plain HTML
        log.exception("error page could not render")
        body = f"<h1>{status} {escape(title)}</h1><p>{escape(message)}</p>"
        if ref:
            body += f"<p>{escape(_('Reference number'))}: {ref}</p>"
        return body, status


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code and exc.code < 400:
            return exc
        if exc.code == 404:
            return _render(404, _("Page not found"), _("The page you asked for does not exist."))
        if exc.code == 403:
            return _render(403, _("Access denied"), _("You do not have permission to do this."))
        if exc.code == 429:
            return _render(429, _("Too many attempts"),
                           _("Too many attempts. Please wait a minute and try again."))
        if isinstance(exc, CSRFError):
            return _render(400, _("Page expired"),
                           _("The form's security token is missing or has expired. Reload the page and try again."))
        if exc.code == 400:
            return _render(400, _("Bad request"), _("The request could not be understood. Please reload the page and try again."))
        return _render(exc.code or 500, exc.name, exc.name)

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        ref = uuid.uuid4().hex[:10]
        log.exception("unhandled error [ref %s] on %s %s", ref, request.method, request.path)
        try:
            from app.extensions import db

            db.session.rollback()
        except Exception:  # noqa: S110 (the page must render even if the database is gone)
            pass
        return _render(500, _("Something went wrong"),
                       _("The server could not finish this request. Nothing was half-saved. "
                         "Please try again or tell your administrator the reference number."), ref)
