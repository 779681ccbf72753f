"""Service desk screens and APIs: tickets (queue with SLA colours, my tickets, the ticket page
with its flow, deadlines and history), the supervisor board, service records, and the
configuration (calendars, holidays, SLA policies, teams, agents, assignment rules)."""
from __future__ import annotations

from datetime import datetime

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.api import protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import case, func, or_, select
from wtforms import SelectField
from wtforms.validators import NumberRange, Optional

from app.extensions import db
from app.models import (
    AgentProfile, AssignmentRule, CrmUser, Holiday, ServiceRecord, SlaPolicy, Team, Ticket, WorkCalendar,
)
from app.models.dictionary import choices_of
from app.models.service import OPEN_STATUSES, PROGRESS, STATUSES, ticket_collaborators
from app.security.scopes import ROW_SCOPE, OutOfScopeError, RowScopeFilter, require_in_scope, row_clause
from app.services import satisfaction, sla, tickets
from app.services.numbering import next_number
from app.views.attachment import AttachableApiMixin, AttachableViewMixin, attachment_files_field
from app.views.customer import _CheckedApi
from app.services.export import labelled
from app.views.export import ExportMixin
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime
from app.views.lookup import PickersMixin

IN_SCOPE = [["id", RowScopeFilter, None]]
PROGRESS_LABELS = {"pending": _l("Pending"), "in_progress": _l("In progress"), "done": _l("Done"),
                   "closed": _l("Closed")}
SLA_CLASSES = {"breached": "danger", "warning": "warning", "paused": "info", "ok": "success", "met": "success",
               "none": "default"}
SLA_LABELS = {"breached": _l("Breached"), "warning": _l("Due soon"), "paused": _l("Waiting on customer"),
              "ok": _l("On track"), "met": _l("Met"), "none": _l("No SLA")}
LABELS = {
    "ticket_no": _l("Ticket No."), "customer": _l("Customer"), "type": _l("Type"), "priority": _l("Priority"),
    "title": _l("Subject"), "description": _l("Description"), "status": _l("Status"), "team": _l("Team"),
    "handler": _l("Handler"), "collaborators": _l("Collaborators"), "assignment_rule": _l("Assigned by rule"),
    "sla_policy": _l("SLA policy"), "opened_at": _l("Opened"), "first_response_due": _l("First response due"),
    "resolution_due": _l("Resolution due"), "first_responded_at": _l("First response"),
    "resolved_at": _l("Resolved at"), "closed_at": _l("Closed at"), "handling_hours": _l("Handling hours"),
    "status_badge": _l("Status"), "sla_badge": _l("SLA"), "created_by": _l("Created by"), "changed_on": _l("Last Updated"),
    "service_no": _l("Service No."), "ticket": _l("Ticket"), "kind": _l("Kind"), "occurred_at": _l("Time"),
    "content": _l("Content"), "progress": _l("Progress"), "solution": _l("Solution"),
    "customer_feedback": _l("Customer Feedback"), "score": _l("Score"),
    "satisfaction_score": _l("Satisfaction Score"), "satisfaction_comment": _l("Satisfaction Comment"),
}
FORMATTERS = {**{c: fmt_datetime for c in ("opened_at", "first_response_due", "resolution_due", "first_responded_at",
                                           "resolved_at", "closed_at", "occurred_at")},
              "collaborators": lambda users: "、".join(str(u) for u in users or [])}


def status_badge(ticket: Ticket) -> Markup:
    return Markup('<span class="label label-default" data-status="%s">%s</span>') % (
        ticket.status, tickets.status_label(ticket.status))


def sla_state(ticket: Ticket) -> str:
    return sla.risk(ticket) if ticket.status in OPEN_STATUSES else "none"


def sla_badge(ticket: Ticket) -> Markup:
    state = sla_state(ticket)
    return Markup('<span class="label label-%s" data-sla="%s">%s</span>') % (
        SLA_CLASSES[state], state, SLA_LABELS[state])


