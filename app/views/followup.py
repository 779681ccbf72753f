"""Daily work screens: tasks (待办任务), follow-up plans (跟进计划), cadence settings (跟进频率),
the personal inbox (我的工作台) and the task REST API. Rules live in app/services/followup.py and
app/services/reminders.py; scope in app/security/scopes.py."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import DateTimePickerWidget
from flask_appbuilder.models.sqla.filters import FilterInFunction
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy.orm import selectinload
from wtforms import DateTimeField, Field
from wtforms.validators import ValidationError

from app.extensions import db
from app.models import Cadence, FollowupPlan, Reminder, Task
from app.models.dictionary import choices_of
from app.security.scopes import ROW_SCOPE, current_policy, require_in_scope, row_clause
from app.services.followup import cadence_reader, complete_task, due_problem, now, schedule_next, task_saved
from app.services.reminders import describe
from app.views.export import ExportMixin
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime
from app.views.lookup import PickersMixin

STATUS_LABELS = {"pending": _l("To do"), "done": _l("Done"), "overdue": _l("Overdue")}
TASK_LABELS = {
    "title": _l("Task"), "customer": _l("Customer"), "assignee": _l("Assignee"), "due_at": _l("Due"),
    "status": _l("Status"), "done_at": _l("Done at"), "interaction": _l("Interaction"), "plan": _l("Follow-up Plan"),
    "created_by": _l("Created by"), "created_on": _l("Created"), "stage": _l("Stage"),
    "remind_before_minutes": _l("Remind before (minutes)"), "active": _l("Active"), "cadence": _l("Cadence (days)"),
    "item": _l("Level or stage"), "cadence_days": _l("Cadence (days)"), "no_contact_days": _l("Remind after no contact (days)"),
}
_CUSTOMER_IN_SCOPE = {"customer": ROW_SCOPE}  # pickers offer only customers in the user's scope


def fmt_status(value: str) -> str:
    return str(STATUS_LABELS.get(value, value or ""))


def not_in_past(form, field) -> None:  # noqa: ARG001
    """Form validator: a due time from now on (an unchanged due time on edit is left alone)."""
    if field.data is None or field.object_data == field.data:
        return
    problem = due_problem(field.data)
    if problem:
        raise ValidationError(problem)


def due_field(label=_l("Due"), first=None, **kwargs) -> DateTimeField:
    """A due-time field (required unless ``first``, a validator deciding that, is given)."""
    from wtforms.validators import DataRequired

    return DateTimeField(label, format=["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"], widget=DateTimePickerWidget(),
                         validators=[first or DataRequired(), not_in_past], **kwargs)


DUE_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_due(raw: str | None) -> datetime | None:
    """A typed due time (the browser's datetime-local or 2024-05-01 14:30); ValueError if it is none."""
    raw = (raw or "").strip()
    if not raw:
        return None
    for fmt in DUE_FORMATS:
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise ValueError(raw)


class TodoRowsWidget:
    """A compact table of to-do rows (text, due time, owner picker) with an 'add a row' button."""

    def __call__(self, field, **kwargs):  # noqa: ARG002
        from markupsafe import Markup, escape

        from app.views.lookup import LookupField

        rows = list(field.rows) + [{}] * max(0, field.blank_rows - len(field.rows))
        body = []
        for i, row in enumerate(rows):
            owner = LookupField(kind="user", name=f"{field.name}-{i}-assignee", _form=None, _meta=field.meta)
            owner.data = row.get("assignee")
            body.append(Markup(
                '<tr><td class="crm-row-no">%s</td>'
                '<td><input class="form-control" name="%s" id="%s" value="%s" maxlength="255"></td>'
                '<td><input class="form-control" type="datetime-local" name="%s" id="%s" value="%s"></td>'
                '<td>%s</td></tr>') % (
                i + 1, f"{field.name}-{i}-title", f"{field.name}-{i}-title", row.get("title") or "",
                f"{field.name}-{i}-due", f"{field.name}-{i}-due", row.get("due_raw") or "", owner()))
        return Markup(
            '<table class="table table-condensed crm-todo-rows" id="%s"><thead><tr><th>#</th><th>%s</th>'
            '<th>%s</th><th>%s</th></tr></thead><tbody>%s</tbody></table>'
            '<button type="button" class="btn btn-default btn-sm" data-add-row="#%s">'
            '<i class="fa fa-plus"></i> %s</button>') % (
            field.id, gettext("To-do"), gettext("Due"), gettext("Owner"), Markup("").join(body), field.id,
            escape(gettext("Add a to-do")))


class TodoRowsField(Field):
    """Several to-dos in one form, each row (text, due, owner) becoming a task. A row left blank
    is skipped; the others are checked together (app.services.followup.todo_errors), with
    messages naming the row, so one bad row saves nothing. data: [{"title", "due_at",
    "assignee_id", "row"}]."""
    widget = TodoRowsWidget()
    blank_rows = 2

    def process(self, formdata, data=None, extra_filters=None):  # noqa: ARG002
        import re

        self.process_errors, self.object_data, self.rows, self.data = [], None, [], []
        self._problems: list[str] = []
        if not formdata:
            return
        pattern = re.compile(rf"^{re.escape(self.name)}-(\d+)-(title|due|assignee)$")
        indices = sorted({int(m.group(1)) for key in formdata for m in [pattern.match(key)] if m})
        for n, i in enumerate(indices, start=1):
            title, due_raw, owner_raw = (str(formdata.get(f"{self.name}-{i}-{k}") or "").strip()
                                         for k in ("title", "due", "assignee"))
            row = {"title": title, "due_raw": due_raw, "row": n, "assignee": None, "assignee_id": None}
            self.rows.append(row)
            if not (title or due_raw or owner_raw):
                continue
            try:
                row["due_at"] = parse_due(due_raw)
            except ValueError:
                row["due_at"] = None
                self._problems.append(gettext("To-do %(n)d: '%(value)s' is not a date and time (YYYY-MM-DD HH:MM).",
                                              n=n, value=due_raw))
            if owner_raw:
                from app.views.lookup import _active_user

                row["assignee"] = _active_user(int(owner_raw)) if owner_raw.isdigit() else None
                row["assignee_id"] = row["assignee"].id if row["assignee"] else None
                if row["assignee"] is None:
                    self._problems.append(gettext("To-do %(n)d: the owner must be an active user.", n=n))
            self.data.append(row)

    def pre_validate(self, form):  # noqa: ARG002
        from app.services.followup import todo_errors

        checked = [r for r in self.data if "due_at" in r and r["due_at"] is not None or not r.get("due_raw")]
        messages = self._problems + [m for msgs in todo_errors(checked).values() for m in msgs]
        self.errors.extend(dict.fromkeys(messages))  # each once, in row order of the checks


class TaskSavingMixin:
    """Saving a task from the list's forms or the API: its customer in the user's scope, the
    user as assignee when none is chosen, the task's reminder kept (task_saved)."""

    def pre_add(self, item: Task) -> None:
        if item.customer is not None:
            require_in_scope(item.customer)
        item.assignee_id = item.assignee_id or getattr(item.assignee, "id", None) or g.user.id
        task_saved(item, g.user.id)

    def pre_update(self, item: Task) -> None:
        task_saved(item, g.user.id)


class TaskModelView(TaskSavingMixin, ExportMixin, PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Task)
    base_filters = ROW_SCOPE
    export_name = "tasks"
    list_title = show_title = _l("Tasks")
    add_title, edit_title = _l("Add Task"), _l("Edit Task")
    list_columns = ["due_at", "title", "customer", "assignee", "status"]
    add_columns = ["title", "customer", "assignee", "due_at"]
    edit_columns = ["title", "customer", "assignee", "due_at", "status"]
    show_columns = ["title", "customer", "assignee", "due_at", "status", "done_at", "interaction", "plan",
                    "created_by", "created_on"]
    search_columns = ["title", "status", "due_at", "assignee", "customer"]
    base_order = ("due_at", "asc")
    label_columns = TASK_LABELS
    formatters_columns = {"due_at": fmt_datetime, "done_at": fmt_datetime, "created_on": fmt_datetime,
                          "status": fmt_status}
    add_form_query_rel_fields = edit_form_query_rel_fields = _CUSTOMER_IN_SCOPE
    add_form_extra_fields = edit_form_extra_fields = {"due_at": due_field()}

    def _init_forms(self) -> None:
        from wtforms import SelectField

        self.edit_form_extra_fields = {**self.edit_form_extra_fields, "status": SelectField(
            _l("Status"), choices=[(k, v) for k, v in STATUS_LABELS.items()])}
        super()._init_forms()


    @action("complete", _l("Mark done"), _l("Mark the selected tasks done?"), "fa-check", single=False)
    def complete(self, items):
        items = items if isinstance(items, list) else [items]
        done = [complete_task(t, g.user.id) for t in items]
        db.session.commit()
        flash(gettext("%(n)d task(s) done; %(m)d next follow-up(s) scheduled.",
                      n=len(items), m=len([t for t in done if t])), "info")
        return redirect(request.referrer or url_for(".list"))


class FollowupPlanModelView(ExportMixin, PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(FollowupPlan)
    base_filters = ROW_SCOPE
    export_name = "followup_plans"
    export_cells = {"cadence": cadence_reader}  # the list asks the cadence table per row; the file once
    list_title = show_title = _l("Follow-up Plans")
    add_title, edit_title = _l("Add Follow-up Plan"), _l("Edit Follow-up Plan")
    list_columns = ["customer", "stage", "cadence", "assignee", "remind_before_minutes", "active"]
    add_columns = edit_columns = ["customer", "stage", "assignee", "remind_before_minutes", "active"]
    show_columns = list_columns + ["created_on"]
    search_columns = ["customer", "stage", "assignee", "active"]
    label_columns = TASK_LABELS
    formatters_columns = {"created_on": fmt_datetime}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"stage": choices_of("followup_stage"),
                                                              **_CUSTOMER_IN_SCOPE}

    def pre_add(self, item: FollowupPlan) -> None:
        require_in_scope(item.customer)
        schedule_next(item)  # the plan's first task

    def pre_update(self, item: FollowupPlan) -> None:
        require_in_scope(item.customer)


class CadenceModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Cadence)
    list_title = show_title = _l("Follow-up Cadence")
    add_title, edit_title = _l("Add Cadence"), _l("Edit Cadence")
    list_columns = show_columns = add_columns = edit_columns = ["item", "cadence_days", "no_contact_days"]
    label_columns = TASK_LABELS
    description_columns = {
        "item": _l("A customer level or a follow-up stage (dictionaries 客户等级 / 跟进阶段)."),
        "cadence_days": _l("Days between a plan's follow-ups; when the level and the stage both set one, the shorter wins."),
        "no_contact_days": _l("Remind the owner when a customer of this level has had no interaction for so many days."),
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "item": [["type_key", FilterInFunction, lambda: ["customer_level", "followup_stage"]]]}


