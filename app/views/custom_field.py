"""Admin-defined customer fields (字段配置): the admin view, and what puts the active fields into
the customer screens and API at once, per request, with no restart.

FAB builds a view's forms, fieldsets, columns and filters once, at registration. The customer
view therefore reads those attributes through ``_Live`` descriptors: outside a request they are
the declared values; inside one, the declared values plus the admin-defined fields read for
this request (app.services.fields._custom_specs). Values are read, validated and written only
through app.services.fields (clean_value, display_text, set_custom_values).
"""
from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, has_app_context, has_request_context, redirect, request
from flask_appbuilder import ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import (
    BS3TextAreaFieldWidget, BS3TextFieldWidget, DatePickerWidget, Select2ManyWidget, Select2Widget,
)
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import false, func, inspect as sa_inspect, not_, or_
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import ValidationError

from app.extensions import db
from app.models import CustomField, Customer
from app.security import masking
from app.security.scopes import hidden_fields, visible_specs
from app.services import fields as catalogue
from app.services.fields import CHOICE_TYPES, FieldSpec, FieldValueError, clean_value, custom_field, custom_fields
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin

# -- values of one customer -------------------------------------------------------------------


def _unchanged_mask(spec: FieldSpec, raw: Any, stored: Any) -> bool:
    """A masked phone/e-mail sent back unchanged (the user never saw the full one): keep it."""
    kind = catalogue.MASK_KINDS.get(spec.type)
    return bool(kind and stored and raw == masking.mask(kind, stored))


def clean_values(specs: list[FieldSpec], given: dict, stored: dict | None, partial: bool) -> tuple[dict, dict]:
    """(cleaned values, {key: [message]}) for ``given`` raw values of ``specs``. ``partial``
    (an API PUT): fields not given stay as stored and are not checked."""
    stored = stored or {}
    values, errors = {}, {}
    for spec in specs:
        if partial and spec.key not in given:
            continue
        raw = given.get(spec.key)
        if _unchanged_mask(spec, raw, stored.get(spec.key)):
            continue
        try:
            values[spec.key] = clean_value(spec, raw)
        except FieldValueError as exc:
            errors[spec.key] = [str(exc)]
    return values, errors


def shown_fields() -> list[FieldSpec]:
    """The active admin-defined fields the current user may see (column scope)."""
    return visible_specs(custom_fields())


def api_values(item: Customer, full: bool) -> tuple[dict, list[str]]:
    """The "extra" object of the API: the stored value of every active field the user may see
    (choices as item codes, money as a 2-decimal string, dates as ISO strings), phones and
    e-mails masked unless ``full``. Also returns the keys shown in full (to be logged)."""
    stored = (item.extra if item is not None else None) or {}
    kinds = masking.masked_fields("customer")
    out, revealed = {}, []
    for spec in shown_fields():
        value = stored.get(spec.key)
        if spec.key in kinds and value:
            if full:
                revealed.append(spec.key)
            else:
                value = masking.mask(kinds[spec.key], value)
        out[spec.key] = value
    return out, revealed


# -- forms --------------------------------------------------------------------------------------

class _Clean:
    """WTForms validator running clean_value: the message lands next to the field."""

    def __init__(self, spec: FieldSpec):
        self.spec = spec
        self.field_flags = {"required": True} if spec.required else {}

    def __call__(self, form, field):
        stored = getattr(form, "_stored_extra", None) or {}
        if _unchanged_mask(self.spec, field.data, stored.get(self.spec.key)):
            return
        try:
            clean_value(self.spec, field.data)
        except FieldValueError as exc:
            raise ValidationError(str(exc)) from None


def form_field(spec: FieldSpec):
    """The WTForms field of an admin-defined field (its validators from clean_value)."""
    kw = {"label": spec.label, "validators": [_Clean(spec)]}
    if spec.type == "single_choice":
        # a form posted without the field (a script, or a form rendered before an admin added it)
        # leaves it blank, as the browser's "—" would: not "not a valid choice" on a field never shown
        return SelectField(choices=[("", "—")] + catalogue.choices(spec), widget=Select2Widget(), default="", **kw)
    if spec.type == "multi_choice":
        return SelectMultipleField(choices=catalogue.choices(spec), widget=Select2ManyWidget(), **kw)
    if spec.type == "long_text":
        return TextAreaField(widget=BS3TextAreaFieldWidget(), **kw)
    if spec.type == "date":
        return StringField(widget=DatePickerWidget(), **kw)
    return StringField(widget=BS3TextFieldWidget(), **kw)


