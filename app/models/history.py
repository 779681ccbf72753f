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
    # The customer file the change belongs to, by its number: numbers are never reused, while
    # SQLite hands a deleted row's id to the next insert. Deliberately no foreign key: the history
    # of a deleted (or merged) customer must outlive it. A merge re-points it to the survivor.
    customer_no = Column(String(40), index=True)
    customer_id = Column(Integer)  # informational (the id at the time)
    customer = relationship(
        "Customer", primaryjoin="foreign(FieldChange.customer_no) == Customer.customer_no", viewonly=True)
    field = Column(String(64), nullable=False)
    old_value = Column(Text)  # raw, as stored (dictionary items: their name); shown via history.display_value
    new_value = Column(Text)
    changed_by_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    changed_by = relationship("CrmUser", foreign_keys=[changed_by_id])
    changed_on = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)

    def __repr__(self) -> str:
        return f"{self.entity}#{self.entity_id}.{self.field}"

    # What screens show (FAB calls these as list/show columns); all through app.services.history.
    def changed_on_display(self) -> str:
        from app.views.formatting import fmt_datetime

        return fmt_datetime(self.changed_on)

    def action_display(self) -> str:
        from app.services.history import action_label

        return action_label(self.action)

    def record_display(self) -> str:
        from app.services.history import entity_label

        return f"{entity_label(self.entity)} {self.record_label or ''}".strip()

    def field_display(self) -> str:
        from app.services.history import field_label

        return field_label(self.entity, self.field)

    def old_display(self) -> str:
        from app.services.history import display_value

        return display_value(self, self.old_value)

    def new_display(self) -> str:
        from app.services.history import display_value

        return display_value(self, self.new_value)