# -- the personal inbox ----------------------------------------------------------------------

def inbox(user_id: int, limit: int = 20) -> dict:
    """What the user's inbox shows: each list capped at ``limit`` rows, with full counts."""
    t = now()
    day_end = datetime.combine(t.date(), time.max)
    open_task = Task.status != "done"
    mine = db.session.query(Task).filter(Task.assignee_id == user_id, open_task)
    sections = {
        "overdue": mine.filter(Task.due_at < t).order_by(Task.due_at),
        "today": mine.filter(Task.due_at >= t, Task.due_at <= day_end).order_by(Task.due_at),
        "recent": db.session.query(Task).filter(Task.assignee_id == user_id, open_task,
                                                Task.created_on >= t - timedelta(days=7)).order_by(Task.created_on.desc()),
        "reminders": db.session.query(Reminder).filter(Reminder.user_id == user_id, Reminder.read_at.is_(None))
        .order_by(Reminder.created_on.desc(), Reminder.id.desc()),
    }
    if current_policy().work_scope in ("department", "all"):
        sections["team_overdue"] = db.session.query(Task).filter(row_clause(Task), Task.assignee_id != user_id,
                                                                 open_task, Task.due_at < t).order_by(Task.due_at)
    def rows(key, query):  # the related names each row shows, loaded in one go (no query per row)
        model = Reminder if key == "reminders" else Task
        related = [model.customer, model.task, model.ticket, model.feedback] if model is Reminder \
            else [model.customer, model.assignee]
        return query.options(*(selectinload(r) for r in related)).limit(limit).all()

    return {k: {"count": q.order_by(None).count(), "rows": rows(k, q)} for k, q in sections.items()}