Ticket.status_badge = status_badge
Ticket.sla_badge = sla_badge


def fmt_minutes(minutes: float | None) -> str:
    if minutes is None:
        return ""
    sign, m = ("-" if minutes < 0 else ""), int(abs(round(minutes)))
    return f"{sign}{m // 60}:{m % 60:02d}"


def ticket_panel(pk) -> dict:
    """What the ticket page shows beside the fields: deadlines, steps, alerts, actions."""
    item = db.session.query(Ticket).filter(Ticket.id == int(pk), row_clause(Ticket)).first()
    if item is None:
        return {}
    clock = sla.clock_of(item.sla_policy.calendar) if item.sla_policy is not None else None
    local = (lambda v: fmt_datetime(clock.local(v)) if v else "") if clock else fmt_datetime
    actions = tickets.available(item)
    return {"ticket": item, "deadlines": sla.deadlines(item), "actions": actions, "local": local,
            "assignees": tickets.assignees() if any(key == "assign" for key, _label in actions) else [],
            "status_label": tickets.status_label, "action_labels": {k: a.label for k, a in tickets.ACTIONS.items()},
            "alert_labels": sla.ALERT_KINDS, "sla_labels": SLA_LABELS, "sla_classes": SLA_CLASSES,
            "fmt_minutes": fmt_minutes, "fmt_datetime": fmt_datetime, "follow_up": satisfaction.follow_up("ticket", item)}


class MineFilter(BaseFilter):
    """My tickets: I handle them or collaborate on them."""

    name = "mine"

    def apply(self, query, value):  # noqa: ARG002
        uid = g.user.id
        return query.filter(or_(Ticket.handler_id == uid, Ticket.id.in_(
            select(ticket_collaborators.c.ticket_id).where(ticket_collaborators.c.user_id == uid))))


class TicketModelView(AttachableViewMixin, ExportMixin, PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Ticket)
    base_filters = ROW_SCOPE
    export_name = "tickets"
    export_cells = {"status_badge": labelled(lambda t: t.status, tickets.status_label),
                    "sla_badge": labelled(sla_state, SLA_LABELS.get)}
    list_title = show_title = _l("Service Tickets")
    add_title, edit_title = _l("Add Ticket"), _l("Edit Ticket")
    list_columns = ["ticket_no", "title", "customer", "type", "priority", "status_badge", "handler", "team",
                    "resolution_due", "sla_badge"]
    show_columns = ["ticket_no", "customer", "type", "priority", "title", "description", "status_badge", "team",
                    "handler", "collaborators", "assignment_rule", "sla_policy", "opened_at", "first_responded_at",
                    "resolved_at", "closed_at", "handling_hours", "satisfaction_score", "satisfaction_comment",
                    "created_by"]
    add_columns = ["customer", "type", "priority", "title", "description", "collaborators", "attachment_files"]
    edit_columns = ["priority", "title", "description", "collaborators"]
    add_form_extra_fields = {"attachment_files": attachment_files_field()}
    search_columns = ["ticket_no", "title", "customer", "type", "priority", "status", "team", "handler",
                      "opened_at", "resolution_due"]
    order_columns = ["ticket_no", "opened_at", "resolution_due"]
    base_order = ("id", "desc")
    label_columns = LABELS
    formatters_columns = FORMATTERS
    show_template = "crm/ticket_show.html"
    extra_args = {"ticket_panel": ticket_panel}
    add_form_query_rel_fields = {"customer": IN_SCOPE, "type": choices_of("ticket_type"),
                                 "priority": choices_of("priority")}
    edit_form_query_rel_fields = {"priority": choices_of("priority")}

    def pre_add(self, item: Ticket) -> None:
        require_in_scope(item.customer)
        tickets.open_ticket(item)
        self.attach_uploads(item)

    def pre_update(self, item: Ticket) -> None:
        require_in_scope(item.customer)

    def _refused(self, exc: Exception, pk):
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(f"{self.__class__.__name__}.show", pk=pk))

    @expose("/act/<int:pk>", methods=["POST"])
    @has_access
    def act(self, pk: int):
        """One step of the flow from the ticket page (the service checks state and rights)."""
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        try:
            tickets.transition(item, request.form.get("action", ""), request.form.get("comment"),
                               request.form.get("handler_id") or None)
        except tickets.TicketError as exc:
            return self._refused(exc, pk)
        flash(_("Ticket %(no)s: %(status)s", no=item.ticket_no, status=tickets.status_label(item.status)), "success")
        return redirect(url_for("TicketModelView.show", pk=pk))


