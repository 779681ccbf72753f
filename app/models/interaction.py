"""Interaction / follow-up records (互动/跟进记录): DOMAIN.md table 2."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.models.mixins import AuditMixin
from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import relationship


class Interaction(AuditMixin, Model):
    __tablename__ = "crm_interaction"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer")
    occurred_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    kind_id = Column(Integer, ForeignKey("crm_dictionary_item.id"), index=True)
    kind = relationship("DictionaryItem", foreign_keys=[kind_id])
    key_points = Column(Text, nullable=False)
    customer_feedback = Column(Text)
    result_id = Column(Integer, ForeignKey("crm_dictionary_item.id"), index=True)  # 已解决/处理中/待跟进
    result = relationship("DictionaryItem", foreign_keys=[result_id])
    next_step = Column(String(255))
    owner_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    owner = relationship("CrmUser", foreign_keys=[owner_id])
    participants = relationship("CrmUser", secondary="crm_interaction_participant")  # our side
    contacts = relationship("Contact", secondary="crm_interaction_contact")  # the customer's side
    tasks = relationship("Task", back_populates="interaction", order_by="Task.due_at")

    def __repr__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.kind or ''}".strip() if self.occurred_at else ""


# Activity counts in a time window (tagging rules: "≥ 5 interactions in the last 90 days") read
# only this index: a range on occurred_at, grouped by customer, without touching the table.
Index("ix_crm_interaction_occurred_customer", Interaction.occurred_at, Interaction.customer_id)
