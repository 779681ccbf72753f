"""Daily work around a customer: follow-up plans (跟进计划), tasks (待办任务), reminders (提醒) and
the cadence data (跟进频率, per customer level or plan stage) they follow: DOMAIN.md tables 2-3."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, UniqueConstraint,
)
from sqlalchemy.orm import relationship

TASK_STATUSES = ("pending", "done", "overdue")  # 待执行 / 已完成 / 已逾期

interaction_participant = Table(
    "crm_interaction_participant", Model.metadata,
    Column("interaction_id", Integer, ForeignKey("crm_interaction.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True),
)
interaction_contact = Table(
    "crm_interaction_contact", Model.metadata,
    Column("interaction_id", Integer, ForeignKey("crm_interaction.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", Integer, ForeignKey("crm_contact.id", ondelete="CASCADE"), primary_key=True),
)


class Cadence(Model):
    """How often to follow up (cadence_days) and after how many days without contact to remind
    (no_contact_days), for one customer level or plan stage (a dictionary item). Seeded from
    seeds/cadence.yaml, edited by admins under 系统设置 › 跟进频率."""

    __tablename__ = "crm_cadence"
    id = Column(Integer, primary_key=True)
    item_id = Column(Integer, ForeignKey("crm_dictionary_item.id", ondelete="CASCADE"), nullable=False, unique=True)
    item = relationship("DictionaryItem")
    cadence_days = Column(Integer)
    no_contact_days = Column(Integer)

    def __repr__(self) -> str:
        return str(self.item)


class FollowupPlan(Model):
    """One customer's follow-up plan: stage, assignee, reminder lead time. The cadence is not
    stored: it is read from the customer's level and the stage each time (see services.followup)."""

    __tablename__ = "crm_followup_plan"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, unique=True)
    customer = relationship("Customer")
    stage_id = Column(Integer, ForeignKey("crm_dictionary_item.id"), index=True)
    stage = relationship("DictionaryItem")
    assignee_id = Column(Integer, ForeignKey("ab_user.id"), nullable=False, index=True)
    assignee = relationship("CrmUser")
    remind_before_minutes = Column(Integer, nullable=False, default=60)
    active = Column(Boolean, nullable=False, default=True)
    created_on = Column(DateTime, nullable=False, default=datetime.utcnow)

    @property
    def cadence(self) -> int:
        """Days between follow-ups, from the customer's level and this stage (never stored)."""
        from app.services.followup import cadence_days

        return cadence_days(self.customer, self.stage_id)

    def __repr__(self) -> str:
        return str(self.customer)


class Task(Model):
    """A to-do with a due time and an owner: from an interaction, a plan or by hand."""

    __tablename__ = "crm_task"
    # the inbox's look-ups: one person's open tasks by due time, and the recently created ones
    __table_args__ = (Index("ix_crm_task_assignee_due", "assignee_id", "due_at"),
                      Index("ix_crm_task_assignee_created", "assignee_id", "created_on"))
    id = Column(Integer, primary_key=True)
    title = Column(String(255), nullable=False)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), index=True)
    customer = relationship("Customer")
    assignee_id = Column(Integer, ForeignKey("ab_user.id"), nullable=False)  # indexed with due_at below
    assignee = relationship("CrmUser", foreign_keys=[assignee_id])
    due_at = Column(DateTime, nullable=False, index=True)
    status = Column(String(16), nullable=False, default="pending", index=True)
    done_at = Column(DateTime)
    interaction_id = Column(Integer, ForeignKey("crm_interaction.id", ondelete="SET NULL"), index=True)
    interaction = relationship("Interaction", back_populates="tasks")
    plan_id = Column(Integer, ForeignKey("crm_followup_plan.id", ondelete="SET NULL"), index=True)
    plan = relationship(FollowupPlan)
    created_by_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    created_by = relationship("CrmUser", foreign_keys=[created_by_id])
    created_on = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)

    def __repr__(self) -> str:
        return self.title


class Reminder(Model):
    """One reminder for one user. (kind, subject_id, user_id, period) is unique, so a reminder job
    run twice, or by two workers at once, inserts it once (INSERT ... ON CONFLICT DO NOTHING)."""

    __tablename__ = "crm_reminder"
    __table_args__ = (UniqueConstraint("kind", "subject_id", "user_id", "period", name="uq_reminder_once"),)
    id = Column(Integer, primary_key=True)
    # task_due / task_overdue / key_info_stale / no_contact; the SLA alert kinds (ticket);
    # feedback_overdue (feedback); revisit (a low satisfaction score: ticket or feedback)
    kind = Column(String(32), nullable=False)
    subject_id = Column(Integer, nullable=False)  # the task's, customer's, ticket's, feedback's or revisit's id
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True)
    user = relationship("CrmUser")
    period = Column(String(32), nullable=False)  # the occurrence: the due time, the last change ...
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), index=True)
    customer = relationship("Customer")
    task_id = Column(Integer, ForeignKey("crm_task.id", ondelete="CASCADE"), index=True)
    task = relationship(Task)
    ticket_id = Column(Integer, ForeignKey("crm_ticket.id", ondelete="CASCADE"), index=True)
    ticket = relationship("Ticket")
    feedback_id = Column(Integer, ForeignKey("crm_feedback.id", ondelete="CASCADE"), index=True)
    feedback = relationship("Feedback")
    created_on = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    read_at = Column(DateTime)
    emailed_at = Column(DateTime)
