"""Service tickets (服务工单): opening (number, SLA clock, automatic assignment) and the state
flow 新建 → 已分配 → 处理中 → 待审核 → 已归档 (and 已关闭 / 重开), enforced here for the UI and
the API alike. Every step is a TicketEvent: who, when, from, to, comment."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from app.extensions import appbuilder, db
from app.models import AgentProfile, CrmUser, Customer, Ticket, TicketEvent
from app.models.service import ARCHIVED, ASSIGNED, CLOSED, IN_PROGRESS, NEW, OPEN_STATUSES, PENDING_REVIEW
from app.services import assignment, sla
from app.services.numbering import next_number

STATUS_LABELS = {NEW: _l("New"), ASSIGNED: _l("Assigned"), IN_PROGRESS: _l("In progress"),
                 PENDING_REVIEW: _l("Pending review"), ARCHIVED: _l("Archived"), CLOSED: _l("Closed")}


@dataclass(frozen=True)
class Action:
    label: object
    sources: tuple[str, ...]
    who: str  # handler (the ticket's handler or a supervisor) / assign / review
    needs_comment: bool = False


ACTIONS: dict[str, Action] = {
    "assign": Action(_l("Assign"), (NEW, ASSIGNED, IN_PROGRESS), "assign"),
    "start": Action(_l("Start handling"), (ASSIGNED,), "handler"),
    "wait": Action(_l("Wait for customer"), (IN_PROGRESS,), "handler"),
    "resume": Action(_l("Customer replied"), (IN_PROGRESS,), "handler"),
    "submit": Action(_l("Submit for review"), (IN_PROGRESS,), "handler"),
    "approve": Action(_l("Approve and archive"), (PENDING_REVIEW,), "review"),
    "reject": Action(_l("Send back"), (PENDING_REVIEW,), "review", needs_comment=True),
    "close": Action(_l("Close"), OPEN_STATUSES, "review", needs_comment=True),
    "reopen": Action(_l("Reopen"), (CLOSED, ARCHIVED), "review", needs_comment=True),
}


class TicketError(ValueError):
    """A refused ticket step, with a message for the user (and the form field it concerns)."""

    def __init__(self, message: str, field: str = "action"):
        self.field = field
        super().__init__(message)


def status_label(status: str | None) -> str:
    return str(STATUS_LABELS.get(status, status or ""))


def _has(perm: tuple[str, str]) -> bool:
    return bool(appbuilder.sm.has_access(*perm))


def _may(ticket: Ticket, who: str, user) -> bool:
    if who == "handler":
        return ticket.handler_id == getattr(user, "id", None) or _has(assignment.ASSIGN)
    return _has(assignment.ASSIGN if who == "assign" else assignment.REVIEW)


def available(ticket: Ticket, user=None) -> list[tuple[str, object]]:
    """The steps the user may take now (what the ticket page offers)."""
    user = user or g.user
    out = []
    for key, act in ACTIONS.items():
        if ticket.status not in act.sources or not _may(ticket, act.who, user):
            continue
        if key == "wait" and ticket.waiting_since is not None or key == "resume" and ticket.waiting_since is None:
            continue
        out.append((key, act.label))
    return out


def _event(ticket: Ticket, action: str, before: str | None, comment: str | None, now: datetime) -> None:
    user = getattr(g, "user", None)
    ticket.events.append(TicketEvent(at=now, user_id=getattr(user, "id", None), action=action,
                                     from_status=before, to_status=ticket.status, comment=comment or None))


def _set_handler(ticket: Ticket, handler_id: int) -> None:
    handler = db.session.get(CrmUser, handler_id)
    if handler is None or not handler.active or not assignment.may_handle(handler_id):
        raise TicketError(gettext("%(user)s cannot handle tickets: their role does not include handling tickets.",
                                  user=handler or handler_id), field="handler")
    ticket.handler_id = handler_id
    profile = db.session.query(AgentProfile).filter_by(user_id=handler_id).first()
    if profile is not None and profile.team is not None:
        ticket.team = profile.team
        ticket.department_id = profile.team.department_id or ticket.department_id


def open_ticket(ticket: Ticket, now: datetime | None = None) -> Ticket:
    """A new ticket: its number, its SLA clock, and automatic assignment (recorded with the
    rule that chose). Not committed: the caller (view, API) saves it."""
    now = now or datetime.utcnow()
    customer = ticket.customer or db.session.get(Customer, ticket.customer_id)
    if ticket.type_id is None and ticket.type is not None:
        ticket.type_id = ticket.type.id
    if ticket.priority_id is None and ticket.priority is not None:
        ticket.priority_id = ticket.priority.id
    ticket.ticket_no = next_number("ticket", ticket)
    ticket.status, ticket.opened_at = NEW, now
    ticket.department_id = ticket.department_id or getattr(getattr(g, "user", None), "department_id", None)
    sla.start_clock(ticket)
    _event(ticket, "create", None, None, now)
    dispatch(ticket, customer, now)
    return ticket


def dispatch(ticket: Ticket, customer: Customer, now: datetime) -> None:
    """Automatic assignment of a new ticket: the rule that matches gives the team and, when one
    of its members is available, the handler (the ticket is then 已分配); recorded as events."""
    choice = assignment.choose(ticket, customer)
    if choice.rule is not None:
        ticket.team = choice.rule.team
        ticket.department_id = choice.rule.team.department_id or ticket.department_id
        ticket.assignment_rule = choice.rule
    if choice.handler_id is not None:
        ticket.handler_id = choice.handler_id
        ticket.status = ASSIGNED
        _event(ticket, "assign", NEW, gettext("Assigned automatically by rule %(rule)s", rule=choice.rule.name), now)
    elif choice.rule is not None:
        _event(ticket, "queue", NEW, gettext("Rule %(rule)s chose team %(team)s; nobody available yet",
                                             rule=choice.rule.name, team=choice.rule.team), now)


def transition(ticket: Ticket, action: str, comment: str | None = None, handler_id: int | None = None,
               now: datetime | None = None) -> Ticket:
    """Take one step of the flow, or raise TicketError saying why not. Commits. A ticket changed
    by someone else since it was read (its version moved on) is refused, not overwritten."""
    try:
        _step(ticket, action, comment, handler_id, now or datetime.utcnow())
        db.session.commit()
    except StaleDataError as exc:
        db.session.rollback()
        raise TicketError(gettext("Someone else changed this ticket meanwhile. Please reload it and try again.")) from exc
    return ticket


def _step(ticket: Ticket, action: str, comment: str | None, handler_id: int | None, now: datetime) -> None:
    act = ACTIONS.get(action)
    if act is None:
        raise TicketError(gettext("Unknown ticket action: %(action)s", action=action))
    if ticket.status not in act.sources:
        raise TicketError(gettext("The ticket is %(status)s: '%(action)s' is possible only when it is %(allowed)s.",
                                  status=status_label(ticket.status), action=act.label,
                                  allowed="、".join(status_label(s) for s in act.sources)))
    if not _may(ticket, act.who, g.user):
        raise TicketError(gettext("You may not '%(action)s' this ticket.", action=act.label))
    comment = (comment or "").strip()
    if act.needs_comment and not comment:
        raise TicketError(gettext("Please give a reason for '%(action)s'.", action=act.label), field="comment")
    before = ticket.status
    if action == "assign":
        if not handler_id:
            raise TicketError(gettext("Choose a handler."), field="handler")
        _set_handler(ticket, int(handler_id))
        ticket.assignment_rule = None  # chosen by a person, recorded in the event
        if ticket.status == NEW:
            ticket.status = ASSIGNED
    elif action == "start":
        ticket.status = IN_PROGRESS
        ticket.first_responded_at = ticket.first_responded_at or now
    elif action == "wait":
        if ticket.waiting_since is not None:
            raise TicketError(gettext("The ticket is already waiting on the customer."))
        sla.pause(ticket, now)
    elif action == "resume":
        if ticket.waiting_since is None:
            raise TicketError(gettext("The ticket is not waiting on the customer."))
        sla.resume(ticket, now)
    elif action == "submit":
        sla.resume(ticket, now)
        ticket.status, ticket.resolved_at = PENDING_REVIEW, now
        ticket.handling_hours = sla.handling_hours(ticket, now)
    elif action == "approve":
        ticket.status, ticket.closed_at = ARCHIVED, now
    elif action == "reject":
        ticket.status, ticket.resolved_at, ticket.handling_hours = IN_PROGRESS, None, None
    elif action == "close":
        sla.resume(ticket, now)
        ticket.status, ticket.closed_at = CLOSED, now
    elif action == "reopen":
        ticket.status = ASSIGNED if ticket.handler_id else NEW
        ticket.closed_at = ticket.resolved_at = ticket.handling_hours = None
    _event(ticket, action, before, comment, now)


def assignees():
    """Users who may handle tickets (the reassign picker)."""
    ids = assignment.handler_user_ids()
    return db.session.query(CrmUser).filter(CrmUser.id.in_(ids)).order_by(CrmUser.username).all() if ids else []
