"""Who an action is recorded as when no person is logged in: the named system user."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import current_app, g

from app.extensions import appbuilder


def system_user():
    user = appbuilder.sm.find_user(username=current_app.config["CRM_SYSTEM_USER"])
    if user is None:
        raise RuntimeError("system user missing: run `flask --app run crm init`")
    return user


@contextmanager
def acting_as(user) -> Iterator[None]:
    """Record what runs inside as done by `user` (FAB's AuditMixin reads g.user)."""
    had, previous = "user" in g, g.get("user")
    g.user = user
    try:
        yield
    finally:
        if had:
            g.user = previous
        else:
            g.pop("user", None)


def as_system_user():
    """Jobs, seeds and CLI imports act as the system user."""
    return acting_as(system_user())
