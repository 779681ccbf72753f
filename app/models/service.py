"""The service desk (服务台): tickets (DOMAIN.md table 5) and service records (table 6), and the
configuration that drives them as data — working calendars and holidays, SLA policies, teams,
agent profiles (skills, regions, away) and assignment rules. Rules live in app/services/sla.py,
app/services/assignment.py and app/services/tickets.py."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_appbuilder.models.mixins import AuditMixin
from sqlalchemy import (
    Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import column_property, relationship

from app.models.dictionary import _localized

# Ticket states (server-enforced flow, app/services/tickets.py)
NEW, ASSIGNED, IN_PROGRESS, PENDING_REVIEW, ARCHIVED, CLOSED = (
    "new", "assigned", "in_progress", "pending_review", "archived", "closed")
STATUSES = (NEW, ASSIGNED, IN_PROGRESS, PENDING_REVIEW, ARCHIVED, CLOSED)
OPEN_STATUSES = (NEW, ASSIGNED, IN_PROGRESS, PENDING_REVIEW)
# Service record progress (客户服务记录)
PROGRESS = ("pending", "in_progress", "done", "closed")


def _dict_fk(name: str, nullable: bool = True):
    return Column(name, Integer, ForeignKey("crm_dictionary_item.id"), nullable=nullable, index=True)


class WorkCalendar(Model):
    """Working time SLA clocks count in: weekdays (1 = Monday … 7 = Sunday), periods of the day
    ("09:00-12:00,13:30-18:00", local time in ``timezone``) and dated exceptions (Holiday)."""

    __tablename__ = "crm_work_calendar"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    name = Column(String(100), nullable=False)
    weekdays = Column(String(20), nullable=False, default="1,2,3,4,5")
    periods = Column(String(100), nullable=False, default="09:00-18:00")
    timezone = Column(String(40), nullable=False, default="Asia/Shanghai")
    holidays = relationship("Holiday", back_populates="calendar", cascade="all, delete-orphan",
                            order_by="Holiday.day")

    def __repr__(self) -> str:
        return self.name


class Holiday(Model):
    """A day off on a working day (法定节假日), or a working day on a weekend (调休上班: workday)."""

    __tablename__ = "crm_holiday"
    __table_args__ = (UniqueConstraint("calendar_id", "day", name="uq_holiday_calendar_day"),)
    id = Column(Integer, primary_key=True)
    calendar_id = Column(Integer, ForeignKey("crm_work_calendar.id", ondelete="CASCADE"), nullable=False, index=True)
    calendar = relationship(WorkCalendar, back_populates="holidays")
    day = Column(Date, nullable=False)
    name = Column(String(100), nullable=False)
    workday = Column(Boolean, nullable=False, default=False)  # True: a make-up working day

    def __repr__(self) -> str:
        return f"{self.day} {self.name}"


class SlaPolicy(Model):
    """Deadlines per ticket type and priority (an empty priority matches any), in working
    minutes of its calendar; the most specific active policy wins."""

    __tablename__ = "crm_sla_policy"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    name = Column(String(100), nullable=False)
    ticket_type_id = _dict_fk("ticket_type_id")
    ticket_type = relationship("DictionaryItem", foreign_keys=[ticket_type_id])
    priority_id = _dict_fk("priority_id")
    priority = relationship("DictionaryItem", foreign_keys=[priority_id])
    calendar_id = Column(Integer, ForeignKey("crm_work_calendar.id"), nullable=False, index=True)
    calendar = relationship(WorkCalendar)
    first_response_minutes = Column(Integer, nullable=False)
    resolution_minutes = Column(Integer, nullable=False)
    warn_before_minutes = Column(Integer, nullable=False, default=30)
    active = Column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return self.name


class Team(Model):
    """A service team (e.g. 技术支持组); its members are the agent profiles pointing at it."""

    __tablename__ = "crm_team"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    name = Column(String(100), nullable=False)
    name_en = Column(String(100))
    department_id = Column(Integer, ForeignKey("crm_department.id"), index=True)
    department = relationship("Department")
    supervisor_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    supervisor = relationship("CrmUser", foreign_keys=[supervisor_id])
    round_robin = Column(Boolean, nullable=False, default=False)  # else: least loaded
    last_assigned_id = Column(Integer, ForeignKey("ab_user.id"))  # round-robin cursor
    members = relationship("AgentProfile", back_populates="team")

    def __repr__(self) -> str:
        return _localized(self.name, self.name_en)


class AgentProfile(Model):
    """A user as a service agent: team, skills and regions (comma-separated codes), away."""

    __tablename__ = "crm_agent_profile"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, unique=True)
    user = relationship("CrmUser")
    team_id = Column(Integer, ForeignKey("crm_team.id"), index=True)
    team = relationship(Team, back_populates="members")
    skills = Column(String(255), nullable=False, default="")  # e.g. repair,complaint
    regions = Column(String(255), nullable=False, default="")  # region codes; empty = any region
    away = Column(Boolean, nullable=False, default=False)
    # open tickets handled now: kept by app/services/assignment.py in the transaction that moves them
    open_tickets = Column(Integer, nullable=False, default=0, server_default="0")

    def __repr__(self) -> str:
        return repr(self.user)


class AssignmentRule(Model):
    """自动分派: the first active rule (by sort) whose conditions all hold chooses the team; an
    empty condition matches anything. ``skill`` is what the chosen member must have."""

    __tablename__ = "crm_assignment_rule"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    name = Column(String(100), nullable=False)
    sort = Column(Integer, nullable=False, default=100)
    ticket_type_id = _dict_fk("ticket_type_id")
    ticket_type = relationship("DictionaryItem", foreign_keys=[ticket_type_id])
    industry_id = _dict_fk("industry_id")
    industry = relationship("DictionaryItem", foreign_keys=[industry_id])
    region_id = _dict_fk("region_id")
    region = relationship("DictionaryItem", foreign_keys=[region_id])
    level_id = _dict_fk("level_id")
    level = relationship("DictionaryItem", foreign_keys=[level_id])
    keywords = Column(String(255), nullable=False, default="")  # comma-separated; any one matches
    team_id = Column(Integer, ForeignKey("crm_team.id"), nullable=False, index=True)
    team = relationship(Team)
    skill = Column(String(64), nullable=False, default="")
    active = Column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return self.name


ticket_collaborators = Table(
    "crm_ticket_collaborator", Model.metadata,
    Column("ticket_id", Integer, ForeignKey("crm_ticket.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Ticket(AuditMixin, Model):
    __tablename__ = "crm_ticket"
    __table_args__ = (Index("ix_crm_ticket_handler_status", "handler_id", "status"),)
    id = Column(Integer, primary_key=True)
    ticket_no = Column(String(40), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer")
    type_id = _dict_fk("type_id", nullable=False)
    type = relationship("DictionaryItem", foreign_keys=[type_id])
    priority_id = _dict_fk("priority_id")
    priority = relationship("DictionaryItem", foreign_keys=[priority_id])
    title = Column(String(200), nullable=False)
    description = Column(Text)
    # active_history: the old handler and status are known at flush (agents' open-ticket counters)
    status = column_property(Column(String(20), nullable=False, default=NEW, index=True), active_history=True)
    team_id = Column(Integer, ForeignKey("crm_team.id"), index=True)
    team = relationship(Team)
    handler_id = column_property(Column(Integer, ForeignKey("ab_user.id"), index=True), active_history=True)
    handler = relationship("CrmUser", foreign_keys="Ticket.handler_id")
    department_id = Column(Integer, ForeignKey("crm_department.id"), index=True)  # the handling team's
    department = relationship("Department")
    collaborators = relationship("CrmUser", secondary=ticket_collaborators)
    assignment_rule_id = Column(Integer, ForeignKey("crm_assignment_rule.id", ondelete="SET NULL"))
    assignment_rule = relationship(AssignmentRule)
    # SLA clock: deadlines (UTC) from the policy's calendar, shifted by time waiting on the customer
    sla_policy_id = Column(Integer, ForeignKey("crm_sla_policy.id", ondelete="SET NULL"))
    sla_policy = relationship(SlaPolicy)
    opened_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    first_response_due = Column(DateTime)
    resolution_due = Column(DateTime, index=True)
    first_response_warn_at = Column(DateTime)
    resolution_warn_at = Column(DateTime)
    first_responded_at = Column(DateTime)
    resolved_at = Column(DateTime)
    closed_at = Column(DateTime)
    waiting_since = Column(DateTime)  # set while waiting on the customer (clock paused)
    paused_minutes = Column(Integer, nullable=False, default=0)  # working minutes paused so far
    handling_hours = Column(Float)  # working hours from opening to resolution, pauses excluded
    satisfaction_score = Column(Integer)  # the customer's answer to the survey after archiving (1-5)
    satisfaction_comment = Column(Text)
    events = relationship("TicketEvent", back_populates="ticket", cascade="all, delete-orphan",
                          order_by="TicketEvent.id")
    alerts = relationship("SlaAlert", back_populates="ticket", cascade="all, delete-orphan",
                          order_by="SlaAlert.id")
    # optimistic lock: an UPDATE matches only the version it read, so two people moving the same
    # ticket at once cannot both win (and agents' open-ticket counters stay exact)
    version = Column(Integer, nullable=False, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return self.ticket_no or ""


class TicketEvent(Model):
    """One step of a ticket: a transition, an assignment or a pause — who, when, comment."""

    __tablename__ = "crm_ticket_event"
    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("crm_ticket.id", ondelete="CASCADE"), nullable=False, index=True)
    ticket = relationship(Ticket, back_populates="events")
    at = Column(DateTime, nullable=False, default=datetime.utcnow)
    user_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    user = relationship("CrmUser")
    action = Column(String(20), nullable=False)
    from_status = Column(String(20))
    to_status = Column(String(20))
    comment = Column(Text)


class SlaAlert(Model):
    """A warning before a breach or an escalation on breach: once per ticket and kind."""

    __tablename__ = "crm_sla_alert"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", name="uq_sla_alert_ticket_kind"),)
    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("crm_ticket.id", ondelete="CASCADE"), nullable=False)
    ticket = relationship(Ticket, back_populates="alerts")
    kind = Column(String(32), nullable=False)  # first_response_warning / _breach, resolution_warning / _breach
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)  # who is told
    user = relationship("CrmUser")
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)


class ServiceRecord(AuditMixin, Model):
    """客户服务记录: service no. = customer no. + sequence (C20240501001-001)."""

    __tablename__ = "crm_service_record"
    id = Column(Integer, primary_key=True)
    service_no = Column(String(60), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer")
    ticket_id = Column(Integer, ForeignKey("crm_ticket.id", ondelete="SET NULL"), index=True)
    ticket = relationship(Ticket)
    kind_id = _dict_fk("kind_id", nullable=False)
    kind = relationship("DictionaryItem", foreign_keys=[kind_id])
    occurred_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    content = Column(Text, nullable=False)
    progress = Column(String(20), nullable=False, default="pending")
    handler_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    handler = relationship("CrmUser", foreign_keys=[handler_id])
    solution = Column(Text)
    customer_feedback = Column(Text)
    score = Column(Integer)  # 1-5

    def __repr__(self) -> str:
        return self.service_no or ""
