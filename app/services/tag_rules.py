"""Tagging rules (自动打标规则): check a rule against the whitelisted vocabulary, say it in words,
preview how many customers it would tag, and apply it set-wise in SQL.

A rule is data: a target tag and conditions, all of which must hold. A condition names a field
of the customer catalogue (app/services/fields.py, custom fields included) or ``interactions``
(how many interaction records a customer has in the last ``window_days`` days), an operator
from ``OPERATORS`` allowed for that field's type, and a value. Applying a rule is one
transaction of a few INSERT ... SELECT / DELETE statements (never a loop over customers): the
changes are written to crm_tag_change first, under a batch id, and the links are added or removed
from that batch, so every change is recorded with its rule. Customers whose tag a supervisor
removed in an audit are left alone until their evidence changes (see ``_suppressed``).
"""
from __future__ import annotations

import operator as op_
import uuid
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import (
    DateTime, Integer, String, and_, cast, exists, func, insert, literal, literal_column, not_, or_, select,
)

from app.extensions import db
from app.models import Customer, CustomerTag, Department, DictionaryItem, DictionaryType, Interaction
from app.models.tag import SOURCE_RULE, TagChange, TaggingRule, TagSuppression
from app.services.fields import N_, FieldSpec, customer_fields

ACTIVITY = "interactions"
MAX_WINDOW_DAYS = 3650
COMPARE = {"=": op_.eq, "!=": op_.ne, ">": op_.gt, ">=": op_.ge, "<": op_.lt, "<=": op_.le}
OPERATORS = {
    "=": N_("equals"), "!=": N_("differs from"), ">": N_("greater than"), ">=": N_("at least"),
    "<": N_("less than"), "<=": N_("at most"), "in": N_("is one of"), "not_in": N_("is none of"),
    "contains": N_("contains"), "empty": N_("is empty"), "not_empty": N_("is not empty"),
    "older_than_days": N_("more than N days ago"), "within_days": N_("within the last N days"),
}
NO_VALUE = {"empty", "not_empty"}
_NUMERIC = ("=", "!=", ">", ">=", "<", "<=", "empty", "not_empty")
OPS_BY_TYPE = {
    "number": _NUMERIC, "money": _NUMERIC, "integer": _NUMERIC,
    "text": ("=", "!=", "contains", "empty", "not_empty"),
    "long_text": ("contains", "empty", "not_empty"),
    "phone": ("=", "contains", "empty", "not_empty"), "email": ("=", "contains", "empty", "not_empty"),
    "single_choice": ("in", "not_in", "empty", "not_empty"),
    "multi_choice": ("contains", "empty", "not_empty"),
    "user": ("in", "not_in", "empty", "not_empty"), "department": ("in", "not_in", "empty", "not_empty"),
    "date": ("older_than_days", "within_days", "empty", "not_empty"),
    "datetime": ("older_than_days", "within_days", "empty", "not_empty"),
    ACTIVITY: ("=", "!=", ">", ">=", "<", "<="),
}


