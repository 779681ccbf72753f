"""The organisation: departments, our user (FAB's user plus department and language) and
server-side login sessions (so that logging out really ends a session)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import relationship

from app.models.dictionary import _localized


class Department(Model):
    __tablename__ = "crm_department"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)  # stable key (seeds, API)
    name = Column(String(100), unique=True, nullable=False)
    name_en = Column(String(100))
    active = Column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return _localized(self.name, self.name_en)


class CrmUser(User):
    """FAB's user with the department it belongs to and its chosen language."""

    __tablename__ = "ab_user"
    department_id = Column(Integer, ForeignKey("crm_department.id"), nullable=True, index=True)
    department = relationship(Department)
    locale = Column(String(10), nullable=True)
    is_system = Column(Boolean, nullable=False, default=False, server_default="0")

    def get_full_name(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        """Chinese names read surname first with no space (李娜); others 'First Last'."""
        first, last = self.first_name or "", self.last_name or ""
        def cjk(text: str) -> bool:
            return any("\u4e00" <= ch <= "\u9fff" for ch in text)
        if cjk(first) and (cjk(last) or not last):
            return f"{last}{first}"
        return f"{first} {last}".strip()


class UserSession(Model):
    """One row per logged-in browser session; deleting it ends the session everywhere."""

    __tablename__ = "crm_user_session"
    id = Column(Integer, primary_key=True)
    token = Column(String(64), unique=True, nullable=False)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    ip = Column(String(64))
    user_agent = Column(String(255))
