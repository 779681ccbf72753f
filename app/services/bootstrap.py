"""First start and every deploy: migrate, sync permissions, seed, ensure the admin and the
system user. Safe to run any number of times (``flask crm init``, ``python run.py``)."""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale
from flask_migrate import upgrade

from app.extensions import appbuilder, db
from app.security.passwords import password_problem
from app.services.seeding import SeedReport, load_seeds

log = logging.getLogger(__name__)


@dataclass
class InitResult:
    seeds: SeedReport
    admin_created: bool
    admin_password: str | None  # only when generated now: shown once, never stored in clear


def migrate_database() -> None:
    upgrade(directory=current_app.extensions["migrate"].directory)


def sync_permissions() -> None:
    """Create the admin and public roles and every view/menu permission (admin gets them all)."""
    sm = appbuilder.sm
    sm.add_role(current_app.config["AUTH_ROLE_ADMIN"])
    sm.add_role(current_app.config["AUTH_ROLE_PUBLIC"])
    # FAB commits after every permission it adds; with the default expire-on-commit the admin
    # role's growing permission list is reloaded each time (quadratic: ~11 s of a first start
    # with ~80 views). Nothing else writes meanwhile, so the loaded objects stay valid.
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        appbuilder.add_permissions(update_perms=True)
    finally:
        session.expire_on_commit = expire
    # Not tied to a view: seen by app/security/masking.py ("view full contact info").
    from app.security.masking import PERMISSION, VIEW_MENU

    sm.add_permission_view_menu(PERMISSION, VIEW_MENU)
    from app.services.assignment import DESK_PERMISSIONS  # handle / assign / review tickets

    for perm, view_menu in DESK_PERMISSIONS:
        sm.add_permission_view_menu(perm, view_menu)
    admin = sm.find_role(current_app.config["AUTH_ROLE_ADMIN"])
    missing = [pv for pv in db.session.query(sm.permissionview_model).all() if pv not in admin.permissions]
    if missing:
        admin.permissions.extend(missing)
        db.session.commit()


def ensure_system_user() -> None:
    """The named user that jobs, imports and seeds act as (AuditMixin needs one). It cannot log in."""
    sm = appbuilder.sm
    name = current_app.config["CRM_SYSTEM_USER"]
    if sm.find_user(username=name) is None:
        role = sm.find_role(current_app.config["AUTH_ROLE_PUBLIC"])
        user = sm.add_user(name, "系统", "System", f"{name}@localhost.invalid", role,
                           password=secrets.token_urlsafe(32))
        user.active = False
        user.is_system = True
        db.session.commit()


def ensure_admin() -> tuple[bool, str | None]:
    sm = appbuilder.sm
    if sm.find_user(username="admin") is not None:
        return False, None
    password = os.environ.get("CRM_ADMIN_PASSWORD", "").strip()
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    else:
        problem = password_problem(password)
        if problem:  # the console has no user language: say it in both
            with force_locale("en"):
                english = password_problem(password)
            raise ValueError(f"CRM_ADMIN_PASSWORD: {problem} / {english}")
    role = sm.find_role(current_app.config["AUTH_ROLE_ADMIN"])
    user = sm.add_user("admin", "管理员", "Admin", "admin@localhost.invalid", role, password=password)
    if not user:
        raise RuntimeError("could not create the admin user")
    return True, (password if generated else None)


def initialise() -> InitResult:
    migrate_database()
    sync_permissions()
    ensure_system_user()
    report = load_seeds()
    from app.services.search import reindex

    reindex(only_missing=True)  # search keys of customers written before they existed
    created, password = ensure_admin()
    return InitResult(report, created, password)