def with_custom_fields(form_cls, specs: list[FieldSpec]):
    """``form_cls`` plus one field per spec, prefilled from and written to Customer.extra."""
    keys = [s.key for s in specs]

    class CustomerForm(form_cls):
        def __init__(self, *args, obj=None, **kwargs):
            super().__init__(*args, obj=obj, **kwargs)
            self._stored_extra = dict(obj.extra or {}) if isinstance(obj, Customer) else {}
            if isinstance(obj, Customer) and not (request.method == "POST" and request.form):
                for key in keys:
                    self[key].data = self._stored_extra.get(key)

        def validate(self, extra_validators=None):
            if getattr(self, "_id", None) is not None and not self._stored_extra:  # edit: FAB set _id
                item = db.session.get(Customer, self._id)
                self._stored_extra = dict(item.extra or {}) if item is not None else {}
            return super().validate(extra_validators=extra_validators)

        def populate_obj(self, obj):
            for name, field in self._fields.items():
                if name not in keys:
                    field.populate_obj(obj, name)
            given = {key: self[key].data for key in keys}
            values, errors = clean_values(specs, given, obj.extra, partial=False)
            if errors:  # validated already; a second look finds nothing new
                raise FieldValueError("; ".join(m for ms in errors.values() for m in ms))
            catalogue.set_custom_values(obj, values)

    for spec in specs:
        setattr(CustomerForm, spec.key, form_field(spec))
    CustomerForm.__name__ = form_cls.__name__
    return CustomerForm


def search_field(spec: FieldSpec):
    if spec.type in CHOICE_TYPES:
        return SelectField(spec.label, choices=[("", "—")] + catalogue.choices(spec), widget=Select2Widget())
    return StringField(spec.label, widget=DatePickerWidget() if spec.type == "date" else BS3TextFieldWidget())


# -- list filters over the JSON value (SQLite JSON_EXTRACT / PostgreSQL ->>) ------------------------

class _ExtraFilter(BaseFilter):
    def _expr(self):
        return catalogue.extra_text(self.column_name)

    def _value(self, value):
        """The filter value cleaned like a stored value (None: refused or empty)."""
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        spec = custom_field(self.column_name)
        if spec is None:
            return spec, None
        try:
            cleaned = clean_value(replace(spec, required=False), value)
        except FieldValueError:
            return spec, None
        return spec, cleaned[0] if isinstance(cleaned, list) else cleaned

    @staticmethod
    def _numeric(spec: FieldSpec) -> bool:
        return spec.type in catalogue.NUMERIC_TYPES

    def _compare(self, spec: FieldSpec):
        return catalogue.extra_compare(spec)

    def _operand(self, spec: FieldSpec, value):
        return Decimal(value) if self._numeric(spec) else value

    def apply(self, query, value):
        spec, cleaned = self._value(value)
        if cleaned is None:
            return query.filter(false())
        return query.filter(self.condition(spec, cleaned))


class FilterExtraEqual(_ExtraFilter):
    name = _l("Equal to")
    arg_name = "custom_eq"  # FAB maps arg names to classes globally: never reuse its own

    def condition(self, spec, value):
        if spec.type == "multi_choice":
            return self._expr().like(f'%"{value}"%')
        if self._numeric(spec):
            return self._compare(spec) == self._operand(spec, value)
        return func.lower(self._expr()) == str(value).lower()


class FilterExtraNotEqual(FilterExtraEqual):
    name = _l("Not Equal to")
    arg_name = "custom_neq"  # FAB maps arg names to classes globally: never reuse its own

    def condition(self, spec, value):
        return or_(self._expr().is_(None), not_(super().condition(spec, value)))


class FilterExtraContains(_ExtraFilter):
    name = _l("Contains")
    arg_name = "custom_ct"  # FAB maps arg names to classes globally: never reuse its own

    def _value(self, value):
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        spec = custom_field(self.column_name)
        return spec, (str(value).strip() or None) if spec is not None else None

    def condition(self, spec, value):
        escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return func.lower(self._expr()).like(f"%{escaped}%", escape="\\")


