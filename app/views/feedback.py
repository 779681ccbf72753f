"""客户反馈 / Feedback in the back office: the list and page (staff entry, correction, handling,
progress notes), keyword rules, satisfaction answers, revisits, 高频问题 and the REST API."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Response, flash, g, request
from flask_appbuilder import BaseView, ModelRestApi, ModelView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from markupsafe import Markup
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Length, Optional

from app.extensions import db
from app.models import Customer, Feedback, FeedbackNote, FeedbackRule, Reminder, Revisit, Survey
from app.models.access import role_name_label
from app.models.dictionary import choices_of
from app.models.feedback import RULE_KINDS, STATUSES
from app.security.scopes import (
    FEEDBACK_SCOPE, SUBJECT_SCOPE, OutOfScopeError, feedback_clause, require_in_scope,
)
from app.services import feedback as svc
from app.services.satisfaction import follow_up
from app.views.export import ExportMixin
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_date, fmt_datetime
from app.views.lookup import PickersMixin
from app.views.scoped import ScopedApiMixin, ScopedViewMixin

LABELS = {
    "feedback_no": _l("Feedback No."), "customer": _l("Customer"), "contact_name": _l("Contact Name"),
    "phone": _l("Phone"), "email": _l("Email"), "channel": _l("Channel"), "subject": _l("Subject"),
    "content": _l("Content"), "type": _l("Feedback Type"), "auto_type_code": _l("Classified as"),
    "matched_words": _l("Matched Words"), "confidence": _l("Confidence"), "type_corrected": _l("Corrected"),
    "attribute": _l("Problem Attribute"), "handler": _l("Handler"), "status": _l("Status"),
    "submitted_at": _l("Submitted"), "promised_date": _l("Promised By"), "resolved_at": _l("Resolved at"),
    "satisfaction_score": _l("Satisfaction Score"), "satisfaction_comment": _l("Satisfaction Comment"),
    "customer_no": _l("Customer No."), "text": _l("Note"), "public": _l("Visible to the customer"),
    "author": _l("Author"), "created_at": _l("Time"), "feedback": _l("Feedback"),
    "kind": _l("Rule Kind"), "code": _l("Code"), "name": _l("Name"), "keywords": _l("Keywords"),
    "role_name": _l("Dispatch to Role"), "promise_hours": _l("Promised Within (hours)"), "sort": _l("Order"),
    "active": _l("Active"), "subject_no": _l("Reference No."), "expires_at": _l("Expires"),
    "answered_at": _l("Answered"), "score": _l("Score"), "comment": _l("Customer comment"), "sent_to": _l("Sent to"),
    "assignee": _l("Assignee"), "due_at": _l("Due"), "done_at": _l("Done"), "result": _l("Result"),
    "survey": _l("Survey"), "key": _l("Key"),
}
RULE_KIND_LABELS = {"type": _l("Classification (type)"), "attribute": _l("Dispatch (problem attribute)")}


def _label(labels):
    return lambda value: str(labels.get(value, value or ""))


def _attribute_name(code: str | None) -> str:
    if not code:
        return ""
    rule = db.session.query(FeedbackRule).filter_by(kind="attribute", code=code).first()
    return rule.name if rule else code


def _percent(value) -> str:
    return f"{round(value * 100)}%" if value is not None else ""


FORMATTERS = {"submitted_at": fmt_datetime, "resolved_at": fmt_datetime, "promised_date": fmt_date,
              "created_at": fmt_datetime, "expires_at": fmt_datetime, "answered_at": fmt_datetime,
              "due_at": fmt_datetime, "done_at": fmt_datetime, "status": _label(svc.STATUS_LABELS),
              "channel": _label(svc.CHANNEL_LABELS), "attribute": _attribute_name, "confidence": _percent,
              "kind": _label(RULE_KIND_LABELS),
              # words found in the customer's text: free text, whatever the UI language
              "matched_words": lambda v: Markup('<span class="crm-data">%s</span>') % v if v else ""}
_STATUS_CHOICES = [(s, svc.STATUS_LABELS[s]) for s in STATUSES]


def _customer_by_no(number: str | None) -> Customer | None:
    """The staff form takes a customer number (a dropdown of every customer does not scale)."""
    if not number:
        return None
    customer = db.session.query(Customer).filter_by(customer_no=number.strip()).first()
    if customer is None:
        raise svc.FeedbackError({"customer_no": gettext("No customer has the number %(no)s.", no=number)})
    return customer


class FeedbackNoteModelView(LocalizedValuesMixin, ModelView):
    """Progress notes on the feedback page; internal unless ticked 'visible to the customer'."""

    datamodel = CrmSQLAInterface(FeedbackNote)
    base_filters = FEEDBACK_SCOPE
    list_title = show_title = _l("Progress Notes")
    add_title = _l("Add Progress Note")
    list_columns = ["created_at", "text", "public", "author"]
    add_columns = ["feedback", "text", "public"]
    show_columns = ["feedback", "created_at", "text", "public", "author"]
    label_columns = LABELS
    formatters_columns = FORMATTERS
    base_order = ("created_at", "asc")
    base_permissions = ["can_list", "can_show", "can_add"]
    add_form_query_rel_fields = {"feedback": FEEDBACK_SCOPE}

    def pre_add(self, item: FeedbackNote) -> None:
        fb = item.feedback or db.session.get(Feedback, item.feedback_id)
        if fb is None or db.session.query(Feedback.id).filter(Feedback.id == fb.id, feedback_clause()).first() is None:
            db.session.rollback()
            raise OutOfScopeError(gettext("This customer is outside the records you may manage."))
        item.author_id = g.user.id
        if fb.status == "pending":
            fb.status = "processing"


class FeedbackModelView(ExportMixin, PickersMixin, ScopedViewMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Feedback)
    base_filters = FEEDBACK_SCOPE
    masked_model = "feedback"
    export_name = "feedback"
    list_title = show_title = _l("Feedback")
    add_title, edit_title = _l("Add Feedback"), _l("Handle Feedback")
    list_columns = ["feedback_no", "submitted_at", "customer", "type", "attribute", "status", "handler",
                    "promised_date", "satisfaction_score"]
    add_columns = ["customer_no", "contact_name", "phone", "email", "subject", "content", "type"]
    edit_columns = ["type", "handler", "status", "promised_date"]
    show_fieldsets = [
        (_l("Feedback"), {"fields": ["feedback_no", "channel", "submitted_at", "customer", "contact_name", "phone",
                                     "email", "subject", "content"]}),
        (_l("Classification and Dispatch"), {"fields": ["type", "auto_type_code", "matched_words", "confidence",
                                                        "type_corrected", "attribute", "handler", "promised_date"]}),
        (_l("Progress"), {"fields": ["status", "resolved_at", "satisfaction_score", "satisfaction_comment"]}),
    ]
    show_columns = [f for _t, spec in show_fieldsets for f in spec["fields"]]
    search_columns = ["feedback_no", "type", "status", "handler", "submitted_at", "attribute", "channel"]
    order_columns = ["feedback_no", "submitted_at", "promised_date", "status"]
    base_order = ("submitted_at", "desc")
    label_columns = LABELS
    formatters_columns = {**FORMATTERS, "auto_type_code": lambda c: str(svc.type_item(c) or c or "")}
    add_form_extra_fields = {"customer_no": StringField(_l("Customer No."), validators=[Optional(), Length(max=40)],
                                                        description=_l("Leave empty for an unknown sender."))}
    edit_form_extra_fields = {"status": SelectField(_l("Status"), choices=_STATUS_CHOICES)}
    add_form_query_rel_fields = edit_form_query_rel_fields = {"type": choices_of("feedback_type")}
    related_views = [FeedbackNoteModelView]
    show_template = "crm/feedback_show.html"

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _checked(self.add_form)

    def pre_add(self, item: Feedback) -> None:
        customer = _customer_by_no(getattr(item, "customer_no", None))
        if customer is not None:
            require_in_scope(customer)
            item.customer = customer
        g.feedback_code = svc.prepare(item, "staff")

    def post_add(self, item: Feedback) -> None:
        flash(gettext("Feedback %(no)s saved. The customer's look-up code (shown only now): %(code)s",
                      no=item.feedback_no, code=g.pop("feedback_code", "")), "info")

    def pre_update(self, item: Feedback) -> None:
        super().pre_update(item)
        svc.on_update(item)

    def show_extras(self, pk):
        return follow_up("feedback", self.datamodel.get(pk, self._base_filters))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        pk = self._deserialize_pk_if_composite(pk)
        widgets = self._show(pk)
        return self.render_template(self.show_template, pk=pk, title=self.show_title, widgets=widgets,
                                    related_views=self._related_views, **self.show_extras(pk))


def _checked(form_cls):
    """The staff form says which field is missing or too long (and which customer number is unknown)."""
    class CheckedFeedbackForm(form_cls):
        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators=extra_validators)
            values = {n: self[n].data for n in svc.LIMITS if n in self}
            errors = svc.check_fields(values)
            try:
                _customer_by_no(self["customer_no"].data if "customer_no" in self else None)
            except svc.FeedbackError as exc:
                errors.update(exc.errors)
            for name, message in errors.items():
                if name in self:
                    self[name].errors = list(self[name].errors) + [message]
            return valid and not errors

    CheckedFeedbackForm.__name__ = form_cls.__name__
    return CheckedFeedbackForm


class FeedbackRuleModelView(LocalizedValuesMixin, ModelView):
    """Keyword rules (admins): classification words per type, dispatch words per problem attribute."""

    datamodel = CrmSQLAInterface(FeedbackRule)
    list_title = show_title = _l("Feedback Rules")
    add_title, edit_title = _l("Add Feedback Rule"), _l("Edit Feedback Rule")
    list_columns = ["kind", "code", "name", "keywords", "role_name", "promise_hours", "active"]
    add_columns = edit_columns = ["key", "kind", "code", "name", "keywords", "role_name", "promise_hours", "sort",
                                  "active"]
    show_columns = add_columns
    label_columns = LABELS
    formatters_columns = {**FORMATTERS, "role_name": role_name_label}
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": SelectField(_l("Rule Kind"), choices=[(k, RULE_KIND_LABELS[k]) for k in RULE_KINDS])}
    description_columns = {
        "code": _l("Type rules: the code of a feedback type (complaint, suggestion, consult, praise). "
                   "Attribute rules: any code (product, service, logistics ...)."),
        "keywords": _l("Words separated by spaces, commas or 、; the text is segmented with jieba and "
                       "the rule with most hits wins."),
        "role_name": _l("Attribute rules: the role whose least busy member gets the feedback."),
    }


class SurveyModelView(ExportMixin, PickersMixin, ScopedViewMixin, LocalizedValuesMixin, ModelView):
    """满意度回访: the answers, with the handler they attach to (read only); the address the link
    went to is masked like the customer's other contact data."""

    datamodel = CrmSQLAInterface(Survey)
    base_filters = SUBJECT_SCOPE
    masked_model = "survey"
    base_permissions = ["can_list", "can_show", "can_export"]
    export_name = "surveys"
    list_title = show_title = _l("Satisfaction Follow-ups")
    list_columns = ["subject_no", "handler", "created_at", "expires_at", "answered_at", "score", "comment"]
    show_columns = list_columns + ["sent_to"]
    search_columns = ["subject_no", "handler", "score", "answered_at"]
    base_order = ("created_at", "desc")
    label_columns = LABELS
    formatters_columns = FORMATTERS


