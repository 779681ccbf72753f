"""Dictionaries (数据字典) and their items, maintained by admins."""
from flask_appbuilder import ModelView

from flask_babel import lazy_gettext as _l

from app.models import DictionaryItem, DictionaryType
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin

_LABELS = {"key": _l("Key"), "name": _l("Name"), "name_en": _l("English name"), "code": _l("Code"),
           "sort": _l("Sort order"), "active": _l("Active"), "type": _l("Dictionary"),
           "items": _l("Items")}


class DictionaryItemModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(DictionaryItem)
    list_title = show_title = _l("Dictionary Items")
    add_title = _l("Add Dictionary Item")
    edit_title = _l("Edit Dictionary Item")
    list_columns = ["type", "code", "name", "name_en", "sort", "active"]
    add_columns = edit_columns = show_columns = ["type", "code", "name", "name_en", "sort", "active"]
    search_columns = ["type", "code", "name", "name_en", "active"]
    order_columns = ["code", "name", "sort"]
    base_order = ("sort", "asc")
    label_columns = _LABELS
    page_size = 50


class DictionaryTypeModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(DictionaryType)
    list_title = show_title = _l("Dictionaries")
    add_title = _l("Add Dictionary")
    edit_title = _l("Edit Dictionary")
    list_columns = ["name", "name_en", "key"]
    add_columns = edit_columns = ["key", "name", "name_en"]
    show_columns = ["key", "name", "name_en"]
    label_columns = _LABELS
    related_views = [DictionaryItemModelView]
