"""Attachments (附件) of a customer, e.g. contract scans: the bytes live on disk, not in the database.
An attachment may also belong to one of the customer's interaction records or service tickets
(interaction_id / ticket_id); customer_id is set then too, so row scope works through the customer."""
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
    interaction_id = Column(Integer, ForeignKey("crm_interaction.id", ondelete="CASCADE"), nullable=True, index=True)
    interaction = relationship("Interaction", backref=backref("attachments", cascade="all, delete-orphan",
                                                             passive_deletes=True, order_by="Attachment.id"))
    ticket_id = Column(Integer, ForeignKey("crm_ticket.id", ondelete="CASCADE"), nullable=True, index=True)
    ticket = relationship("Ticket", backref=backref("attachments", cascade="all, delete-orphan",
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


# The attachment rows of a customer, interaction or ticket go with it (ON DELETE CASCADE, or the
# ORM's cascade when they are loaded); their files must go too, but only once the delete is
# committed. The names are collected at the delete and removed after the commit (forgotten on
# rollback). Files written in a transaction that rolls back are removed at once (a refused save
# leaves no orphaned file).
_PENDING = "crm_attachment_files_to_remove"
_WRITTEN = "crm_attachment_files_written"
_OWNER_FK = {"Customer": "customer_id", "Interaction": "interaction_id", "Ticket": "ticket_id"}


@event.listens_for(Mapper, "before_delete")
def _collect_files(mapper, connection, target) -> None:  # noqa: ARG001
    name = mapper.class_.__name__
    if name == "Attachment":
        names = [target.stored_name]
    elif name in _OWNER_FK and target.id is not None:
        fk = getattr(Attachment, _OWNER_FK[name])
        names = list(connection.execute(select(Attachment.stored_name).where(fk == target.id)).scalars())
    else:
        return
    session = object_session(target)
    if session is not None and names:
        session.info.setdefault(_PENDING, []).extend(names)


def written_in_transaction(session, stored_name: str) -> None:
    """Remember a file written for rows not committed yet: removed again if they roll back."""
    session.info.setdefault(_WRITTEN, []).append(stored_name)


@event.listens_for(Session, "after_commit")
def _remove_committed_files(session) -> None:
    session.info.pop(_WRITTEN, None)
    names = session.info.pop(_PENDING, None)
    if names:
        from app.services.attachments import remove_file

        for name in names:
            remove_file(name)


@event.listens_for(Session, "after_rollback")
def _forget_files(session) -> None:
    session.info.pop(_PENDING, None)
    written = session.info.pop(_WRITTEN, None)
    if written:
        from app.services.attachments import remove_file

        for name in written:
            remove_file(name)
