"""Numbering rules (编号规则), maintained by admins: list/add/edit/show with a preview of the
next number. Validation is app.services.numbering.rule_problems, shown next to each field."""
from __future__ import annotations

from flask_appbuilder import ModelView
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import Optional, ValidationError

from app.models import NumberingRule
from app.services import numbering as svc

LABELS = {
    "key": _l("Key"), "target": _l("Applies to"), "name": _l("Name"), "name_en": _l("English name"),
    "prefix": _l("Prefix"), "date_part": _l("Date part"), "separator": _l("Separator"),
    "field_segment": _l("Field segment"), "width": _l("Sequence width"),
    "reset_period": _l("Reset period"), "active": _l("Active"), "preview": _l("Next number (preview)"),
}
DESCRIPTIONS = {
    "key": _l("Used by the program (e.g. customer); cannot change later."),
    "field_segment": _l("A value taken from the record, e.g. the industry code (2024-I-001) or the parent's number."),
    "width": _l("Digits of the sequence, 1 to 12 (3 gives 001)."),
    "reset_period": _l("When the sequence starts again at 1."),
    "active": _l("An inactive rule falls back to the built-in pattern."),
}
_FORM_FIELDS = ("key", "target", "prefix", "date_part", "separator", "field_segment", "width", "reset_period")


class _RuleCheck:
    """Runs the shared rule validation on the whole form and reports this field's problem."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, form, field) -> None:
        values = {n: getattr(form, n).data for n in _FORM_FIELDS if hasattr(form, n)}
        values.setdefault("target", None)
        problem = svc.rule_problems(values).get(self.name)
        if problem:
            raise ValidationError(svc.problem_text(*problem))


def _choices(pairs) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in pairs]


class _LazySelect(SelectField):
    """A select whose choices are computed per request (labels follow the user's language) and
    which lets unknown values through to _RuleCheck, for a clear message."""

    def __init__(self, label, make_choices, **kw):
        super().__init__(label, validate_choice=False, widget=Select2Widget(), **kw)
        self._make_choices = make_choices

    def iter_choices(self):
        self.choices = self._make_choices()
        return super().iter_choices()


def _segment_choices():
    out = [("", str(_l("(none)")))]
    for t in svc.TARGETS.values():
        out += [(name, f"{t.label}: {seg.label} ({name})") for name, seg in t.segments.items()]
    seen, uniq = set(), []
    for k, v in out:  # "parent" is offered by several targets: one entry each
        if (k, v) not in seen:
            seen.add((k, v))
            uniq.append((k, v))
    return uniq


def _fields() -> dict:
    return {
        # an empty prefix is fine (2024-I-001): FAB would make the NOT NULL column required
        "prefix": StringField(LABELS["prefix"], validators=[Optional(), _RuleCheck("prefix")],
                              widget=BS3TextFieldWidget(), default=""),
        "target": _LazySelect(LABELS["target"], lambda: _choices((k, t.label) for k, t in svc.TARGETS.items()),
                              validators=[_RuleCheck("target")]),
        "date_part": _LazySelect(LABELS["date_part"], lambda: _choices(svc.DATE_PART_LABELS.items()),
                                 validators=[_RuleCheck("date_part")], default="yyyymmdd"),
        "separator": _LazySelect(LABELS["separator"], lambda: [("", str(_l("(none)")))] + [(s, s) for s in svc.SEPARATORS if s],
                                 validators=[_RuleCheck("separator")], default=""),
        "field_segment": _LazySelect(LABELS["field_segment"], _segment_choices,
                                     validators=[_RuleCheck("field_segment")], default="",
                                     description=DESCRIPTIONS["field_segment"]),
        "reset_period": _LazySelect(LABELS["reset_period"], lambda: _choices(svc.RESET_LABELS.items()),
                                    validators=[_RuleCheck("reset_period")], default="daily",
                                    description=DESCRIPTIONS["reset_period"]),
    }


class NumberingRuleModelView(ModelView):
    datamodel = SQLAInterface(NumberingRule)
    list_title = show_title = _l("Numbering Rules")
    add_title = _l("Add Numbering Rule")
    edit_title = _l("Edit Numbering Rule")
    list_columns = ["name", "key", "target", "preview", "reset_period", "active"]
    show_columns = ["key", "target", "name", "name_en", "prefix", "date_part", "separator", "field_segment",
                    "width", "reset_period", "active", "preview"]
    add_columns = ["key", "target", "name", "name_en", "prefix", "date_part", "separator", "field_segment",
                   "width", "reset_period", "active"]
    edit_columns = [c for c in add_columns if c != "key"]  # code and counters refer to the key
    search_columns = ["key", "name", "target", "active"]
    order_columns = ["key", "name"]
    label_columns = LABELS
    description_columns = DESCRIPTIONS
    validators_columns = {n: [_RuleCheck(n)] for n in ("key", "width")}
    add_form_extra_fields = _fields()
    edit_form_extra_fields = _fields()
    formatters_columns = {
        "reset_period": lambda v: str(svc.RESET_LABELS.get(v, v)),
        "target": lambda v: str(svc.TARGETS[v].label) if v in svc.TARGETS else v,
    }

    def pre_add(self, item: NumberingRule) -> None:
        item.prefix = item.prefix or ""
        item.separator = item.separator or ""
        item.field_segment = item.field_segment or ""
        item.date_part = item.date_part or ""

    pre_update = pre_add
