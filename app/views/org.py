"""Departments (部门)."""
from flask_appbuilder import ModelView

from flask_babel import lazy_gettext as _l

from app.models import Department
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin


class DepartmentModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Department)
    list_title = show_title = _l("Departments")
    add_title = _l("Add Department")
    edit_title = _l("Edit Department")
    list_columns = ["name", "name_en", "key", "active"]
    add_columns = edit_columns = show_columns = ["key", "name", "name_en", "active"]
    label_columns = {"key": _l("Key"), "name": _l("Name"), "name_en": _l("English name"),
                     "active": _l("Active")}
