"""The customer field catalogue: one list of what a customer file holds, read by everything that
works column by column (import mapping, templates and validation, export, search conditions,
tagging-rule vocabulary).

Built-in fields come from the model (DOMAIN.md table 1); admin-defined fields (字段配置) are added
by ``_custom_specs`` from the database, so a field an admin adds shows up in every consumer at
once. Custom values live in ``Customer.extra`` (a JSON object keyed by ``FieldSpec.key``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import g, has_app_context
from flask_babel import force_locale, get_locale, gettext


def N_(msgid: str) -> str:
    """Marks a msgid for extraction; translated when read."""
    return msgid

# Field types. Built-ins also use "integer", "datetime", "user", "department" (not offered to admins).
TYPES = ("text", "long_text", "number", "money", "date", "single_choice", "multi_choice", "phone", "email")
CATEGORIES = ("basic", "contact", "business", "interaction", "preference")


@dataclass(frozen=True)
class FieldSpec:
    key: str                       # model attribute, API name; custom: key inside Customer.extra
    type: str
    category: str
    label_msgid: str = ""          # built-ins: English msgid (translated by the catalogue)
    label_zh: str = ""             # custom fields: the admin's labels
    label_en: str = ""
    group: str = ""                # admin-defined second-level group
    required: bool = False
    dictionary: str | None = None  # DictionaryType.type_key holding the choices
    custom: bool = False
    in_list: bool = True
    searchable: bool = False
    importable: bool = True        # accepted as an import column
    writable: bool = True          # set by users (not computed by the system)
    synonyms: tuple[str, ...] = field(default_factory=tuple)  # extra import header spellings

    @property
    def label(self) -> str:
        """The label in the current user's language."""
        if not self.custom:
            return gettext(self.label_msgid)
        locale = str(get_locale() or "zh")
        return (self.label_en if locale.startswith("en") else self.label_zh) or self.label_zh or self.key

    def labels(self) -> tuple[str, str]:
        """(Chinese, English) labels, whatever the current language: import headers match either."""
        if self.custom:
            return self.label_zh, self.label_en or self.label_zh
        with force_locale("zh"):
            zh = gettext(self.label_msgid)
        with force_locale("en"):
            en = gettext(self.label_msgid)
        return zh, en


def _b(key, type_, category, msgid, **kw) -> FieldSpec:
    return FieldSpec(key=key, type=type_, category=category, label_msgid=msgid, **kw)


BUILTIN: tuple[FieldSpec, ...] = (
    _b("customer_no", "text", "basic", N_("Customer No."), writable=False, searchable=True, synonyms=("客户编号", "编号")),
    _b("name", "text", "basic", N_("Customer Name"), required=True, searchable=True, synonyms=("客户名称", "公司名称", "企业名称", "名称")),
    _b("kind", "single_choice", "basic", N_("Kind"), dictionary="customer_kind", synonyms=("客户性质",)),
    _b("credit_code", "text", "basic", N_("Credit Code / ID No."), searchable=True,
       synonyms=("统一社会信用代码", "信用代码", "身份证号")),
    _b("industry", "single_choice", "basic", N_("Industry"), dictionary="industry", synonyms=("所属行业", "行业")),
    _b("scale", "single_choice", "basic", N_("Scale"), dictionary="customer_scale", synonyms=("企业规模", "规模")),
    _b("staff_count", "integer", "basic", N_("Staff Count"), in_list=False, synonyms=("员工人数", "人数")),
    _b("annual_revenue", "money", "basic", N_("Annual Revenue"), in_list=False, synonyms=("年营业额", "营业额")),
    _b("region", "single_choice", "basic", N_("Region"), dictionary="region", synonyms=("所在地区", "地区", "区域")),
    _b("type", "single_choice", "business", N_("Customer Type"), dictionary="customer_type", synonyms=("客户类型",)),
    _b("level", "single_choice", "business", N_("Customer Level"), dictionary="customer_level", synonyms=("客户等级", "等级")),
    _b("source", "single_choice", "business", N_("Source"), dictionary="customer_source", synonyms=("客户来源", "来源")),
    _b("first_contact_date", "date", "business", N_("First Contact"), in_list=False, synonyms=("首次接触时间", "首次接触日期")),
    _b("cooperation_start", "date", "business", N_("Cooperation Since"), in_list=False, synonyms=("合作开始时间", "合作开始日期")),
    _b("last_contact_at", "datetime", "interaction", N_("Last Contact"), writable=False, importable=False,
       synonyms=("最近联系时间",)),
    _b("total_amount", "money", "business", N_("Cumulative Amount"), synonyms=("累计交易金额", "交易金额")),
    _b("main_business", "text", "business", N_("Main Business"), in_list=False, synonyms=("主营业务",)),
    _b("owner", "user", "business", N_("Owner"), synonyms=("负责人", "客户负责人", "销售负责人")),
    _b("department", "department", "business", N_("Department"), in_list=False, synonyms=("所属部门", "部门")),
    _b("remark", "long_text", "basic", N_("Remark"), in_list=False, synonyms=("备注",)),
)


