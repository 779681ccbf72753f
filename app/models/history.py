"""Field history (修改记录): one row per changed field of a customer or contact, written by
app/services/history.py from session events and never edited afterwards."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import relationship


class FieldChange(Model):
    __tablename__ = "crm_field_change"
    id = Column(Integer, primary_key=True)
    # One save (one database transaction) = one change set: its field rows share this id.
    changeset = Column(String(32), nullable=False, index=True)
    action = Column(String(16), nullable=False)  # create / update / delete / merge / archive
    entity = Column(String(32), nullable=False)  # customer / contact
    entity_id = Column(Integer, nullable=False)
    record_label = Column(String(200))  # the record as it read then (contact name, customer no.)
    # The customer file the change belongs to. Deliberately no foreign key: the history of a
    # deleted (or merged) customer must outlive it. A merge re-points it to the survivor.
    customer_id = Column(Integer, index=True)
    customer = relationship(
        "Customer", primaryjoin="foreign(FieldChange.customer_id) == Customer.id", viewonly=True)
    field = Column(String(64), nullable=False)
    old_value = Column(Text)  # raw, as stored (dictionary items: their name); shown via history.display_value
    new_value = Column(Text)
    changed_by_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    changed_by = relationship("CrmUser", foreign_keys=[changed_by_id])
    changed_on = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)

    def __repr__(self) -> str:
        return f"{self.entity}#{self.entity_id}.{self.field}"
