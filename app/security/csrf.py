"""CSRF for the REST API when a browser calls it with its session cookie.

FAB exempts its API blueprints from CSRFProtect and, with ``allow_browser_login``, accepts the
session cookie there: any site could then make a logged-in browser POST, PUT or DELETE on
/api/. So an unsafe API request that authenticates by cookie must carry the page's CSRF token
in a header (X-CSRFToken), checked like a form post. A request with an ``Authorization:
Bearer`` token needs none: browsers never add that header to a cross-site request by
themselves.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_login import current_user


def _check_api_csrf() -> None:
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    if request.method not in current_app.config["WTF_CSRF_METHODS"] or not request.path.startswith("/api/"):
        return
    if request.headers.get("Authorization", "")[:7].lower() == "bearer ":
        return
    if not current_user.is_authenticated:  # no cookie login: the API itself answers 401
        return
    current_app.extensions["csrf"].protect()  # raises CSRFError (400) without a valid token


def init_app(app: Flask) -> None:
    """Register after sessions.init_app, so that a revoked session is already anonymous here."""
    app.before_request(_check_api_csrf)
