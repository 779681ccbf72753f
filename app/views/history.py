"""Field history (修改记录), read only: a tab on the customer page and GET on the REST API.
No add, edit or delete route exists (not even for admins): the routes are not registered and
the permissions are only list/show (views) and get/info (API)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask_appbuilder import ModelRestApi, ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l

from app.models import FieldChange
from app.security.scopes import HISTORY_SCOPE
from app.services.history import display_value

LABELS = {
    "changed_on_display": _l("Time"), "changed_by": _l("Changed by"), "action_display": _l("Action"),
    "record_display": _l("Record"), "field_display": _l("Field"), "old_display": _l("Old Value"),
    "new_display": _l("New Value"), "changeset": _l("Change Set"),
}
_COLUMNS = ["changed_on_display", "changed_by", "action_display", "record_display", "field_display",
            "old_display", "new_display"]


class CustomerHistoryView(ModelView):
    """Shown as the 修改记录 tab of a customer (a FAB related view), newest first."""
    route_base = "/customerhistory"
    datamodel = SQLAInterface(FieldChange)
    base_filters = HISTORY_SCOPE
    include_route_methods = {"list", "show"}
    base_permissions = ["can_list", "can_show"]
    list_title = show_title = title = _l("Change History")
    list_columns = _COLUMNS
    show_columns = _COLUMNS + ["changeset"]
    label_columns = LABELS
    base_order = ("id", "desc")
    page_size = 50


class CustomerHistoryApi(ModelRestApi):
    """GET /api/v1/customer_history/?q=(filters:!((col:customer_no,opr:eq,value:C20240501001))), newest first."""
    resource_name = "customer_history"
    datamodel = SQLAInterface(FieldChange)
    base_filters = HISTORY_SCOPE
    allow_browser_login = True
    include_route_methods = {"get", "get_list", "info"}
    base_permissions = ["can_get", "can_info"]
    list_columns = show_columns = ["id", "changeset", "action", "entity", "entity_id", "record_label",
                                   "customer_no", "customer_id", "field", "old_value", "new_value", "changed_by.username",
                                   "changed_on"]
    search_columns = ["customer_no", "customer_id", "entity", "entity_id", "action", "changeset", "field"]
    order_columns = ["id", "changed_on"]
    base_order = ("id", "desc")

    @staticmethod
    def _shown(row: dict[str, Any]) -> None:
        change = SimpleNamespace(entity=row.get("entity"), field=row.get("field"))
        for key in ("old_value", "new_value"):
            if key in row:
                row[key] = display_value(change, row[key]) if row[key] is not None else None

    def pre_get(self, data: dict[str, Any]) -> None:
        self._shown(data.get("result", {}))

    def pre_get_list(self, data: dict[str, Any]) -> None:
        for row in data.get("result", []):
            self._shown(row)