# Type names as the admin picks them (字段配置).
TYPE_LABELS = {"text": N_("Text"), "long_text": N_("Long text"), "number": N_("Number"), "money": N_("Money"),
               "date": N_("Date"), "single_choice": N_("Single choice"), "multi_choice": N_("Multiple choice"),
               "phone": N_("Phone"), "email": N_("Email")}
CATEGORY_LABELS = {"basic": N_("Basic Info"), "contact": N_("Contact Info"), "business": N_("Business Info"),
                   "interaction": N_("Interaction Records"), "preference": N_("Preference Tags")}
CHOICE_TYPES = ("single_choice", "multi_choice")
MASK_KINDS = {"phone": "phone", "email": "email"}  # custom types masked like contact phones/e-mails
_CACHE = "_crm_custom_specs"


def _spec_of(row) -> FieldSpec:
    return FieldSpec(key=row.key, type=row.field_type, category=row.category, label_zh=row.label_zh,
                     label_en=row.label_en or "", group=row.group or "", required=bool(row.required),
                     dictionary=row.dictionary_type.key if row.dictionary_type is not None else None,
                     custom=True, in_list=bool(row.in_list), searchable=bool(row.searchable),
                     writable=not row.retired)


def _custom_specs(include_retired: bool = False) -> list[FieldSpec]:
    """Admin-defined fields from the database (字段配置), in their admin-set order. Read once per
    app context (one request, one job) and again after any change to a field definition, so a
    field an admin adds is seen by the next request of every process without a restart."""
    from app.extensions import db
    from app.models import CustomField

    cache = g.setdefault(_CACHE, {}) if has_app_context() else {}
    if "all" not in cache:
        with db.session.no_autoflush:
            rows = db.session.query(CustomField).order_by(CustomField.position, CustomField.id).all()
            cache["all"] = [(_spec_of(r), bool(r.retired)) for r in rows]
    return [spec for spec, retired in cache["all"] if include_retired or not retired]


def forget_custom_specs() -> None:
    """Called when a field definition is written: this app context reads them again."""
    if has_app_context():
        g.pop(_CACHE, None)


def custom_fields(include_retired: bool = False) -> list[FieldSpec]:
    return _custom_specs(include_retired)


def custom_field(key: str, include_retired: bool = False) -> FieldSpec | None:
    return next((s for s in _custom_specs(include_retired) if s.key == key), None)


def customer_fields(include_custom: bool = True, include_retired: bool = False) -> list[FieldSpec]:
    """Every customer field, built-ins first, then admin-defined ones (retired ones hidden)."""
    specs = list(BUILTIN)
    if include_custom:
        specs += _custom_specs(include_retired)
    return specs


def field_by_key(key: str) -> FieldSpec | None:
    return next((s for s in customer_fields() if s.key == key), None)


# -- admin-defined values in SQL (SQLite json_extract / PostgreSQL ->>) ----------------------------

NUMERIC_TYPES = ("number", "money")


def extra_text(key: str):
    """SQL: the stored value of an admin-defined field as text (NULL when empty)."""
    from app.models import Customer

    return Customer.extra[key].as_string()


def extra_compare(spec: FieldSpec):
    """SQL: the value as compared and sorted: numbers and money as NUMERIC (so 9 < 10), dates as
    their ISO text (chronological), anything else as text."""
    from sqlalchemy import Numeric, cast

    return cast(extra_text(spec.key), Numeric(20, 4)) if spec.type in NUMERIC_TYPES else extra_text(spec.key)


def sortable(spec: FieldSpec) -> bool:
    return spec.custom and spec.type != "multi_choice"


def sort_expression(spec: FieldSpec):
    """SQL the list and API sort an admin-defined field by: extra_compare, and a single choice by
    its item's Chinese name rather than its code."""
    if spec.type == "single_choice":
        from sqlalchemy import select
        from app.models import DictionaryItem

        return (select(DictionaryItem.name).where(DictionaryItem.type_key == (spec.dictionary or ""),
                                                  DictionaryItem.code == extra_text(spec.key))
                .limit(1).scalar_subquery())
    return extra_compare(spec)


def read_value(customer, spec: FieldSpec):
    """The stored value of one field (custom values from ``Customer.extra``)."""
    if spec.custom:
        return (getattr(customer, "extra", None) or {}).get(spec.key)
    return getattr(customer, spec.key, None)


# -- values of admin-defined fields -----------------------------------------------------------
# Stored in Customer.extra as JSON: text, long text, phone, e-mail as strings; number as a
# decimal string ("12.5"); money as a string with exactly two decimals ("1234.50", never a float);
# date as an ISO string ("2024-03-01"); single choice as the dictionary item's code; multiple
# choice as a list of item codes. Empty values are not stored (the key is absent).

class FieldValueError(ValueError):
    """A value refused for a field; str() is the message for the user (current language)."""


MAX_TEXT = {"text": 200, "long_text": 4000, "phone": 40, "email": 200}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s()\-]+$")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_SPLIT = re.compile(r"[,，;；、|\n]")