class MyTicketModelView(TicketModelView):
    """我的工单: the tickets I handle or collaborate on, in my row scope, by deadline."""

    route_base = "/mytickets"
    base_filters = ROW_SCOPE + [["id", MineFilter, None]]
    base_permissions = ["can_list", "can_show", "can_export"]
    export_name = "my_tickets"
    list_title = _l("My Tickets")
    base_order = ("resolution_due", "asc")


class SupervisorBoardView(BaseView):
    """主管看板: open tickets by status, breach risk, and load per person (all in row scope)."""

    route_base = "/serviceboard"
    default_view = "index"
    base_permissions = ["can_index"]

    @expose("/")
    @has_access
    def index(self):
        self.update_redirect()
        now = datetime.utcnow()
        scope = row_clause(Ticket)
        by_status = dict(db.session.execute(select(Ticket.status, func.count()).where(scope).group_by(Ticket.status)).all())
        open_ = [scope, Ticket.status.in_(OPEN_STATUSES), Ticket.waiting_since.is_(None)]
        risk_expr = case((or_(Ticket.resolution_due <= now, (Ticket.first_response_due <= now) & Ticket.first_responded_at.is_(None)), "breached"),
                         (or_(Ticket.resolution_warn_at <= now, (Ticket.first_response_warn_at <= now) & Ticket.first_responded_at.is_(None)), "warning"),
                         else_="ok")
        risk = dict(db.session.execute(select(risk_expr, func.count()).where(*open_).group_by(risk_expr)).all())
        load = db.session.execute(
            select(CrmUser, func.count(Ticket.id), func.sum(case((Ticket.resolution_due <= now, 1), else_=0)))
            .join(Ticket, Ticket.handler_id == CrmUser.id)
            .where(scope, Ticket.status.in_(OPEN_STATUSES)).group_by(CrmUser.id).order_by(func.count(Ticket.id).desc())
        ).all()
        away = set(db.session.execute(select(AgentProfile.user_id).where(AgentProfile.away.is_(True))).scalars())
        teams = db.session.execute(
            select(Team, func.count(Ticket.id)).outerjoin(Ticket, (Ticket.team_id == Team.id) & scope
                                                          & Ticket.status.in_(OPEN_STATUSES)).group_by(Team.id)).all()
        return self.render_template(
            "crm/service_board.html", title=_l("Supervisor Board"), statuses=STATUSES, by_status=by_status,
            status_label=tickets.status_label, risk=risk, sla_labels=SLA_LABELS, sla_classes=SLA_CLASSES, load=load,
            away=away, teams=teams, scores=satisfaction.scores_by_handler([user.id for user, *_ in load]))


