"""The customer field catalogue: one list of what a customer file holds, read by everything that
works column by column (import mapping, templates and validation, export, search conditions,
tagging-rule vocabulary).

Built-in fields come from the model (DOMAIN.md table 1); admin-defined fields (字段配置) are added
by ``_custom_specs`` from the database, so a field an admin adds shows up in every consumer at
once. Custom values live in ``Customer.extra`` (a JSON object keyed by ``FieldSpec.key``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
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


def _custom_specs(include_retired: bool = False) -> list[FieldSpec]:
    """Admin-defined fields from the database (字段配置), in their admin-set order."""
    return []


def customer_fields(include_custom: bool = True, include_retired: bool = False) -> list[FieldSpec]:
    """Every customer field, built-ins first, then admin-defined ones (retired ones hidden)."""
    specs = list(BUILTIN)
    if include_custom:
        specs += _custom_specs(include_retired)
    return specs


def field_by_key(key: str) -> FieldSpec | None:
    return next((s for s in customer_fields() if s.key == key), None)


def read_value(customer, spec: FieldSpec):
    """The stored value of one field (custom values from ``Customer.extra``)."""
    if spec.custom:
        return (getattr(customer, "extra", None) or {}).get(spec.key)
    return getattr(customer, spec.key, None)
