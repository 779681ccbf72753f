"""Tagging rules (自动打标规则, admins) with their conditions, preview and "apply now"; and the
monthly tag audit (每月标签核查, supervisors). Views declare; app/services/tag_rules.py and
tag_audit.py decide and commit."""
from __future__ import annotations

from datetime import datetime

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import gettext, lazy_gettext as _l
from wtforms import IntegerField, StringField
from wtforms.validators import Optional, ValidationError

from app.extensions import db
from app.models import Tag, TagDimension
from app.models.tag import TaggingRule, TaggingRuleCondition
from app.services import tag_audit, tag_rules
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime
from app.views.numbering import _LazySelect

LABELS = {
    "name": _l("Name"), "tag": _l("Tag"), "active": _l("Active"), "remove_unmet": _l("Remove when unmet"),
    "description": _l("Description"), "last_run_at": _l("Last run"), "last_result": _l("Last result"),
    "conditions": _l("Conditions"), "rule": _l("Tagging Rule"), "field": _l("Field"),
    "operator": _l("Operator"), "value": _l("Value"), "window_days": _l("Window (days)"), "key": _l("Key"),
}
DESCRIPTIONS = {
    "active": _l("Switch on after the preview (list action) shows what the rule would do; the "
                 "periodic job tagging_rules then applies it."),
    "remove_unmet": _l("Take the tag off again, when the rule set it and the conditions stop holding."),
    "field": _l("A customer field, or the number of interactions in the last N days."),
    "value": _l("Numbers, text, or dictionary codes/names separated by commas (is one of)."),
    "window_days": _l("Only for interaction counts: the last N days."),
}