class ServiceRecordModelView(ExportMixin, PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(ServiceRecord)
    base_filters = ROW_SCOPE
    export_name = "service_records"
    list_title = show_title = _l("Service Records")
    add_title, edit_title = _l("Add Service Record"), _l("Edit Service Record")
    list_columns = ["service_no", "customer", "kind", "occurred_at", "progress", "handler", "score", "ticket"]
    add_columns = edit_columns = ["customer", "ticket", "kind", "occurred_at", "content", "progress", "handler",
                                  "solution", "customer_feedback", "score"]
    show_columns = ["service_no"] + add_columns + ["created_by", "changed_on"]
    search_columns = ["service_no", "customer", "kind", "occurred_at", "progress", "handler", "score"]
    base_order = ("occurred_at", "desc")
    label_columns = LABELS
    formatters_columns = {**FORMATTERS, "progress": lambda v: str(PROGRESS_LABELS.get(v, v))}
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "customer": IN_SCOPE, "ticket": IN_SCOPE, "kind": choices_of("service_kind")}
    add_form_extra_fields = edit_form_extra_fields = {
        "progress": SelectField(_l("Progress"), choices=[(p, PROGRESS_LABELS[p]) for p in PROGRESS])}
    validators_columns = {"score": [Optional(), NumberRange(1, 5, message=_l("The score is 1 to 5."))]}

    def pre_add(self, item: ServiceRecord) -> None:
        check_service_record(item)
        item.service_no = next_number("service_record", item)

    def pre_update(self, item: ServiceRecord) -> None:
        check_service_record(item)


def check_service_record(item: ServiceRecord) -> None:
    """Its customer in the user's scope; linked to a ticket, the ticket's customer."""
    from app.models import Customer

    if item.ticket is None and item.ticket_id:
        item.ticket = db.session.get(Ticket, item.ticket_id)
    if item.customer is None and item.customer_id is None and item.ticket is not None:
        item.customer_id = item.ticket.customer_id
    customer = item.customer or (db.session.get(Customer, item.customer_id) if item.customer_id else None)
    require_in_scope(customer)
    if item.ticket is not None and item.ticket.customer_id != customer.id:
        db.session.rollback()
        raise OutOfScopeError(_("Ticket %(no)s belongs to another customer.", no=item.ticket.ticket_no))
    if item.handler is None and item.handler_id is None:
        item.handler_id = g.user.id


# -- REST APIs -----------------------------------------------------------------------------------

class _ServiceApi(_CheckedApi):
    """A refused step or value (TicketError) answers 422 naming the field; nothing is saved."""

    def _refusals(self, write):
        try:
            return super()._refusals(write)
        except tickets.TicketError as exc:
            db.session.rollback()
            return self.response(422, message=str(exc), field=exc.field)


class TicketApi(AttachableApiMixin, _ServiceApi):
    resource_name = "ticket"
    datamodel = CrmSQLAInterface(Ticket)
    allow_browser_login = True
    add_query_rel_fields = {"customer": IN_SCOPE, "type": choices_of("ticket_type"), "priority": choices_of("priority")}
    list_columns = ["id", "ticket_no", "title", "customer.name", "type.name", "priority.name", "status",
                    "handler.username", "team.name", "first_response_due", "resolution_due", "opened_at"]
    show_columns = list_columns + ["description", "first_responded_at", "resolved_at", "closed_at",
                                   "handling_hours", "assignment_rule.name", "sla_policy.name", "paused_minutes",
                                   "waiting_since"]
    add_columns = ["customer", "type", "priority", "title", "description"]
    edit_columns = ["priority", "title", "description"]
    search_columns = ["ticket_no", "title", "status", "customer", "type", "priority", "handler", "team"]

    def pre_add(self, item: Ticket) -> None:
        require_in_scope(item.customer)
        tickets.open_ticket(item)

    def pre_update(self, item: Ticket) -> None:
        require_in_scope(item.customer)

    def pre_get(self, data: dict) -> None:
        super().pre_get(data)
        item = db.session.get(Ticket, data.get("id"))
        if item is not None and isinstance(data.get("result"), dict):
            data["result"]["sla"] = [{"deadline": str(d.label), "due": d.due, "done_at": d.done_at,
                                      "minutes_left": None if d.minutes_left is None else round(d.minutes_left),
                                      "state": d.state} for d in sla.deadlines(item)]
            data["result"]["events"] = [{"at": e.at, "user": getattr(e.user, "username", None), "action": e.action,
                                         "from": e.from_status, "to": e.to_status, "comment": e.comment}
                                        for e in item.events]
            data["result"]["alerts"] = [{"kind": a.kind, "at": a.created_at, "user": getattr(a.user, "username", None)}
                                        for a in item.alerts]

    @expose("/<int:pk>/transition", methods=["POST"])
    @protect()
    @safe
    def transition(self, pk: int):
        """Take one step: {"action": "start" | "assign" | ..., "comment": "...", "handler_id": 3}.
        ---
        post:
          responses:
            200: {description: the ticket's new status}
            404: {description: not found or outside your scope}
            422: {description: the step is not allowed now, with the reason}
        """
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            return self.response_404()
        body = request.get_json(silent=True) or {}
        try:
            tickets.transition(item, str(body.get("action", "")), body.get("comment"), body.get("handler_id"))
        except tickets.TicketError as exc:
            db.session.rollback()
            return self.response(422, message=str(exc), field=exc.field)
        return self.response(200, id=item.id, ticket_no=item.ticket_no, status=item.status,
                             handler_id=item.handler_id)