class FilterExtraGreater(_ExtraFilter):
    name = _l("Greater than")
    arg_name = "custom_gt"  # FAB maps arg names to classes globally: never reuse its own

    def condition(self, spec, value):
        return self._compare(spec) > self._operand(spec, value)


class FilterExtraSmaller(_ExtraFilter):
    name = _l("Smaller than")
    arg_name = "custom_lt"  # FAB maps arg names to classes globally: never reuse its own

    def condition(self, spec, value):
        return self._compare(spec) < self._operand(spec, value)


_TEXT_FILTERS = [FilterExtraContains, FilterExtraEqual, FilterExtraNotEqual]
FILTERS = {"text": _TEXT_FILTERS, "long_text": _TEXT_FILTERS, "phone": _TEXT_FILTERS, "email": _TEXT_FILTERS,
           "single_choice": [FilterExtraEqual, FilterExtraNotEqual],
           "multi_choice": [FilterExtraEqual, FilterExtraNotEqual],
           "number": [FilterExtraEqual, FilterExtraGreater, FilterExtraSmaller],
           "money": [FilterExtraEqual, FilterExtraGreater, FilterExtraSmaller],
           "date": [FilterExtraEqual, FilterExtraGreater, FilterExtraSmaller]}


def register_custom_filters(view) -> None:
    """Give a view's or API's filters this request's searchable fields (FAB keeps one Filters
    object per view and resets its values per request; we reset its columns the same way)."""
    filters = view._filters
    base = view.__dict__.setdefault("_base_filter_maps", (
        dict(filters._search_filters), dict(filters._all_filters), list(filters.search_columns)))
    custom = {s.key: [f(s.key, view.datamodel) for f in FILTERS[s.type]] for s in shown_fields() if s.searchable}
    filters._search_filters = {**base[0], **custom}
    filters._all_filters = {**base[1], **custom}
    filters.search_columns = base[2] + list(custom)


# -- the customer view and API --------------------------------------------------------------------

class CustomerInterface(CrmSQLAInterface):
    """Reads an admin-defined field's value (as display text) where FAB reads a column, and sorts
    by one (numbers numerically, dates chronologically, choices by name; empty values last)."""

    def apply_order_by(self, query, order_column, order_direction, *args, **kwargs):
        spec = custom_field(order_column) if order_column and not hasattr(self.obj, order_column) else None
        if spec is None or not catalogue.sortable(spec):
            return super().apply_order_by(query, order_column, order_direction, *args, **kwargs)
        expr = catalogue.sort_expression(spec)
        if order_direction == "desc":
            return query.order_by(expr.desc().nulls_last(), self.obj.id.desc())
        return query.order_by(expr.asc().nulls_last(), self.obj.id.asc())

    def _get_attr_value(self, item, col):
        if "." not in col and not hasattr(type(item), col):
            spec = custom_field(col)
            if spec is not None:
                return catalogue.display_text(spec, (item.extra or {}).get(col))
        return CrmSQLAInterface._get_attr_value(item, col)


_MISSING = object()


class _Live:
    """A view attribute: the declared value, plus this request's admin-defined fields."""

    def __init__(self, name: str, extend):
        self.name, self.extend = name, extend

    def _base(self, view):
        value = view.__dict__.get("_base_" + self.name, _MISSING)
        return getattr(type(view), "_base_" + self.name) if value is _MISSING else value

    def __get__(self, view, owner=None):
        if view is None:
            return self
        base = self._base(view)
        # live in a request, and in a job or command acting as someone (an export job sorts by a
        # custom column); not while the views are being registered
        if base is None or not (has_request_context() or (has_app_context() and g.get("user") is not None)):
            return base
        cache = g.setdefault("_crm_live_attrs", {})
        key = (id(view), self.name, getattr(g.get("user"), "id", None))
        if key not in cache:
            cache[key] = self.extend(view, base, shown_fields())
        return cache[key]

    def __set__(self, view, value):
        view.__dict__["_base_" + self.name] = value


def _category_fieldsets(base: list, specs: list[FieldSpec], titles: dict) -> list:
    """Each field into the fieldset of its category; a second-level group gets its own fieldset
    ("category · group") after its category's. A category missing from ``base`` is added."""
    fieldsets = [(title, {**spec, "fields": list(spec["fields"])}) for title, spec in base]
    for spec in specs:
        category = str(titles[spec.category])
        title = f"{category} · {spec.group}" if spec.group else category
        found = next((fs for fs in fieldsets if str(fs[0]) == title), None)
        if found is None:
            found = (title, {"fields": []})
            same = [i for i, fs in enumerate(fieldsets) if str(fs[0]).startswith(category)]
            fieldsets.insert(same[-1] + 1 if same else len(fieldsets), found)
        found[1]["fields"].append(spec.key)
    return fieldsets