class RevisitModelView(ExportMixin, PickersMixin, LocalizedValuesMixin, ModelView):
    """回访任务: raised by a score ≤ 3, due within 24 hours; ticking 'done' closes it."""

    datamodel = CrmSQLAInterface(Revisit)
    base_filters = SUBJECT_SCOPE
    base_permissions = ["can_list", "can_show", "can_edit", "can_export"]
    export_name = "revisits"
    list_title = show_title = _l("Revisits")
    edit_title = _l("Record Revisit")
    list_columns = ["subject_no", "assignee", "due_at", "done_at", "result"]
    show_columns = ["subject_no", "survey", "assignee", "due_at", "done_at", "result", "created_at"]
    edit_columns = ["result", "done"]
    search_columns = ["subject_no", "assignee", "due_at", "done_at"]
    base_order = ("due_at", "asc")
    label_columns = {**LABELS, "done": _l("Done")}
    formatters_columns = {**FORMATTERS, "survey": lambda s: f"{s.score} · {s.comment or ''}" if s else ""}
    edit_form_extra_fields = {"done": BooleanField(_l("Done"))}

    def prefill_form(self, form, pk) -> None:
        form.done.data = self.datamodel.get(pk).done_at is not None

    def pre_update(self, item: Revisit) -> None:
        done = bool(getattr(item, "done", False))
        item.done_at = (item.done_at or datetime.utcnow()) if done else None
        if done:  # its reminder leaves the inbox
            db.session.query(Reminder).filter(Reminder.kind == "revisit", Reminder.subject_id == item.id,
                                              Reminder.read_at.is_(None)).update({"read_at": datetime.now()})