class ServiceRecordApi(_ServiceApi):
    resource_name = "service_record"
    datamodel = CrmSQLAInterface(ServiceRecord)
    allow_browser_login = True
    add_query_rel_fields = edit_query_rel_fields = {
        "customer": IN_SCOPE, "ticket": IN_SCOPE, "kind": choices_of("service_kind")}
    list_columns = ["id", "service_no", "customer.name", "ticket.ticket_no", "kind.name", "occurred_at", "progress",
                    "handler.username", "score"]
    show_columns = list_columns + ["content", "solution", "customer_feedback"]
    add_columns = edit_columns = ["customer", "ticket", "kind", "occurred_at", "content", "progress", "handler",
                                  "solution", "customer_feedback", "score"]

    def pre_add(self, item: ServiceRecord) -> None:
        _check_progress(item)
        check_service_record(item)
        item.service_no = next_number("service_record", item)

    def pre_update(self, item: ServiceRecord) -> None:
        _check_progress(item)
        check_service_record(item)


def _check_progress(item: ServiceRecord) -> None:
    from app.services.tickets import TicketError

    if (item.progress or "pending") not in PROGRESS:
        raise TicketError(_("Progress must be one of: %(values)s", values=", ".join(PROGRESS)), field="progress")
    if item.score is not None and not 1 <= item.score <= 5:
        raise TicketError(_("The score is 1 to 5."), field="score")


# -- configuration -------------------------------------------------------------------------------

CONFIG_LABELS = {
    "key": _l("Key"), "name": _l("Name"), "name_en": _l("English name"), "weekdays": _l("Working weekdays"),
    "periods": _l("Working periods"), "timezone": _l("Time zone"), "calendar": _l("Calendar"), "day": _l("Day"),
    "workday": _l("Make-up working day"), "ticket_type": _l("Ticket type"), "priority": _l("Priority"),
    "first_response_minutes": _l("First response (working minutes)"),
    "resolution_minutes": _l("Resolution (working minutes)"), "warn_before_minutes": _l("Warn before (minutes)"),
    "active": _l("Active"), "department": _l("Department"), "supervisor": _l("Supervisor"),
    "round_robin": _l("Round robin"), "user": _l("User"), "team": _l("Team"), "skills": _l("Skills"),
    "regions": _l("Regions"), "away": _l("Away"), "sort": _l("Order"), "industry": _l("Industry"),
    "region": _l("Region"), "level": _l("Customer Level"), "keywords": _l("Keywords"), "skill": _l("Needed skill"),
    "holidays": _l("Holidays"), "members": _l("Members"), "open_tickets": _l("Open tickets"),
}


