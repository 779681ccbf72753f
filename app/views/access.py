"""Admin screens for access rules: each role's data scope (row scope and hidden fields) and
the log of full contact values shown (read only)."""
from __future__ import annotations

from flask_appbuilder import ModelView
from flask_appbuilder.fieldwidgets import Select2ManyWidget
from flask_babel import gettext, lazy_gettext as _l
from wtforms import SelectField, SelectMultipleField

from app.models import RevealLog, RolePolicy
from app.models.access import SCOPES
from app.security.scopes import CATEGORY_PREFIX, HIDEABLE_FIELDS
from app.services import fields as catalogue
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime
from app.views.lookup import PickersMixin

SCOPE_LABELS = {"own": _l("Own customers"), "department": _l("Department's customers"),
                "all": _l("All customers")}
WORK_SCOPE_LABELS = {"own": _l("Own tasks"), "department": _l("Department's tasks"), "all": _l("All tasks")}
TICKET_SCOPE_LABELS = {"own": _l("Own tickets"), "department": _l("Department's tickets"), "all": _l("All tickets")}


def hideable_choices() -> list[tuple[str, str]]:
    """What a role may be denied: the built-in business fields, every admin-defined field of a
    category (also those added later), and each admin-defined field (字段配置)."""
    builtin = [(s.key, s.label) for s in catalogue.BUILTIN if s.key in HIDEABLE_FIELDS]
    categories = [(CATEGORY_PREFIX + key, gettext("%(category)s: every custom field, also ones added later",
                                                  category=gettext(msgid)))
                  for key, msgid in catalogue.CATEGORY_LABELS.items()]
    custom = [(s.key, f"{s.label} ({s.key}, {gettext(catalogue.CATEGORY_LABELS[s.category])})")
              for s in catalogue.custom_fields()]
    return builtin + categories + custom


class HiddenFieldsField(SelectMultipleField):
    """Hidden fields picked from hideable_choices(), stored comma separated (RolePolicy.hide_fields)."""

    widget = Select2ManyWidget()

    def __init__(self, label=None, **kw):
        super().__init__(label, choices=hideable_choices, **kw)

    def process_data(self, value):
        if isinstance(value, str):
            value = [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
        super().process_data(value)

    def pre_validate(self, form):
        known = {key for key, _ in hideable_choices()}
        unknown = [v for v in self.data or [] if v not in known]
        if unknown:
            raise ValueError(gettext("Unknown fields: %(names)s.", names=", ".join(unknown)))

    def populate_obj(self, obj, name):
        setattr(obj, name, ",".join(self.data or []))


def _hidden_labels(value) -> str:
    labels = dict(hideable_choices())
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    return "、".join(str(labels.get(n, n)) for n in names)


class RolePolicyModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(RolePolicy)
    list_title = show_title = _l("Data Scopes")
    add_title, edit_title = _l("Add Data Scope"), _l("Edit Data Scope")
    list_columns = ["role", "scope", "work_scope", "ticket_scope", "hide_fields"]
    add_columns = edit_columns = show_columns = ["role", "name_en", "scope", "work_scope", "ticket_scope", "hide_fields"]
    label_columns = {"role": _l("Role"), "name_en": _l("English name"), "scope": _l("Row scope"), "hide_fields": _l("Hidden fields"),
                     "work_scope": _l("Task scope"), "ticket_scope": _l("Ticket scope")}
    description_columns = {
        "name_en": _l("The role's name on English screens (empty: its Chinese name)."),
        "scope": _l("Which customers (and their contacts and interactions) the role sees. "
                    "A user with several roles gets the widest."),
        "work_scope": _l("Whose tasks and reminders the role sees (staff: their own; supervisors: their department's)."),
        "ticket_scope": _l("Which service tickets: own = handled, collaborated on or opened by the user; "
                           "department = also every ticket of the user's department; all."),
        "hide_fields": _l("Fields the role does not see anywhere (lists, pages, forms, API, search, exports, "
                          "imports, history): business fields, admin-defined fields one by one, or every "
                          "admin-defined field of a category, including fields added later."),
    }
    formatters_columns = {"scope": lambda v: str(SCOPE_LABELS.get(v, v)),
                          "work_scope": lambda v: str(WORK_SCOPE_LABELS.get(v, v)),
                          "ticket_scope": lambda v: str(TICKET_SCOPE_LABELS.get(v, v)),
                          "hide_fields": _hidden_labels}
    add_form_extra_fields = edit_form_extra_fields = {
        "scope": SelectField(_l("Row scope"), choices=[(s, SCOPE_LABELS[s]) for s in SCOPES]),
        "work_scope": SelectField(_l("Task scope"), choices=[(s, WORK_SCOPE_LABELS[s]) for s in SCOPES]),
        "ticket_scope": SelectField(_l("Ticket scope"), choices=[(s, TICKET_SCOPE_LABELS[s]) for s in SCOPES]),
        "hide_fields": HiddenFieldsField(_l("Hidden fields")),
    }


class RevealLogModelView(PickersMixin, LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(RevealLog)
    list_title = show_title = _l("Full Contact Views")
    base_permissions = ["can_list", "can_show"]
    list_columns = show_columns = ["revealed_at", "user", "model", "record_id", "field", "channel", "endpoint"]
    search_columns = ["revealed_at", "user", "model", "record_id", "field", "channel"]
    base_order = ("revealed_at", "desc")
    label_columns = {"revealed_at": _l("Time"), "user": _l("User"), "model": _l("Record type"),
                     "record_id": _l("Record ID"), "field": _l("Field"), "channel": _l("Channel"),
                     "endpoint": _l("Screen / API path")}
    formatters_columns = {"revealed_at": fmt_datetime}