class RuleError(ValueError):
    """A rule that cannot be applied; ``problems`` maps a condition's place to its messages."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _spec(key: str) -> FieldSpec | None:
    return next((s for s in customer_fields() if s.key == key), None)


def field_choices() -> list[tuple[str, str]]:
    """(key, label) of everything a condition may name: the catalogue, then the activity count."""
    return [(s.key, s.label) for s in customer_fields() if s.type in OPS_BY_TYPE] + \
        [(ACTIVITY, gettext("Interactions in the window"))]


def operator_choices() -> list[tuple[str, str]]:
    return [(k, f"{k} ({gettext(v)})") for k, v in OPERATORS.items()]


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in str(value or "").replace("，", ",").split(",") if v.strip()]


def _ids(spec: FieldSpec, names: list[str]) -> tuple[list[int], list[str]]:
    """Ids of the dictionary items / users / departments named (by code, key or name); unknown names."""
    from app.extensions import appbuilder

    found: dict[str, int] = {}
    if spec.type == "single_choice":
        rows = (db.session.query(DictionaryItem).join(DictionaryType)
                .filter(DictionaryType.key == spec.dictionary).all())
        for r in rows:
            for n in (r.code, r.name, r.name_en):
                if n:
                    found[n] = r.id
    elif spec.type == "user":
        user = appbuilder.sm.user_model
        found = {u: i for u, i in db.session.query(user.username, user.id).filter(user.username.in_(names))}
    elif spec.type == "department":
        for d in db.session.query(Department):
            found.update({d.key: d.id, d.name: d.id})
    return [found[n] for n in names if n in found], [n for n in names if n not in found]


def condition_problems(field: str | None, operator: str | None, value, window_days) -> dict[str, list[str]]:
    """Every reason a condition is refused, by form field ({} when it is fine)."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    field = (field or "").strip()
    spec = None if field == ACTIVITY else _spec(field)
    kind = ACTIVITY if field == ACTIVITY else getattr(spec, "type", None)
    if kind is None or kind not in OPS_BY_TYPE:
        add("field", gettext("Unknown or retired field \"%(field)s\": choose one from the list.", field=field))
        return problems
    allowed = OPS_BY_TYPE[kind]
    if operator not in allowed:
        add("operator", gettext("Operator \"%(op)s\" is not allowed for this field; use one of: %(ops)s.",
                                op=operator or "", ops=", ".join(allowed)))
        return problems
    text = "" if value is None else str(value).strip()
    if kind == ACTIVITY:
        if not isinstance(window_days, int) or not 1 <= window_days <= MAX_WINDOW_DAYS:
            add("window_days", gettext("The window is a number of days from 1 to %(max)s.", max=MAX_WINDOW_DAYS))
        if not text.isdigit():
            add("value", gettext("The number of interactions is a whole number, 0 or more."))
        return problems
    if window_days not in (None, ""):
        add("window_days", gettext("A window only applies to interaction counts; leave it empty."))
    if operator in NO_VALUE:
        return problems
    if not text:
        add("value", gettext("This operator needs a value."))
    elif operator in ("older_than_days", "within_days") and not (text.isdigit() and 0 < int(text) <= 36500):
        add("value", gettext("Give a number of days (1 to 36500)."))
    elif kind in ("number", "money", "integer"):
        try:
            float(text)
        except ValueError:
            add("value", gettext("\"%(value)s\" is not a number.", value=text))
    elif kind in ("single_choice", "user", "department") and not spec.custom:
        _, unknown = _ids(spec, _list(text))
        if unknown:
            add("value", gettext("Unknown values: %(values)s.", values="、".join(unknown)))
    return problems


def rule_problems(rule: TaggingRule) -> list[str]:
    """Every problem of a rule, each naming its condition (1-based) and what is wrong."""
    out = []
    if rule.tag is None and rule.tag_id is None:
        out.append(gettext("The rule has no tag."))
    if not rule.conditions:
        out.append(gettext("The rule has no condition."))
    for n, c in enumerate(rule.conditions, start=1):
        for messages in condition_problems(c.field, c.operator, c.value, c.window_days).values():
            out.extend(gettext("Condition %(n)s: %(message)s", n=n, message=m) for m in messages)
    return out


# -- compile to SQL --------------------------------------------------------------------------------

def _column(spec: FieldSpec, numeric: bool = False):
    if spec.custom:
        element = Customer.extra[spec.key]
        return element.as_float() if numeric else element.as_string()
    if spec.type in ("single_choice", "user", "department"):
        return getattr(Customer, f"{spec.key}_id")
    return getattr(Customer, spec.key)


def _activity_clause(operator: str, value: int, window_days: int, now: datetime):
    """Customers whose count of interactions since now - window compares to value. Counting
    happens in one GROUP BY; customers with none never appear there, so when 0 satisfies the
    comparison the clause keeps everyone *not* among those failing it."""
    # "customer_id + 0": otherwise SQLite walks the whole customer_id index to skip a sort,
    # instead of the window's range of ix_crm_interaction_occurred_customer (10x slower at 10M rows)
    customer = Interaction.customer_id + literal_column("0")
    counts = (select(customer)
              .where(Interaction.occurred_at >= now - timedelta(days=window_days))
              .group_by(customer))
    test = COMPARE[operator](func.count(Interaction.id), value)
    if COMPARE[operator](0, value):
        return Customer.id.not_in(counts.having(not_(test)))
    return Customer.id.in_(counts.having(test))


