"""Search (检索): the name tokens behind one-box search and the saved filters of users."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import relationship


class CustomerToken(Model):
    """One search token of a customer's name (app/services/search_keys.py); the primary key
    (token, customer_id) is the look-up index and the only one (WITHOUT ROWID on SQLite: one
    B-tree). Imports write ~30 tokens per customer, so every index here costs: there is no index
    on customer_id and no foreign key. The tokens of a customer are removed by recomputing them
    from the stored name (listeners in app/models/customer.py: rename, delete); a token left
    behind is harmless, because every search path checks the name itself after the token
    look-up, and ``search.reindex`` removes orphans."""
    __tablename__ = "crm_customer_token"
    __table_args__ = {"sqlite_with_rowid": False}
    token = Column(String(4), primary_key=True)  # 华星, ^hx, ^hxk
    customer_id = Column(Integer, primary_key=True, autoincrement=False)


class SavedFilter(Model):
    """A user's saved search (query as JSON), optionally shared with the owner's department."""
    __tablename__ = "crm_saved_filter"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_saved_filter_owner_name"),)
    id = Column(Integer, primary_key=True)
    owner_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True)
    owner = relationship("CrmUser")
    name = Column(String(100), nullable=False)
    query = Column(Text, nullable=False)  # JSON: see app/services/search.py SearchQuery
    shared = Column(Boolean, nullable=False, default=False)
    department_id = Column(Integer, ForeignKey("crm_department.id"), nullable=True, index=True)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return self.name
