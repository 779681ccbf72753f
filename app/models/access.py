"""Access rules kept as data: each role's row and column scope (crm_role_policy) and the log
of every full contact value shown to an authorised user (crm_reveal_log)."""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import Role
from flask_babel import gettext
from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import backref, relationship

from app.models.dictionary import _localized

SCOPES = ("own", "department", "all")  # narrowest first: a user gets the widest of their roles'


class RolePolicy(Model):
    """Row scope (own / department / all) and hidden fields of one FAB role. Seeded from
    seeds/roles.yaml (`scope`, `hide_fields`); admins may change it in 系统设置 › 角色数据范围."""

    __tablename__ = "crm_role_policy"
    id = Column(Integer, primary_key=True)
    role_id = Column(Integer, ForeignKey("ab_role.id", ondelete="CASCADE"), nullable=False, unique=True)
    role = relationship("Role", backref=backref("policy", uselist=False))
    name_en = Column(String(100))  # the role's English name (roles.yaml `name_en`); FAB's role has one name
    scope = Column(String(16), nullable=False, default="own")
    hide_fields = Column(Text, nullable=False, default="")  # comma separated field names
    # whose tasks, plans' work and reminders the role sees: own (staff) / department (supervisors) / all
    work_scope = Column(String(16), nullable=False, default="own", server_default="own")
    # Which service tickets: own (handler, collaborator or creator), department, all
    ticket_scope = Column(String(16), nullable=False, default="own", server_default="own")

    @property
    def hidden(self) -> frozenset[str]:
        return frozenset(f.strip() for f in (self.hide_fields or "").replace("，", ",").split(",") if f.strip())

    def __repr__(self) -> str:
        return f"{self.role}: {self.scope}"


def _role_label(role: Role) -> str:
    """A role as users read it: its English name on English screens when it has one (FAB shows a
    role by its repr in user lists, forms and filters; permissions keep using `name`)."""
    policy = role.policy
    if policy is None and role.name == current_app.config.get("AUTH_ROLE_PUBLIC", "Public"):
        return gettext("Public")  # FAB's role of visitors who are not signed in
    return _localized(role.name, policy.name_en if policy is not None else None)


Role.__repr__ = _role_label


def role_name_label(name: str | None) -> str:
    """A role given by its stored name (a list of roles, a feedback rule's role), as users read it."""
    from app.extensions import db

    role = db.session.query(Role).filter_by(name=name).first() if name else None
    return str(role) if role is not None else (name or "")


class RevealLog(Model):
    """One full (unmasked) value shown to a user: who, when, which record and field, where."""

    __tablename__ = "crm_reveal_log"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    user = relationship("CrmUser")
    revealed_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    model = Column(String(32), nullable=False)  # customer / contact
    record_id = Column(Integer, nullable=False)
    field = Column(String(64), nullable=False)
    channel = Column(String(16), nullable=False)  # ui / api
    endpoint = Column(String(255))  # the path that showed it