class _ConditionCheck:
    """The shared condition check (app.services.tag_rules.condition_problems) on one form field."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, form, field) -> None:
        problems = tag_rules.condition_problems(form.field.data, form.operator.data, form.value.data,
                                                form.window_days.data)
        if problems.get(self.name):
            raise ValidationError(" ".join(problems[self.name]))


def _condition_fields() -> dict:
    return {
        "field": _LazySelect(LABELS["field"], tag_rules.field_choices, validators=[_ConditionCheck("field")],
                             description=DESCRIPTIONS["field"]),
        "operator": _LazySelect(LABELS["operator"], tag_rules.operator_choices,
                                validators=[_ConditionCheck("operator")]),
        "value": StringField(LABELS["value"], validators=[Optional(), _ConditionCheck("value")],
                             description=DESCRIPTIONS["value"]),
        "window_days": IntegerField(LABELS["window_days"], validators=[Optional(), _ConditionCheck("window_days")],
                                    description=DESCRIPTIONS["window_days"]),
    }


def _touch(rule: TaggingRule | None) -> None:
    """An edited rule is new evidence: tags an audit removed may come back under it."""
    if rule is not None:
        rule.updated_at = datetime.now()


class TaggingRuleConditionModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(TaggingRuleCondition)
    list_title = show_title = _l("Conditions")
    add_title, edit_title = _l("Add Condition"), _l("Edit Condition")
    list_columns = ["field", "window_days", "operator", "value"]
    add_columns = edit_columns = show_columns = ["rule", "field", "window_days", "operator", "value"]
    label_columns = LABELS
    description_columns = DESCRIPTIONS
    add_form_extra_fields = _condition_fields()
    edit_form_extra_fields = _condition_fields()

    def pre_add(self, item: TaggingRuleCondition) -> None:
        _touch(item.rule)

    def pre_update(self, item: TaggingRuleCondition) -> None:
        _touch(item.rule)

    def pre_delete(self, item: TaggingRuleCondition) -> None:
        rule = item.rule
        if rule is not None and rule.active and len(rule.conditions) <= 1:
            raise ValueError(gettext("Switch the rule off before removing its last condition."))
        _touch(rule)


class TaggingRuleModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(TaggingRule)
    list_title = show_title = _l("Tagging Rules")
    add_title, edit_title = _l("Add Tagging Rule"), _l("Edit Tagging Rule")
    list_columns = ["name", "tag", "conditions", "active", "last_run_at", "last_result"]
    add_columns = edit_columns = ["name", "tag", "remove_unmet", "active", "description"]
    show_columns = ["name", "tag", "conditions", "remove_unmet", "active", "description", "last_run_at",
                    "last_result"]
    search_columns = ["name", "tag", "active"]
    label_columns = LABELS
    description_columns = DESCRIPTIONS
    related_views = [TaggingRuleConditionModelView]
    add_form_query_rel_fields = edit_form_query_rel_fields = {"tag": [["active", FilterEqual, True]]}
    formatters_columns = {"last_run_at": fmt_datetime,
                          "conditions": tag_rules.describe_conditions}

    def pre_add(self, item: TaggingRule) -> None:
        if item.active:
            raise ValueError(gettext("Active: add the conditions and look at the preview first, then switch the rule on."))
        item.updated_at = datetime.now()

    def pre_update(self, item: TaggingRule) -> None:
        problems = tag_rules.rule_problems(item) if item.active else []
        if problems:
            db.session.rollback()
            raise ValueError(gettext("The rule cannot be switched on: %(problems)s",
                                     problems="; ".join(problems)))
        item.updated_at = datetime.now()

    def _one(self, items):
        return items[0] if isinstance(items, list) else items

    @action("preview", _l("Preview"), None, "fa-eye", multiple=False)
    def preview(self, items):
        rule = self._one(items)
        try:
            p = tag_rules.preview(rule)
            flash(gettext("%(rule)s: %(matched)s customers match; %(add)s would be tagged now, %(remove)s "
                          "untagged.", rule=rule.name, **p), "info")
        except tag_rules.RuleError as exc:
            flash(gettext("The rule cannot be applied: %(problems)s", problems="; ".join(exc.problems)), "danger")
        return redirect(request.referrer or url_for(".list"))

    @action("apply", _l("Apply now"), _l("Apply this rule to every customer now?"), "fa-play", multiple=False)
    def apply(self, items):
        rule = self._one(items)
        try:
            r = tag_rules.apply_rule(rule.id)
            flash(gettext("%(rule)s: %(added)s customers tagged, %(removed)s untagged.", rule=rule.name, **r),
                  "success")
        except tag_rules.RuleError as exc:
            flash(gettext("The rule cannot be applied: %(problems)s", problems="; ".join(exc.problems)), "danger")
        return redirect(request.referrer or url_for(".list"))


def _tags():
    return (db.session.query(Tag).join(TagDimension).filter(Tag.active.is_(True), TagDimension.active.is_(True))
            .order_by(TagDimension.sort, TagDimension.id, Tag.sort, Tag.id).all())


class TagAuditView(BaseView):
    """每月标签核查: rounds of the user's department (admins: all), a round's table with bulk decisions."""
    route_base = "/tagaudit"
    default_view = "index"
    base_permissions = ["can_list", "can_audit"]
    method_permission_name = {"index": "list", "round": "list", "open": "audit", "decide": "audit", "close": "audit"}

    @expose("/")
    @has_access
    def index(self):
        self.update_redirect()
        rounds = tag_audit.rounds_for(g.user).all()
        return self.render_template(
            "crm/tag_audit.html", title=_l("Monthly Tag Audit"), rounds=rounds,
            progress={r.id: tag_audit.progress(r) for r in rounds},
            summaries={r.id: tag_audit.summary_of(r) for r in rounds},
            departments=tag_audit.departments_for(g.user), month=datetime.now().strftime("%Y-%m"))

    @expose("/open", methods=["POST"])
    @has_access
    def open(self):
        try:
            rnd = tag_audit.open_round(request.form.get("department_id", type=int), request.form.get("month", ""), g.user)
        except tag_audit.AuditError as exc:
            flash(str(exc), "danger")
            return redirect(url_for("TagAuditView.index"))
        return redirect(url_for("TagAuditView.round", round_id=rnd.id))

    def _round(self, round_id: int):
        rnd = tag_audit.get_round(round_id, g.user)
        if rnd is None:
            abort(404)
        return rnd

    @expose("/round/<int:round_id>")
    @has_access
    def round(self, round_id: int):
        self.update_redirect()
        rnd = self._round(round_id)
        page, only = request.args.get("page", 0, type=int), request.args.get("only", "")
        rows, count = tag_audit.items_page(rnd, max(page, 0), only)
        return self.render_template(
            "crm/tag_audit_round.html", title=_l("Monthly Tag Audit"), rnd=rnd, rows=rows, count=count,
            page=page, only=only, page_size=tag_audit.PAGE_SIZE, progress=tag_audit.progress(rnd),
            unused=tag_audit.unused_tags(rnd), summary=tag_audit.summary_of(rnd), tags=_tags(),
            fmt=fmt_datetime)

    @expose("/round/<int:round_id>/decide", methods=["POST"])
    @has_access
    def decide(self, round_id: int):
        rnd = self._round(round_id)
        ids = [int(i) for i in request.form.getlist("item") if i.isdigit()]
        try:
            n = tag_audit.decide(rnd, ids, request.form.get("decision", ""), g.user,
                                 request.form.get("new_tag_id", type=int))
            flash(gettext("%(n)s rows checked.", n=n), "success")
        except tag_audit.AuditError as exc:
            flash(str(exc), "danger")
        return redirect(url_for("TagAuditView.round", round_id=rnd.id, page=request.form.get("page", 0),
                                only=request.form.get("only", "")))

    @expose("/round/<int:round_id>/close", methods=["POST"])
    @has_access
    def close(self, round_id: int):
        rnd = self._round(round_id)
        try:
            tag_audit.close_round(rnd, g.user)
            flash(gettext("The round is closed; its summary is kept below."), "success")
        except tag_audit.AuditError as exc:
            flash(str(exc), "danger")
        return redirect(url_for("TagAuditView.round", round_id=rnd.id))