def _calendar_check(form, field) -> None:
    from wtforms.validators import ValidationError

    try:
        sla.parse_periods(field.data)
    except sla.CalendarError as exc:
        raise ValidationError(_("Working periods read like 09:00-12:00,13:00-18:00 (%(error)s)", error=exc)) from exc


class HolidayModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Holiday)
    list_title = _l("Holidays")
    add_title, edit_title, show_title = _l("Add Holiday"), _l("Edit Holiday"), _l("Holiday")
    list_columns = ["calendar", "day", "name", "workday"]
    add_columns = edit_columns = show_columns = ["calendar", "day", "name", "workday"]
    base_order = ("day", "asc")
    label_columns = CONFIG_LABELS


class WorkCalendarModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(WorkCalendar)
    list_title = _l("Working Calendars")
    add_title, edit_title, show_title = _l("Add Working Calendar"), _l("Edit Working Calendar"), _l("Working Calendar")
    list_columns = ["key", "name", "weekdays", "periods", "timezone"]
    add_columns = edit_columns = show_columns = ["key", "name", "weekdays", "periods", "timezone"]
    description_columns = {"weekdays": _l("1 = Monday … 7 = Sunday, comma-separated"),
                           "periods": _l("Local working periods, e.g. 09:00-12:00,13:00-18:00")}
    validators_columns = {"periods": [_calendar_check]}
    label_columns = CONFIG_LABELS
    related_views = [HolidayModelView]


class SlaPolicyModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(SlaPolicy)
    list_title = _l("SLA Policies")
    add_title, edit_title, show_title = _l("Add SLA Policy"), _l("Edit SLA Policy"), _l("SLA Policy")
    list_columns = ["name", "ticket_type", "priority", "first_response_minutes", "resolution_minutes",
                    "warn_before_minutes", "calendar", "active"]
    add_columns = edit_columns = show_columns = ["key", "name", "ticket_type", "priority", "calendar",
                                                 "first_response_minutes", "resolution_minutes",
                                                 "warn_before_minutes", "active"]
    add_form_query_rel_fields = edit_form_query_rel_fields = {"ticket_type": choices_of("ticket_type"),
                                                              "priority": choices_of("priority")}
    label_columns = CONFIG_LABELS


class TeamModelView(PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Team)
    list_title = _l("Service Teams")
    add_title, edit_title, show_title = _l("Add Service Team"), _l("Edit Service Team"), _l("Service Team")
    list_columns = ["key", "name", "department", "supervisor", "round_robin"]
    add_columns = edit_columns = show_columns = ["key", "name", "name_en", "department", "supervisor", "round_robin"]
    label_columns = CONFIG_LABELS


class AgentProfileModelView(PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(AgentProfile)
    list_title = _l("Agents")
    add_title, edit_title, show_title = _l("Add Agent"), _l("Edit Agent"), _l("Agent")
    list_columns = ["user", "team", "skills", "regions", "away"]
    add_columns = edit_columns = show_columns = ["user", "team", "skills", "regions", "away"]
    description_columns = {"skills": _l("Comma-separated, e.g. repair,complaint"),
                           "regions": _l("Region codes, e.g. east,south; empty = any region")}
    label_columns = CONFIG_LABELS


class AssignmentRuleModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(AssignmentRule)
    list_title = _l("Assignment Rules")
    add_title, edit_title, show_title = _l("Add Assignment Rule"), _l("Edit Assignment Rule"), _l("Assignment Rule")
    list_columns = ["sort", "name", "ticket_type", "industry", "region", "level", "keywords", "team", "skill", "active"]
    add_columns = edit_columns = show_columns = ["key", "name", "sort", "ticket_type", "industry", "region", "level",
                                                 "keywords", "team", "skill", "active"]
    base_order = ("sort", "asc")
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "ticket_type": choices_of("ticket_type"), "industry": choices_of("industry"), "region": choices_of("region"),
        "level": choices_of("customer_level")}
    label_columns = CONFIG_LABELS