def condition_clause(field: str, operator: str, value, window_days, now: datetime):
    """The SQL condition on Customer for one (validated) condition."""
    text = "" if value is None else str(value).strip()
    if field == ACTIVITY:
        return _activity_clause(operator, int(text), int(window_days), now)
    spec = _spec(field)
    numeric = spec.type in ("number", "money", "integer")
    col = _column(spec, numeric)
    if operator == "empty":
        return or_(col.is_(None), col == "") if spec.type in ("text", "long_text", "phone", "email") else col.is_(None)
    if operator == "not_empty":
        return and_(col.is_not(None), col != "") if spec.type in ("text", "long_text", "phone", "email") else col.is_not(None)
    if operator in ("older_than_days", "within_days"):
        since = now - timedelta(days=int(text))
        if spec.type == "date":
            since = since.date()
        if spec.custom:
            since = since.isoformat()  # custom dates are ISO text inside Customer.extra
        return col < since if operator == "older_than_days" else col >= since
    if operator == "contains":
        if spec.type == "multi_choice":
            return _column(spec).contains(f'"{text}"')
        return col.contains(text, autoescape=True)
    if operator in ("in", "not_in"):
        names = _list(text)
        values = names if spec.custom else _ids(spec, names)[0]
        return col.in_(values) if operator == "in" else or_(col.is_(None), col.not_in(values))
    operand = float(text) if numeric else text
    clause = COMPARE[operator](col, operand)
    return or_(col.is_(None), clause) if operator == "!=" else clause


def _suppressed(rule: TaggingRule):
    """A supervisor removed this tag from the customer in an audit, and nothing has changed since:
    the file was not edited, no interaction was recorded, and the rule itself was not edited."""
    s = TagSuppression
    return exists().where(
        s.customer_id == Customer.id, s.tag_id == rule.tag_id,
        s.removed_at >= rule.updated_at,
        Customer.changed_on <= s.removed_at,
        ~exists().where(Interaction.customer_id == s.customer_id, Interaction.created_on > s.removed_at))


def rule_clause(rule: TaggingRule, now: datetime | None = None):
    """The customers a rule tags: not archived, every condition holds, not held back by an audit."""
    problems = rule_problems(rule)
    if problems:
        raise RuleError(problems)
    now = now or datetime.now()
    return and_(Customer.archived.is_(False),
                *(condition_clause(c.field, c.operator, c.value, c.window_days, now) for c in rule.conditions),
                ~_suppressed(rule))


def describe(rule: TaggingRule) -> str:
    """What the rule says, in the user's language: 时间窗口内的互动次数（近 90 天） 至少 5 ⇒ 活跃度-活跃."""
    tag = rule.tag.label if rule.tag is not None else "?"
    return f"{describe_conditions(rule.conditions)} ⇒ {tag}"


def describe_conditions(conditions) -> str:
    labels = dict(field_choices())
    parts = []
    for c in conditions or []:
        name = labels.get(c.field, c.field)
        if c.field == ACTIVITY and c.window_days:
            name = gettext("%(name)s (last %(days)s days)", name=name, days=c.window_days)
        words = gettext(OPERATORS.get(c.operator, c.operator))
        parts.append(f"{name} {words} {c.value or ''}".strip())
    return gettext(" and ").join(parts)


# -- preview and apply ---------------------------------------------------------------------------

def _rule_links(rule: TaggingRule):
    return and_(CustomerTag.tag_id == rule.tag_id, CustomerTag.source == SOURCE_RULE,
                CustomerTag.rule_id == rule.id)


def preview(rule: TaggingRule, now: datetime | None = None) -> dict[str, int]:
    """How many customers the rule matches, how many it would tag now and how many it would untag."""
    clause = rule_clause(rule, now)
    has_tag = exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == rule.tag_id)
    matched = db.session.scalar(select(func.count()).select_from(Customer).where(clause))
    to_add = db.session.scalar(select(func.count()).select_from(Customer).where(clause, ~has_tag))
    to_remove = 0
    if rule.remove_unmet and rule.id is not None:
        to_remove = db.session.scalar(select(func.count()).select_from(CustomerTag).where(
            _rule_links(rule), CustomerTag.customer_id.not_in(select(Customer.id).where(clause))))
    return {"matched": matched, "add": to_add, "remove": to_remove}