def reminder_link(reminder: Reminder) -> str | None:
    """Where a reminder leads: its ticket, its feedback, else its customer."""
    if reminder.ticket_id:
        return url_for("TicketModelView.show", pk=reminder.ticket_id)
    if reminder.feedback_id:
        return url_for("FeedbackModelView.show", pk=reminder.feedback_id)
    if reminder.customer_id:
        return url_for("CustomerModelView.show", pk=reminder.customer_id)
    return None


def inbox_count() -> int:
    """The number next to 我的工作台 in the menu: overdue and due-today tasks, unread reminders."""
    if "_crm_inbox_count" not in g:
        user = getattr(g, "user", None)
        n = 0
        if user is not None and getattr(user, "is_authenticated", False):
            t = now()
            day_end = datetime.combine(t.date(), time.max)
            n = db.session.query(func.count(Task.id)).filter(
                Task.assignee_id == user.id, Task.status != "done", Task.due_at <= day_end).scalar() + \
                db.session.query(func.count(Reminder.id)).filter(Reminder.user_id == user.id,
                                                                 Reminder.read_at.is_(None)).scalar()
        g._crm_inbox_count = n
    return g._crm_inbox_count


class CountedLabel:
    """A menu label followed by the current user's count, e.g. 我的工作台 (3)."""

    def __init__(self, label, count) -> None:
        self.label, self.count = label, count

    def __str__(self) -> str:
        n = self.count()
        return f"{self.label} ({n})" if n else str(self.label)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))