class FeedbackProblemsView(BaseView):
    """高频问题 / problem diagnosis: most frequent types and keywords over a period."""

    route_base = "/feedback/problems"
    default_view = "index"
    base_permissions = ["can_index"]

    @expose("/")
    @has_access
    def index(self):
        self.update_redirect()
        since, until = svc.default_period()
        try:
            since = date.fromisoformat(request.args.get("since") or since.isoformat())
            until = date.fromisoformat(request.args.get("until") or until.isoformat())
        except ValueError:
            flash(gettext("Dates are written 2024-05-15."), "danger")
        figures = svc.problem_figures(datetime.combine(since, time()), datetime.combine(until + timedelta(days=1), time()),
                                      feedback_clause())
        return self.render_template("crm/feedback_problems.html", title=_l("Frequent Problems"), figures=figures,
                                    since=since, until=until,
                                    type_names={c["code"]: str(svc.type_item(c["code"]) or c["code"])
                                                for c in figures["corrections"]})


class FeedbackApi(ScopedApiMixin, ModelRestApi):
    """/api/v1/feedback/: row-scoped like the list; POST classifies, numbers and dispatches and
    answers with the customer's look-up code once ("lookup_code")."""

    resource_name = "feedback"
    datamodel = CrmSQLAInterface(Feedback)
    base_filters = FEEDBACK_SCOPE
    masked_model = "feedback"
    allow_browser_login = True
    list_columns = ["id", "feedback_no", "submitted_at", "customer.customer_no", "channel", "type.code",
                    "attribute", "status", "handler.username", "promised_date", "satisfaction_score"]
    show_columns = list_columns + ["contact_name", "phone", "email", "subject", "content", "auto_type_code",
                                   "matched_words", "confidence", "type_corrected", "resolved_at",
                                   "satisfaction_comment"]
    add_columns = ["customer_id", "contact_name", "phone", "email", "subject", "content", "type_id"]
    edit_columns = ["type_id", "handler_id", "status", "promised_date"]
    order_columns = ["feedback_no", "submitted_at", "promised_date", "status"]
    search_columns = ["feedback_no", "status", "attribute", "channel", "submitted_at", "handler_id", "type_id"]

    def _refusals(self, write):
        try:
            response = write()
        except svc.FeedbackError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        except OutOfScopeError as exc:
            db.session.rollback()
            return self.response(403, message=str(exc))
        code = g.pop("feedback_code", None)
        if code and isinstance(response, Response) and response.status_code == 201:
            data = response.get_json()
            data["lookup_code"] = code
            return self.response(201, **data)
        return response

    def post_headless(self):
        return self._refusals(super().post_headless)

    def put_headless(self, pk):
        return self._refusals(lambda: super(FeedbackApi, self).put_headless(pk))

    def pre_add(self, item: Feedback) -> None:
        errors = svc.check_fields({n: getattr(item, n) for n in svc.LIMITS})
        if errors:
            raise svc.FeedbackError(errors)
        if item.customer_id:
            require_in_scope(db.session.get(Customer, item.customer_id))
        g.feedback_code = svc.prepare(item, "api")

    def pre_update(self, item: Feedback) -> None:
        super().pre_update(item)
        if item.status not in STATUSES:
            raise svc.FeedbackError({"status": gettext("Unknown status: use one of %(choices)s.",
                                                       choices=", ".join(STATUSES))})
        svc.on_update(item)