def _lit(value, type_):
    """A constant in INSERT ... SELECT. Integers get a CAST (PostgreSQL reads an untyped NULL as
    text); datetimes must not (SQLite's CAST AS DATETIME keeps only the year)."""
    return cast(literal(value, type_), type_) if type_ is Integer else literal(value, type_)


def statements(rule: TaggingRule, user_id: int | None, now: datetime, batch: str) -> list:
    """The statements one application of the rule runs, in order (also timed bare by bench/)."""
    clause = rule_clause(rule, now)
    change_cols = ["batch", "customer_id", "tag_id", "action", "source", "rule_id", "user_id", "changed_at"]

    def change_row(customer_id, action: str):
        return [_lit(batch, String), customer_id, _lit(rule.tag_id, Integer), _lit(action, String),
                _lit(SOURCE_RULE, String), _lit(rule.id, Integer), _lit(user_id, Integer), _lit(now, DateTime)]

    in_batch = lambda action: and_(TagChange.batch == batch, TagChange.action == action)  # noqa: E731
    out = []
    if rule.remove_unmet:
        out.append(insert(TagChange).from_select(change_cols, select(*change_row(CustomerTag.customer_id, "remove"))
                   .where(_rule_links(rule), CustomerTag.customer_id.not_in(select(Customer.id).where(clause)))))
        out.append(CustomerTag.__table__.delete().where(
            _rule_links(rule), CustomerTag.customer_id.in_(select(TagChange.customer_id).where(in_batch("remove")))))
    has_tag = exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == rule.tag_id)
    out.append(insert(TagChange).from_select(change_cols, select(*change_row(Customer.id, "add")).where(clause, ~has_tag)))
    out.append(insert(CustomerTag).from_select(
        ["customer_id", "tag_id", "source", "rule_id", "tagged_by_id", "tagged_at"],
        select(TagChange.customer_id, TagChange.tag_id, TagChange.source, TagChange.rule_id, TagChange.user_id,
               TagChange.changed_at).where(in_batch("add"))))
    return out


def apply_rule(rule_id: int, now: datetime | None = None) -> dict[str, int]:
    """Apply one rule in one transaction: {"added": n, "removed": m}. RuleError when the rule is
    broken (e.g. a field was retired since): nothing is changed then."""
    from app.services.actor import system_user

    rule = db.session.get(TaggingRule, rule_id)
    if rule is None:
        raise RuleError([gettext("No such rule.")])
    now = now or datetime.now()
    batch = uuid.uuid4().hex
    try:
        for stmt in statements(rule, system_user().id, now, batch):
            db.session.execute(stmt)
        counts = dict(db.session.execute(select(TagChange.action, func.count()).where(TagChange.batch == batch)
                                         .group_by(TagChange.action)).all())
        result = {"added": counts.get("add", 0), "removed": counts.get("remove", 0)}
        rule.last_run_at = now
        rule.last_result = gettext("+%(added)s / -%(removed)s", **result)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


def apply_all_rules() -> dict:
    """The periodic job: every active rule, each in its own transaction. A broken rule is skipped
    (its problem is kept on the rule and in the job result); the others still run."""
    ids = [r for (r,) in db.session.query(TaggingRule.id).filter(TaggingRule.active.is_(True)).order_by(TaggingRule.id)]
    total = {"rules": 0, "added": 0, "removed": 0, "refused": {}}
    for rule_id in ids:
        try:
            result = apply_rule(rule_id)
        except RuleError as exc:
            rule = db.session.get(TaggingRule, rule_id)
            rule.last_result = str(exc)[:255]
            db.session.commit()
            total["refused"][rule.name] = exc.problems
            continue
        total["rules"] += 1
        total["added"] += result["added"]
        total["removed"] += result["removed"]
    return total

