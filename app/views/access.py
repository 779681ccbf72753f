"""Admin screens for access rules: each role's data scope (row scope and hidden fields) and
the log of full contact values shown (read only)."""
from __future__ import annotations

from flask_appbuilder import ModelView
from flask_babel import lazy_gettext as _l

from app.views.lookup import PickersMixin
from wtforms import SelectField
from wtforms.validators import ValidationError

from app.models import RevealLog, RolePolicy
from app.models.access import SCOPES
from app.security.scopes import HIDEABLE_FIELDS
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime

SCOPE_LABELS = {"own": _l("Own customers"), "department": _l("Department's customers"),
                "all": _l("All customers")}
WORK_SCOPE_LABELS = {"own": _l("Own tasks"), "department": _l("Department's tasks"), "all": _l("All tasks")}
TICKET_SCOPE_LABELS = {"own": _l("Own tickets"), "department": _l("Department's tickets"), "all": _l("All tickets")}


def _check_fields(form, field) -> None:
    names = [f.strip() for f in (field.data or "").replace("，", ",").split(",") if f.strip()]
    unknown = [n for n in names if n not in HIDEABLE_FIELDS]
    if unknown:
        raise ValidationError(_l("Unknown fields: %(names)s. Allowed: %(allowed)s",
                                 names=", ".join(unknown), allowed=", ".join(HIDEABLE_FIELDS)))


class RolePolicyModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(RolePolicy)
    list_title = show_title = _l("Data Scopes")
    add_title, edit_title = _l("Add Data Scope"), _l("Edit Data Scope")
    list_columns = show_columns = ["role", "scope", "work_scope", "ticket_scope", "hide_fields"]
    add_columns = edit_columns = ["role", "scope", "work_scope", "ticket_scope", "hide_fields"]
    label_columns = {"role": _l("Role"), "scope": _l("Row scope"), "hide_fields": _l("Hidden fields"),
                     "work_scope": _l("Task scope"), "ticket_scope": _l("Ticket scope")}
    description_columns = {
        "scope": _l("Which customers (and their contacts and interactions) the role sees. "
                    "A user with several roles gets the widest."),
        "work_scope": _l("Whose tasks and reminders the role sees (staff: their own; supervisors: their department's)."),
        "ticket_scope": _l("Which service tickets: own = handled, collaborated on or opened by the user; "
                           "department = also every ticket of the user's department; all."),
        "hide_fields": _l("Comma-separated business fields the role does not see, e.g. total_amount, annual_revenue."),
    }
    formatters_columns = {"scope": lambda v: str(SCOPE_LABELS.get(v, v)),
                          "work_scope": lambda v: str(WORK_SCOPE_LABELS.get(v, v)),
                          "ticket_scope": lambda v: str(TICKET_SCOPE_LABELS.get(v, v))}
    add_form_extra_fields = edit_form_extra_fields = {
        "scope": SelectField(_l("Row scope"), choices=[(s, SCOPE_LABELS[s]) for s in SCOPES]),
        "work_scope": SelectField(_l("Task scope"), choices=[(s, WORK_SCOPE_LABELS[s]) for s in SCOPES]),
        "ticket_scope": SelectField(_l("Ticket scope"), choices=[(s, TICKET_SCOPE_LABELS[s]) for s in SCOPES]),
    }
    validators_columns = {"hide_fields": [_check_fields]}


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
