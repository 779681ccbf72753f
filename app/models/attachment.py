"""Attachments (附件) of a customer, e.g. contract scans: the bytes live on disk, not in the database."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, event, select
from sqlalchemy.orm import Mapper, Session, backref, object_session, relationship


class Attachment(Model):
    __tablename__ = "crm_attachment"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer", backref=backref("attachments", cascade="all, delete-orphan",
                                                       passive_deletes=True, order_by="Attachment.id"))
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


# A customer's attachment rows go with it (ON DELETE CASCADE); their files must go too, but
# only once the delete is committed. The names are collected before the delete and removed
# after the commit (forgotten on rollback).
_PENDING = "crm_attachment_files_to_remove"


@event.listens_for(Mapper, "before_delete")
def _collect_customer_files(mapper, connection, target) -> None:  # noqa: ARG001
    if mapper.class_.__name__ != "Customer" or target.id is None:
        return
    names = connection.execute(select(Attachment.stored_name).where(Attachment.customer_id == target.id)).scalars()
    session = object_session(target)
    if session is not None:
        session.info.setdefault(_PENDING, []).extend(names)


@event.listens_for(Session, "after_commit")
def _remove_committed_files(session) -> None:
    names = session.info.pop(_PENDING, None)
    if names:
        from app.services.attachments import remove_file

        for name in names:
            remove_file(name)


@event.listens_for(Session, "after_rollback")
def _forget_files(session) -> None:
    session.info.pop(_PENDING, None)