class WorkbenchView(BaseView):
    """我的工作台: due today, overdue, reminders, recently assigned (and, for supervisors, their
    department's overdue work); complete a task or dismiss a reminder in place."""

    route_base = "/workbench"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        from app.views.home import overview_stats

        return self.render_template("crm/workbench.html", box=inbox(g.user.id), describe=describe, link=reminder_link,
                                    stats=overview_stats(g.user),
                                    fmt_datetime=fmt_datetime, fmt_status=fmt_status)

    @expose("/task/<int:pk>/done", methods=["POST"])
    @has_access
    def task_done(self, pk: int):
        task = db.session.query(Task).filter(row_clause(Task), Task.id == pk).first()
        if task is None:
            abort(404)
        nxt = complete_task(task, g.user.id)
        db.session.commit()
        if nxt is not None:
            flash(gettext("Done. Next follow-up scheduled for %(due)s.", due=fmt_datetime(nxt.due_at)), "success")
        else:
            flash(gettext("Done."), "success")
        return redirect(url_for(".index"))

    @expose("/reminder/<int:pk>/read", methods=["POST"])
    @has_access
    def reminder_read(self, pk: int):
        reminder = db.session.query(Reminder).filter(Reminder.user_id == g.user.id, Reminder.id == pk).first()
        if reminder is None:
            abort(404)
        reminder.read_at = datetime.now()
        db.session.commit()
        return redirect(url_for(".index"))
