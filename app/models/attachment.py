"""Attachments (附件) of a customer, e.g. contract scans: the bytes live on disk, not in the database."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import backref, relationship


class Attachment(Model):
    __tablename__ = "crm_attachment"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer", backref=backref("attachments", passive_deletes=True,
                                                       order_by="Attachment.id"))
    original_name = Column(String(255), nullable=False)  # for display only, never a path
    stored_name = Column(String(64), unique=True, nullable=False)  # random, under CRM_ATTACHMENT_DIR
    extension = Column(String(16), nullable=False)  # checked type: pdf, png, jpg, xlsx, docx, txt
    size = Column(Integer, nullable=False)
    sha256 = Column(String(64), nullable=False)
    uploaded_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, index=True)
    uploaded_by = relationship("CrmUser", foreign_keys=[uploaded_by_id])
    uploaded_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return self.original_name