def choices(spec: FieldSpec) -> list[tuple[str, str]]:
    """(code, label in the current language) of the active items of the field's dictionary."""
    from app.extensions import db
    from app.models import DictionaryItem

    if not spec.dictionary:
        return []
    items = (db.session.query(DictionaryItem)
             .filter(DictionaryItem.type_key == spec.dictionary, DictionaryItem.active.is_(True))
             .order_by(DictionaryItem.sort, DictionaryItem.id))
    return [(i.code, str(i)) for i in items]


def _items(spec: FieldSpec, active_only: bool = True) -> list:
    from app.extensions import db
    from app.models import DictionaryItem

    query = db.session.query(DictionaryItem).filter(DictionaryItem.type_key == (spec.dictionary or ""))
    return query.filter(DictionaryItem.active.is_(True)).all() if active_only else query.all()


def _choice_code(spec: FieldSpec, raw: str) -> str:
    raw = raw.strip()
    for item in _items(spec):
        if raw in (item.code, item.name, item.name_en):
            return item.code
    raise FieldValueError(gettext('"%(value)s" is not one of the choices.', value=raw))


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise InvalidOperation
    value = Decimal(str(raw).strip().replace(",", "").replace("，", "").lstrip("¥￥"))
    if not value.is_finite() or abs(value) >= Decimal("1e14"):
        raise InvalidOperation
    return value


def _is_empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or (isinstance(raw, (list, tuple)) and not raw)


def clean_value(spec: FieldSpec, raw: Any):
    """The value to store for ``raw`` (a form field's data, an API value or an import cell), or
    None for empty. Raises FieldValueError with a message saying what is wrong."""
    if _is_empty(raw):
        if spec.required:
            raise FieldValueError(gettext("This field is required."))
        return None
    kind = spec.type
    if kind in ("number", "money", "integer"):
        try:
            value = _decimal(raw)
        except (InvalidOperation, ValueError):
            raise FieldValueError(gettext('"%(value)s" is not a number.', value=raw)) from None
        if kind == "money":
            if value.as_tuple().exponent < -2 and value != value.quantize(Decimal("0.01")):
                raise FieldValueError(gettext("An amount has at most 2 decimal places."))
            return str(value.quantize(Decimal("0.01")))
        if kind == "integer" and value != value.to_integral_value():
            raise FieldValueError(gettext("Enter a whole number."))
        return format(value.normalize(), "f")
    if kind == "date":
        if isinstance(raw, datetime):
            return raw.date().isoformat()
        if isinstance(raw, date):
            return raw.isoformat()
        match = _DATE.match(str(raw).strip())
        try:
            return date(*(int(p) for p in match.groups())).isoformat() if match else _bad_date(raw)
        except ValueError:
            return _bad_date(raw)
    if kind == "multi_choice":
        parts = raw if isinstance(raw, (list, tuple)) else _SPLIT.split(str(raw))
        codes = []
        for part in (str(p) for p in parts if not _is_empty(p)):
            code = _choice_code(spec, part)
            if code not in codes:
                codes.append(code)
        if not codes and spec.required:
            raise FieldValueError(gettext("This field is required."))
        return codes or None
    if isinstance(raw, (list, tuple, dict)):
        raise FieldValueError(gettext("Enter a single value."))
    text = str(raw).strip()
    if kind == "single_choice":
        return _choice_code(spec, text)
    if len(text) > MAX_TEXT.get(kind, 200):
        raise FieldValueError(gettext("At most %(n)d characters.", n=MAX_TEXT.get(kind, 200)))
    if kind == "phone" and (not _PHONE.match(text) or not 7 <= sum(c.isdigit() for c in text) <= 20):
        raise FieldValueError(gettext('"%(value)s" is not a phone number.', value=text))
    if kind == "email" and not _EMAIL.match(text):
        raise FieldValueError(gettext('"%(value)s" is not an e-mail address.', value=text))
    return text


def _bad_date(raw: Any):
    raise FieldValueError(gettext('"%(value)s" is not a date (YYYY-MM-DD).', value=raw))


def display_text(spec: FieldSpec | None, value: Any, language: str | None = None) -> str:
    """A stored custom value as people read it: choice codes as item names (current language,
    or Chinese with language="zh"), money with thousands separators."""
    if value is None or value == "" or value == []:
        return ""
    if spec is None:
        return "、".join(map(str, value)) if isinstance(value, list) else str(value)
    if spec.type in CHOICE_TYPES:
        names = {i.code: (i.name if language == "zh" else str(i)) for i in _items(spec, active_only=False)}
        codes = value if isinstance(value, list) else [value]
        return "、".join(names.get(str(c), str(c)) for c in codes)
    if spec.type == "money":
        try:
            return f"{Decimal(str(value)):,.2f}"
        except InvalidOperation:
            return str(value)
    return str(value)


def set_custom_values(customer, values: dict[str, Any]) -> None:
    """Write cleaned values into ``customer.extra`` (a new dict, so the change is saved); None
    removes a key. Keys not given, and values of retired fields, stay as they are."""
    extra = dict(getattr(customer, "extra", None) or {})
    for key, value in values.items():
        if value is None:
            extra.pop(key, None)
        else:
            extra[key] = value
    customer.extra = extra or None