class CustomFieldsViewMixin:
    """For the customer ModelView: admin-defined fields in forms (per type validators), form and
    show fieldsets (by category and group), list columns (in_list), labels and filters
    (searchable), read from the database for every request."""

    category_titles: dict = {}
    _LIVE = {
        "list_columns": lambda v, base, specs: list(base) + [s.key for s in specs if s.in_list],
        "show_columns": lambda v, base, specs: list(base) + [s.key for s in specs],
        "add_columns": lambda v, base, specs: list(base) + [s.key for s in specs],
        "edit_columns": lambda v, base, specs: list(base) + [s.key for s in specs],
        "search_columns": lambda v, base, specs: list(base) + [s.key for s in specs if s.searchable],
        "order_columns": lambda v, base, specs: list(base) + [s.key for s in specs if s.in_list and catalogue.sortable(s)],
        "label_columns": lambda v, base, specs: {**base, **{s.key: s.label for s in specs}},
        "show_fieldsets": lambda v, base, specs: _category_fieldsets(base, specs, v.category_titles),
        "add_fieldsets": lambda v, base, specs: _category_fieldsets(base, specs, v.category_titles),
        "edit_fieldsets": lambda v, base, specs: _category_fieldsets(base, specs, v.category_titles),
        "add_form": lambda v, base, specs: with_custom_fields(base, specs) if specs else base,
        "edit_form": lambda v, base, specs: with_custom_fields(base, specs) if specs else base,
        "search_form": lambda v, base, specs: type(base.__name__, (base,), {
            s.key: search_field(s) for s in specs if s.searchable}) if any(s.searchable for s in specs) else base,
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, extend in CustomFieldsViewMixin._LIVE.items():
            current = cls.__dict__.get(name, _MISSING)
            if current is _MISSING:
                current = getattr(cls, name, None)
                if isinstance(current, _Live):
                    continue
            setattr(cls, "_base_" + name, current)
            setattr(cls, name, _Live(name, extend))

    def _list(self, **kwargs):
        hidden = hidden_fields()  # a hidden custom field is not even a filter here: refuse, don't ignore
        if any(m and m.group(1) in hidden for m in (re.fullmatch(r"_flt_\d+_(.+)", a) for a in request.args)):
            abort(403)
        self.refresh_filters()
        return super()._list(**kwargs)

    def refresh_filters(self) -> None:
        """This request's (or export job's) searchable fields as filters (exports call it too)."""
        register_custom_filters(self)


class CustomFieldsApiMixin:
    """For the customer REST API: active fields' values as the nested object "extra" in GET
    (list and show; masked like every other value), accepted and validated in POST and PUT
    (422 with {"message": {"extra": {key: [message]}}}; nothing saved)."""

    def _take_extra(self, item: Customer | None, partial: bool):
        body = request.get_json(silent=True)
        given = body.pop("extra", None) if isinstance(body, dict) else None
        if given is None:
            given = {}
        if not isinstance(given, dict):
            return self.response_422(message={"extra": [gettext("Expected an object of field values.")]})
        specs = shown_fields()
        known, hidden = {s.key for s in specs}, hidden_fields()
        errors = {k: [gettext("A field your role may not see or change.") if k in hidden else gettext("Unknown field.")]
                  for k in given if k not in known}
        values, value_errors = clean_values(specs, given, item.extra if item is not None else None, partial)
        errors.update(value_errors)
        if errors:
            return self.response_422(message={"extra": errors})
        g._crm_extra_values = values
        return None

    def post_headless(self):
        refused = self._take_extra(None, partial=False)
        return refused or super().post_headless()

    def put_headless(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        refused = self._take_extra(item, partial=True) if item is not None else None
        return refused or super().put_headless(pk)

    def _handle_filters_args(self, rison_args):
        """Searchable fields filter the API list too: {"col": key, "opr": "custom_eq" | "custom_neq" |
        "custom_ct" | "custom_gt" | "custom_lt", "value": ...}."""
        register_custom_filters(self)
        return super()._handle_filters_args(rison_args)

    def info_headless(self, **kwargs):
        """_info lists the filters of the searchable fields the user may see too."""
        response = super().info_headless(**kwargs)
        data = response.get_json(silent=True)
        if response.status_code != 200 or not isinstance(data, dict) or "filters" not in data:
            return response
        register_custom_filters(self)
        flts = self._filters.get_search_filters()
        for spec in shown_fields():
            if spec.searchable and spec.key in flts:
                data["filters"][spec.key] = [{"name": str(f.name), "operator": f.arg_name} for f in flts[spec.key]]
        return self.response(200, **data)

    def _handle_order_args(self, rison_args):
        """order_column may name a sortable admin-defined field the user may see."""
        column = str(rison_args.get("order_column", ""))
        spec = next((s for s in shown_fields() if s.key == column and catalogue.sortable(s)), None)
        if spec is not None and column not in masking.unsortable("customer"):  # a masked phone: refused below
            return column, "desc" if rison_args.get("order_direction") == "desc" else "asc"
        return super()._handle_order_args(rison_args)

    def apply_extra(self, item: Customer) -> None:
        catalogue.set_custom_values(item, g.pop("_crm_extra_values", {}))

    def pre_get_list(self, data: dict) -> None:
        super().pre_get_list(data)
        items = self._items(data.get("ids") or [])
        for pk, row in zip(data.get("ids") or [], data.get("result") or []):
            row["extra"] = api_values(items.get(pk), full=False)[0]

    def pre_get(self, data: dict) -> None:
        super().pre_get(data)
        item = self._items([data["id"]]).get(data["id"])
        if isinstance(data.get("result"), dict):
            full = masking.may_view_full()
            data["result"]["extra"], revealed = api_values(item, full)
            if full:
                masking.log_reveals("customer", data["id"], revealed, "api")


# -- 字段配置: the admin view -------------------------------------------------------------------------

_KEY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
RESERVED = {"tags", "extra", "id"}
LABELS = {"key": _l("Key"), "label_zh": _l("Chinese label"), "label_en": _l("English label"),
          "field_type": _l("Type"), "required": _l("Required"), "dictionary_type": _l("Choices from dictionary"),
          "category": _l("Category"), "group": _l("Group"), "position": _l("Position"), "in_list": _l("Shown in list"),
          "searchable": _l("Searchable"), "retired": _l("Retired")}


def reserved_keys() -> set[str]:
    """Names a custom key may not take: every attribute of Customer (columns, relationships,
    backrefs, methods) and the customer screens' pseudo-columns."""
    return RESERVED | set(sa_inspect(Customer).all_orm_descriptors.keys()) | {n for n in dir(Customer) if not n.startswith("__")}


def has_values(key: str) -> int:
    """How many customers hold a value for ``key``."""
    return db.session.query(func.count(Customer.id)).filter(Customer.extra[key].as_string().isnot(None)).scalar() or 0


def _check_definition(form) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    key = (form.key.data or "").strip()
    if not _KEY.match(key):
        errors["key"] = [gettext("Use 2-40 lower-case letters, digits or _, starting with a letter.")]
    elif key in reserved_keys():
        errors["key"] = [gettext('"%(key)s" is already a built-in customer field.', key=key)]
    field_type = form.field_type.data
    if field_type in CHOICE_TYPES and form.dictionary_type.data is None:
        errors["dictionary_type"] = [gettext("A choice field needs a dictionary for its choices.")]
    elif field_type not in CHOICE_TYPES and form.dictionary_type.data is not None:
        errors["dictionary_type"] = [gettext("Only choice fields take a dictionary.")]
    pk = getattr(form, "_id", None)
    if pk is not None:
        row = db.session.get(CustomField, pk)
        if row is not None and (row.key != key or row.field_type != field_type) and has_values(row.key):
            target = "key" if row.key != key else "field_type"
            errors.setdefault(target, []).append(gettext(
                "%(n)d customers already hold values for this field: its key and type can no longer change.",
                n=has_values(row.key)))
    return errors


def _checked_definition_form(form_cls):
    class CustomFieldForm(form_cls):
        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators=extra_validators)
            for name, messages in _check_definition(self).items():
                self[name].errors = list(self[name].errors) + messages
                valid = False
            return valid

    CustomFieldForm.__name__ = form_cls.__name__
    return CustomFieldForm


def _type_label(value) -> str:
    return gettext(catalogue.TYPE_LABELS.get(value, value or ""))


def _category_label(value) -> str:
    return gettext(catalogue.CATEGORY_LABELS.get(value, value or ""))


def _choices(labels: dict):
    return lambda: [(k, gettext(v)) for k, v in labels.items()]


class _LazyChoiceField(SelectField):
    """A select whose labels follow the user's language (choices read at render time)."""

    def __init__(self, label, labels: dict, **kw):
        super().__init__(label, choices=_choices(labels), **kw)


class _CustomFieldInterface(CrmSQLAInterface):
    def is_nullable(self, col_name: str) -> bool:
        return True if col_name == "position" else super().is_nullable(col_name)  # blank: put it last


class CustomFieldModelView(LocalizedValuesMixin, ModelView):
    datamodel = _CustomFieldInterface(CustomField)
    list_title = show_title = _l("Custom Fields")
    add_title, edit_title = _l("Add Custom Field"), _l("Edit Custom Field")
    base_permissions = ["can_list", "can_show", "can_add", "can_edit"]  # retire instead of deleting
    list_columns = ["position", "key", "label_zh", "label_en", "field_type", "category", "group", "required",
                    "in_list", "searchable", "retired"]
    add_columns = edit_columns = ["key", "label_zh", "label_en", "field_type", "dictionary_type", "required",
                                  "category", "group", "position", "in_list", "searchable", "retired"]
    show_columns = add_columns
    search_columns = ["key", "label_zh", "field_type", "category", "retired"]
    order_columns = ["position", "key", "label_zh"]
    base_order = ("position", "asc")
    label_columns = LABELS
    description_columns = {
        "key": _l("Name used in the API, imports and exports (Customer extra). Cannot change once customers hold values."),
        "position": _l("Order in forms, lists and exports: smaller first."),
        "retired": _l("Retired fields are hidden everywhere; their values are kept and come back on restore."),
        "group": _l("Second-level group inside the category (optional)."),
    }
    formatters_columns = {"field_type": _type_label, "category": _category_label}
    add_form_extra_fields = edit_form_extra_fields = {
        "field_type": _LazyChoiceField(_l("Type"), catalogue.TYPE_LABELS, widget=Select2Widget()),
        "category": _LazyChoiceField(_l("Category"), catalogue.CATEGORY_LABELS, widget=Select2Widget()),
    }

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _checked_definition_form(self.add_form)
        self.edit_form = _checked_definition_form(self.edit_form)

    def _after_action(self, message: str):
        db.session.commit()
        flash(message, "success")
        return redirect(self.get_redirect())

    @action("retire", _l("Retire"), _l("Hide the selected fields everywhere? Their values are kept."), "fa-eye-slash")
    def retire(self, items):
        for item in items if isinstance(items, list) else [items]:
            item.retired = True
        return self._after_action(gettext("Retired: hidden everywhere, values kept."))

    @action("restore", _l("Restore"), "", "fa-eye")
    def restore(self, items):
        for item in items if isinstance(items, list) else [items]:
            item.retired = False
        return self._after_action(gettext("Restored: shown again with their values."))

    def _move(self, items, step: int):
        selected = {i.id for i in (items if isinstance(items, list) else [items])}
        order = db.session.query(CustomField).order_by(CustomField.position, CustomField.id).all()
        indexes = range(len(order)) if step < 0 else range(len(order) - 1, -1, -1)
        for i in indexes:
            j = i + step
            if order[i].id in selected and 0 <= j < len(order) and order[j].id not in selected:
                order[i], order[j] = order[j], order[i]
        for n, row in enumerate(order, 1):
            row.position = n * 10
        return self._after_action(gettext("Order changed."))

    @action("move_up", _l("Move up"), "", "fa-arrow-up")
    def move_up(self, items):
        return self._move(items, -1)

    @action("move_down", _l("Move down"), "", "fa-arrow-down")
    def move_down(self, items):
        return self._move(items, 1)

    def pre_add(self, item: CustomField) -> None:
        item.key = item.key.strip()
        if not item.position:
            last = db.session.query(func.max(CustomField.position)).scalar() or 0
            item.position = last + 10

    def pre_update(self, item: CustomField) -> None:
        item.key = item.key.strip()

