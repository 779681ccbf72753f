"""Load the declarative seed files under seeds/ (manifest order), idempotently.

Every record has a stable ``key``; ``crm_seed_record`` maps it to the row it made. Loading
twice changes nothing; a record (or a whole file) marked ``noupdate: true`` is created once
and then left to the admins. All files are read and validated first, every problem reported
with its file and line, and only then is anything written, in one transaction.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from sqlalchemy.orm import joinedload

from flask import current_app

from app.extensions import appbuilder, db
from app.models import (
    AssignmentRule, Cadence, Department, DictionaryItem, DictionaryType, FeedbackRule, NumberingRule, SeedRecord,
    SlaPolicy, Tag, TagDimension, Team, WorkCalendar,
)

SEED_DIR = Path(__file__).resolve().parents[2] / "seeds"


def seed_dir() -> Path:
    """seeds/ of the repository, or the folder named by the CRM_SEED_DIR setting."""
    return Path(current_app.config.get("CRM_SEED_DIR") or SEED_DIR)
LINE = "__line__"
ITEM_LINES = "__item_lines__"  # on a file's top mapping: the line of each entry under 'records'


class SeedError(Exception):
    """Every problem found in the seed files, each naming file and line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (no tags, no code) that remembers the line of every mapping."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == "records" and isinstance(value_node, yaml.SequenceNode):
            mapping[ITEM_LINES] = [item.start_mark.line + 1 for item in value_node.value]
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class SeedReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # noupdate records left as the admins have them
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "kept": self.kept}


@dataclass
class _Record:
    kind: str
    key: str
    values: dict[str, Any]
    source: str
    noupdate: bool


class _Problems(list):
    def add(self, where: str, zh: str, en: str) -> None:
        self.append(f"{where}: {zh} / {en}")


def _read_yaml(path: Path, rel: str, problems: _Problems) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 (SafeLoader subclass)
    except FileNotFoundError:
        problems.add(rel, "文件不存在", "file not found")
    except UnicodeDecodeError:
        problems.add(rel, "文件不是 UTF-8 编码", "file is not UTF-8")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{rel}:{mark.line + 1}" if mark else rel
        problems.add(where, f"YAML 格式错误（{getattr(exc, 'problem', exc)}）",
                     f"invalid YAML ({getattr(exc, 'problem', exc)})")
    return None


def _records(doc: dict) -> list[tuple[Any, int | None]]:
    """Each entry under 'records' with its line."""
    records = doc.get("records") or []
    lines = doc.get(ITEM_LINES) or []
    return [(rec, lines[i] if i < len(lines) else None) for i, rec in enumerate(records)]


def _fields(rec: dict, where: str, problems: _Problems, required: tuple, optional: tuple,
            line: int | None = None) -> dict | None:
    if not isinstance(rec, dict):
        problems.add(f"{where}:{line}" if line else where, "每条记录必须是键值对", "each record must be a mapping")
        return None
    ok = True
    for name in required:
        if rec.get(name) in (None, ""):
            problems.add(f"{where}:{rec.get(LINE, '?')}", f"缺少必填字段 '{name}'", f"missing required field '{name}'")
            ok = False
    for name in rec:
        if name not in required and name not in optional and name not in (LINE, "noupdate"):
            problems.add(f"{where}:{rec.get(LINE, '?')}", f"未知字段 '{name}'", f"unknown field '{name}'")
            ok = False
    if "noupdate" in rec and not isinstance(rec["noupdate"], bool):
        problems.add(f"{where}:{rec.get(LINE, '?')}", "noupdate 只能是 true 或 false", "noupdate must be true or false")
        ok = False
    return rec if ok else None


# -- parsers: file content -> records (validation only, nothing written) ---------------------

def _parse_departments(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    out = []
    for rec, line in _records(doc):
        if isinstance(rec, dict) and rec.get("key"):  # known even if invalid: no follow-on errors in roles
            ctx["departments"].add(rec["key"])
        r = _fields(rec, rel, problems, ("key", "name"), ("name_en",), line)
        if r:
            out.append(_Record("department", r["key"], {"key": r["key"], "name": r["name"], "name_en": r.get("name_en")},
                               f"{rel}:{r[LINE]}", r.get("noupdate", doc.get("noupdate", False))))
    return out


def _parse_dictionaries(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    out = []
    base = seed_dir() / Path(rel).parent.relative_to("seeds")
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, ("key", "name", "items"), ("name_en",), line)
        if not r:
            continue
        noupdate = r.get("noupdate", doc.get("noupdate", False))
        out.append(_Record("dictionary_type", r["key"], {"key": r["key"], "name": r["name"], "name_en": r.get("name_en")},
                           f"{rel}:{r[LINE]}", noupdate))
        csv_rel = str(Path(rel).parent / r["items"])
        items = _parse_dictionary_csv(base / r["items"], csv_rel, r["key"], problems, noupdate)
        ctx.setdefault("items", set()).update(i.key for i in items)
        out.extend(items)
    return out


def _parse_dictionary_csv(path: Path, rel: str, type_key: str, problems: _Problems, noupdate: bool) -> list[_Record]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems.add(rel, "文件不存在", "file not found")
        return []
    rows = list(csv.reader(text.splitlines()))
    if not rows or [h.strip() for h in rows[0]][:3] != ["code", "name", "name_en"]:
        problems.add(f"{rel}:1", "表头必须是 code,name,name_en", "header must be code,name,name_en")
        return []
    out, seen = [], {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 3:
            problems.add(f"{rel}:{lineno}", f"应有 3 列，实际 {len(row)} 列", f"expected 3 columns, found {len(row)}")
            continue
        code, name, name_en = (c.strip() for c in row)
        if not code or not name:
            problems.add(f"{rel}:{lineno}", "code 和 name 不能为空", "code and name must not be empty")
            continue
        if code in seen:
            problems.add(f"{rel}:{lineno}", f"编码 '{code}' 与第 {seen[code]} 行重复",
                         f"code '{code}' repeats line {seen[code]}")
            continue
        seen[code] = lineno
        out.append(_Record("dictionary_item", f"{type_key}.{code}",
                           {"type_key": type_key, "code": code, "name": name, "name_en": name_en or None,
                            "sort": len(out) + 1}, f"{rel}:{lineno}", noupdate))
    return out


def _parse_roles(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    out = []
    known = ctx["permissions"]()
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, ("key", "name"),
                    ("name_en", "department", "description", "grants", "menus", "all_permissions", "scope", "hide_fields",
                     "work_scope", "ticket_scope"), line)
        if not r:
            continue
        where = f"{rel}:{r[LINE]}"
        if r.get("department") and r["department"] not in ctx["departments"]:
            problems.add(where, f"未知部门 '{r['department']}'", f"unknown department '{r['department']}'")
        perms: set[tuple[str, str]] = set()
        grants = r.get("grants") or {}
        if not isinstance(grants, dict):
            problems.add(where, "grants 必须是 视图: [权限...] 的映射", "grants must map a view to a list of permissions")
            grants = {}
        for view, names in grants.items():
            if view == LINE:
                continue
            if not isinstance(names, list):
                problems.add(where, f"'{view}' 的权限必须是列表", f"permissions of '{view}' must be a list")
                continue
            for name in names:
                name = str(name)
                perm = name if name.startswith(("can_", "menu_")) or (name, view) in known else f"can_{name}"
                if (perm, view) not in known:
                    problems.add(where, f"未知权限 {perm} on {view}", f"unknown permission {perm} on {view}")
                perms.add((perm, view))
        for menu in r.get("menus") or []:
            if ("menu_access", menu) not in known:
                problems.add(where, f"未知菜单 '{menu}'", f"unknown menu '{menu}'")
            perms.add(("menu_access", menu))
        if r.get("all_permissions") is True:
            perms = set(known)
        policy = None
        if "scope" in r or "hide_fields" in r or "work_scope" in r or "ticket_scope" in r:
            from app.models.access import SCOPES
            from app.security.scopes import CATEGORY_PREFIX, HIDEABLE_FIELDS
            from app.services.fields import CATEGORIES

            scope, work_scope = r.get("scope", "own"), r.get("work_scope", "own")
            ticket_scope = r.get("ticket_scope", "own")
            for value in (scope, work_scope, ticket_scope):
                if value not in SCOPES:
                    problems.add(where, f"未知数据范围 '{value}'（可用：{', '.join(SCOPES)}）",
                                 f"unknown scope '{value}' (one of: {', '.join(SCOPES)})")
            hide = r.get("hide_fields") or []
            if not isinstance(hide, list):
                problems.add(where, "hide_fields 必须是字段列表", "hide_fields must be a list of fields")
                hide = []
            for name in hide:
                if name not in HIDEABLE_FIELDS and name not in [CATEGORY_PREFIX + c for c in CATEGORIES]:
                    problems.add(where, f"不能隐藏的字段 '{name}'", f"field '{name}' cannot be hidden")
            policy = {"scope": scope, "hide_fields": ",".join(str(h) for h in hide), "work_scope": work_scope,
                      "ticket_scope": ticket_scope, "name_en": r.get("name_en")}
        out.append(_Record("role", r["key"], {"name": r["name"], "permissions": sorted(perms), "policy": policy},
                           where, r.get("noupdate", doc.get("noupdate", False))))
    return out


_RULE_FIELDS = ("target", "prefix", "date_part", "separator", "field_segment", "width", "reset_period", "active")


def _both(msgid: str, params: dict) -> tuple[str, str]:
    """(Chinese, English) text of a msgid: seed problems are shown in both languages."""
    from flask_babel import force_locale, gettext

    en = msgid % params if params else msgid
    try:
        with force_locale("zh"):
            zh = gettext(msgid, **params)
    except Exception:  # noqa: BLE001  (no request context / catalog: English twice is still clear)
        zh = en
    return zh, en


def _parse_numbering_rules(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    from app.services.numbering import rule_problems

    out = []
    for rec in doc.get("records") or []:
        r = _fields(rec, rel, problems, ("key", "name", "target", "reset_period"), ("name_en",) + _RULE_FIELDS)
        if not r:
            continue
        where = f"{rel}:{r[LINE]}"
        values = {"key": r["key"], "name": str(r["name"]), "name_en": r.get("name_en"), "target": r["target"],
                  "prefix": "" if r.get("prefix") is None else str(r["prefix"]),
                  "date_part": "" if r.get("date_part") is None else str(r["date_part"]),
                  "separator": "" if r.get("separator") is None else str(r["separator"]),
                  "field_segment": r.get("field_segment") or "",
                  "width": r.get("width", 3), "reset_period": r["reset_period"], "active": r.get("active", True)}
        bad = rule_problems(values)
        if not isinstance(values["active"], bool):
            bad["active"] = ("'active' must be true or false.", {})
        for name, (msgid, params) in bad.items():
            zh, en = _both(msgid, params)
            problems.add(where, f"{name}: {zh}", f"{name}: {en}")
        if not bad:
            out.append(_Record("numbering_rule", r["key"], values, where, r.get("noupdate", doc.get("noupdate", False))))
    return out


def _parse_tag_dimensions(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    """Tag dimensions and their values: ``values: [华东|East China, ...]`` (English optional)."""
    from app.models.tag import TAG_SEPARATOR

    out = []
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, ("key", "name", "values"), ("name_en", "exclusive"), line)
        if not r:
            continue
        where = f"{rel}:{r[LINE]}"
        noupdate = r.get("noupdate", doc.get("noupdate", False))
        name = str(r["name"]).strip()
        if TAG_SEPARATOR in name or len(name) > 50:
            problems.add(where, f"维度名称 '{name}' 不能含 '{TAG_SEPARATOR}'，且不超过 50 字",
                         f"dimension name '{name}' must not contain '{TAG_SEPARATOR}' and be at most 50 characters")
            continue
        if not isinstance(r["values"], list):
            problems.add(where, "values 必须是列表", "values must be a list")
            continue
        out.append(_Record("tag_dimension", r["key"], {"key": r["key"], "name": name, "name_en": r.get("name_en"),
                                                       "exclusive": r.get("exclusive") is True}, where, noupdate))
        seen: set[str] = set()
        for sort, raw in enumerate(r["values"], start=1):
            text = str(raw).strip() if isinstance(raw, (str, int)) else ""
            value, _, value_en = text.partition("|")
            value, value_en = value.strip(), value_en.strip()
            if not value or len(value) > 50:
                problems.add(where, f"标签值 '{raw}' 必须是 1 到 50 字的文字", f"tag value '{raw}' must be text of 1 to 50 characters")
                continue
            if value in seen:
                problems.add(where, f"标签值 '{value}' 重复", f"tag value '{value}' repeats")
                continue
            seen.add(value)
            ctx["tags"].add(f"{r['key']}.{value}")
            out.append(_Record("tag", f"{r['key']}.{value}",
                               {"dimension_key": r["key"], "name": value, "name_en": value_en or None, "sort": sort},
                               where, noupdate))
    return out


def _parse_tagging_rules(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    """Tagging rules: ``tag: activity.活跃`` (a tag's seed key: dimension key . value) and
    ``conditions: [{field, op, value, window_days}]`` checked against the rule vocabulary."""
    from app.services.tag_rules import condition_problems

    out = []
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, ("key", "name", "tag", "conditions"),
                    ("active", "remove_unmet", "description"), line)
        if not r:
            continue
        where, ok = f"{rel}:{r[LINE]}", True
        if r["tag"] not in ctx["tags"]:
            problems.add(where, f"未知标签 '{r['tag']}'（写作 维度键.值，如 activity.活跃）",
                         f"unknown tag '{r['tag']}' (write dimension key.value, e.g. activity.活跃)")
            ok = False
        conditions = []
        for n, c in enumerate(r["conditions"] if isinstance(r["conditions"], list) else [None], start=1):
            if not isinstance(c, dict) or set(c) - {"field", "op", "value", "window_days", LINE}:
                problems.add(where, f"条件 {n} 必须是 field/op/value/window_days 的映射",
                             f"condition {n} must map field/op/value/window_days")
                ok = False
                continue
            value = None if c.get("value") is None else str(c["value"])
            for messages in condition_problems(c.get("field"), c.get("op"), value, c.get("window_days")).values():
                for m in messages:
                    zh, en = _both(m, {})
                    problems.add(f"{rel}:{c.get(LINE, r[LINE])}", f"条件 {n}：{zh}", f"condition {n}: {en}")
                ok = False if messages else ok
            conditions.append((c.get("field"), c.get("op"), value, c.get("window_days")))
        for flag in ("active", "remove_unmet"):
            if not isinstance(r.get(flag, True), bool):
                problems.add(where, f"{flag} 只能是 true 或 false", f"{flag} must be true or false")
                ok = False
        if ok:
            out.append(_Record("tagging_rule", r["key"], {
                "key": r["key"], "name": str(r["name"]), "tag_key": r["tag"], "active": r.get("active", False),
                "remove_unmet": r.get("remove_unmet", True), "description": r.get("description"),
                "conditions": conditions}, where, r.get("noupdate", doc.get("noupdate", False))))
    return out


def _parse_cadences(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    """Follow-up cadence and no-contact reminder days per customer level or plan stage:
    ``key: customer_level.A`` (dictionary type key . item code), positive whole days or empty."""
    out = []
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, ("key",), ("cadence_days", "no_contact_days"), line)
        if not r:
            continue
        where = f"{rel}:{r[LINE]}"
        type_key, _, code = str(r["key"]).partition(".")
        if type_key not in ("customer_level", "followup_stage") or not code:
            problems.add(where, f"键 '{r['key']}' 应为 customer_level.代码 或 followup_stage.代码",
                         f"key '{r['key']}' must be customer_level.CODE or followup_stage.CODE")
            continue
        values = {"type_key": type_key, "code": code}
        for name in ("cadence_days", "no_contact_days"):
            v = r.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                problems.add(where, f"{name} 必须是正整数天数", f"{name} must be a positive number of days")
            values[name] = v
        out.append(_Record("cadence", r["key"], values, where, r.get("noupdate", doc.get("noupdate", False))))
    return out


# -- service desk configuration (calendars, SLA policies, teams, assignment rules) --------------
# field -> dictionary type of a dictionary reference (value: the item's code)
_DICT_REFS = {"ticket_type": "ticket_type", "priority": "priority", "industry": "industry", "region": "region",
              "level": "customer_level"}
_KEY_REFS = {"calendar": "work_calendar", "team": "team", "department": "department"}  # field -> kind (by key)
_SERVICE_FIELDS = {  # kind -> (required, optional, integer fields)
    "work_calendar": (("key", "name"), ("weekdays", "periods", "timezone", "holidays", "workdays"), ()),
    "sla_policy": (("key", "name", "ticket_type", "calendar", "first_response_minutes", "resolution_minutes"),
                   ("priority", "warn_before_minutes", "active"),
                   ("first_response_minutes", "resolution_minutes", "warn_before_minutes")),
    "team": (("key", "name"), ("name_en", "department", "round_robin"), ()),
    "assignment_rule": (("key", "name", "team"), ("sort", "ticket_type", "industry", "region", "level", "keywords",
                                                   "skill", "active"), ("sort",)),
}


def _days(values, where: str, problems: _Problems) -> list[tuple[str, str]]:
    """["2025-10-01 国庆节", ...] -> [(iso day, name)]"""
    from datetime import date

    out = []
    for raw in values or []:
        day, _, name = str(raw).strip().partition(" ")
        try:
            date.fromisoformat(day)
        except ValueError:
            problems.add(where, f"日期 '{raw}' 应为 YYYY-MM-DD 名称", f"day '{raw}' must read YYYY-MM-DD name")
            continue
        out.append((day, name.strip() or day))
    return out


def _parse_service(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    kind = doc["kind"]
    required, optional, ints = _SERVICE_FIELDS[kind]
    known = ctx.setdefault("keys", {})
    out = []
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, required, optional, line)
        if not r:
            continue
        where = f"{rel}:{r[LINE]}"
        values = {k: v for k, v in r.items() if k not in (LINE, "noupdate")}
        ok = True
        for name in ints:
            if name in values and (not isinstance(values[name], int) or values[name] < 0):
                problems.add(where, f"{name} 必须是非负整数", f"{name} must be a whole number ≥ 0")
                ok = False
        for name, type_key in _DICT_REFS.items():
            if values.get(name) is not None and f"{type_key}.{values[name]}" not in ctx.get("items", set()):
                problems.add(where, f"{name}: 字典 {type_key} 中没有 '{values[name]}'",
                             f"{name}: no item '{values[name]}' in dictionary {type_key}")
                ok = False
        for name, ref_kind in _KEY_REFS.items():
            pool = ctx["departments"] if ref_kind == "department" else known.get(ref_kind, set())
            if values.get(name) is not None and values[name] not in pool:
                problems.add(where, f"{name}: 未知的 '{values[name]}'", f"{name}: unknown '{values[name]}'")
                ok = False
        if kind == "work_calendar":
            from app.services.sla import CalendarError, parse_periods

            try:
                parse_periods(values.get("periods", "09:00-18:00"))
            except CalendarError as exc:
                problems.add(where, f"periods: {exc}", f"periods: {exc}")
                ok = False
            days = str(values.get("weekdays", "1,2,3,4,5")).split(",")
            if not all(d.strip() in "1234567" and d.strip() for d in days):
                problems.add(where, "weekdays 只能是 1 到 7（周一到周日）", "weekdays must be 1 to 7 (Monday to Sunday)")
                ok = False
            values["holidays"] = _days(values.get("holidays"), where, problems)
            values["workdays"] = _days(values.get("workdays"), where, problems)
        if ok:
            known.setdefault(kind, set()).add(values["key"])
            out.append(_Record(kind, values["key"], values, where, r.get("noupdate", doc.get("noupdate", False))))
    return out


def _apply_service(model):
    def apply(rec: _Record, row, ctx: dict):
        from datetime import date

        from app.models import Holiday

        values = dict(rec.values)
        for name, type_key in _DICT_REFS.items():
            if name in values:
                code = values.pop(name)
                values[f"{name}_id"] = db.session.query(DictionaryItem.id).filter_by(type_key=type_key, code=code).scalar()
        for name, ref_kind in _KEY_REFS.items():
            if name in values:
                ref_model = Department if ref_kind == "department" else WRITERS[ref_kind][0]
                values[f"{name}_id"] = db.session.query(ref_model.id).filter_by(key=values.pop(name)).scalar()
        days = [(d, n, False) for d, n in values.pop("holidays", [])] + [(d, n, True) for d, n in values.pop("workdays", [])]
        if "weekdays" in values:
            values["weekdays"] = str(values["weekdays"])
        row = row or db.session.query(model).filter_by(key=values["key"]).first() or model()
        changed = _set_fields(row, values) or row.id is None
        if model.__name__ == "WorkCalendar":
            wanted = sorted((date.fromisoformat(d), n, w) for d, n, w in days)
            if sorted((h.day, h.name, h.workday) for h in row.holidays) != wanted:
                row.holidays = [Holiday(day=d, name=n, workday=w) for d, n, w in wanted]
                changed = True
        return row, changed
    return apply


def _parse_feedback_rules(doc: dict, rel: str, problems: _Problems, ctx: dict) -> list[_Record]:
    from app.models.feedback import RULE_KINDS

    out = []
    for rec, line in _records(doc):
        r = _fields(rec, rel, problems, ("key", "kind", "code", "name", "keywords"),
                    ("role_name", "promise_hours", "sort", "active"), line)
        if not r:
            continue
        where = f"{rel}:{r[LINE]}"
        if r["kind"] not in RULE_KINDS:
            problems.add(where, f"kind 只能是 {'、'.join(RULE_KINDS)}", f"kind must be one of {', '.join(RULE_KINDS)}")
            continue
        hours = r.get("promise_hours")
        if hours is not None and (not isinstance(hours, int) or isinstance(hours, bool) or hours < 1):
            problems.add(where, "promise_hours 必须是正整数", "promise_hours must be a positive whole number")
            continue
        values = {k: r.get(k) for k in ("key", "kind", "code", "name", "role_name", "promise_hours")}
        values.update(keywords=str(r["keywords"]), sort=r.get("sort", 0), active=r.get("active", True))
        out.append(_Record("feedback_rule", r["key"], values, where, r.get("noupdate", doc.get("noupdate", False))))
    return out


PARSERS: dict[str, Callable[..., list[_Record]]] = {
    "cadence": _parse_cadences,
    "feedback_rule": _parse_feedback_rules,
    "department": _parse_departments,
    "dictionary_type": _parse_dictionaries,
    "role": _parse_roles,
    "numbering_rule": _parse_numbering_rules,
    "tag_dimension": _parse_tag_dimensions,
    "tagging_rule": _parse_tagging_rules,
    **{kind: _parse_service for kind in _SERVICE_FIELDS},
}


# -- writers: record -> row --------------------------------------------------------------------

def _apply_simple(model):
    def apply(rec: _Record, row, ctx: dict):
        row = row or model()
        return row, _set_fields(row, rec.values)
    return apply


def _set_fields(row, values: dict) -> bool:
    """Copy values onto row; True when anything changed."""
    changed = False
    for k, v in values.items():
        if getattr(row, k) != v:
            setattr(row, k, v)
            changed = True
    return changed


def _apply_item(rec: _Record, row, ctx: dict):
    values = dict(rec.values)
    dtype = db.session.query(DictionaryType).filter_by(key=values.pop("type_key")).one()
    row = row or DictionaryItem(type=dtype)
    return row, _set_fields(row, values) or row.id is None


def _apply_tag(rec: _Record, row, ctx: dict):
    values = dict(rec.values)
    dim = db.session.query(TagDimension).filter_by(key=values.pop("dimension_key")).one()
    row = row or db.session.query(Tag).filter_by(dimension_id=dim.id, name=values["name"]).first() \
        or Tag(dimension=dim)  # adopt a value an admin typed as a free tag before it was seeded
    return row, _set_fields(row, values) or row.id is None


def _apply_tagging_rule(rec: _Record, row, ctx: dict):
    from datetime import datetime

    from app.models.tag import TaggingRule, TaggingRuleCondition

    values = dict(rec.values)
    link = db.session.query(SeedRecord).filter_by(kind="tag", key=values.pop("tag_key")).one()
    conditions = values.pop("conditions")
    row = row or TaggingRule()
    changed = _set_fields(row, {**values, "tag_id": link.record_id}) or row.id is None
    if [(c.field, c.operator, c.value, c.window_days) for c in row.conditions] != conditions:
        row.conditions = [TaggingRuleCondition(field=f, operator=o, value=v, window_days=w) for f, o, v, w in conditions]
        changed = True
    if changed:
        row.updated_at = datetime.now()
    return row, changed


def _apply_role(rec: _Record, row, ctx: dict):
    sm = appbuilder.sm
    row = row or sm.role_model(name=rec.values["name"])
    changed = row.name != rec.values["name"] or row.id is None
    row.name = rec.values["name"]
    if "permission_views" not in ctx:  # every (permission, view) pair at once, not 3 queries a pair
        ctx["permission_views"] = {(pv.permission.name, pv.view_menu.name): pv
                                   for pv in db.session.query(sm.permissionview_model).options(
                                       joinedload(sm.permissionview_model.permission),
                                       joinedload(sm.permissionview_model.view_menu))}
    wanted = [ctx["permission_views"].get((p, v)) for p, v in rec.values["permissions"]]
    if sorted(pv.id for pv in wanted if pv) != sorted(pv.id for pv in row.permissions):
        row.permissions = [pv for pv in wanted if pv]
        changed = True
    policy = rec.values.get("policy")
    if policy is not None:  # the role's data scope (crm_role_policy), reset with the matrix
        from app.models import RolePolicy

        if row.id is None:
            db.session.add(row)
            db.session.flush()
        current = db.session.query(RolePolicy).filter_by(role_id=row.id).first()
        if current is None:
            db.session.add(RolePolicy(role_id=row.id, **policy))
            changed = True
        else:
            changed = _set_fields(current, policy) or changed
    return row, changed


def _apply_cadence(rec: _Record, row, ctx: dict):
    values = dict(rec.values)
    item = db.session.query(DictionaryItem).filter_by(type_key=values.pop("type_key"), code=values.pop("code")).first()
    if item is None:
        raise SeedError([f"{rec.source}: 字典项 '{rec.key}' 不存在 / dictionary item '{rec.key}' does not exist"])
    row = row or db.session.query(Cadence).filter_by(item_id=item.id).first() or Cadence(item=item)
    return row, _set_fields(row, values) or row.id is None


WRITERS = {
    "cadence": (Cadence, _apply_cadence),
    "department": (Department, _apply_simple(Department)),
    "dictionary_type": (DictionaryType, _apply_simple(DictionaryType)),
    "dictionary_item": (DictionaryItem, _apply_item),
    "role": (None, _apply_role),
    "numbering_rule": (NumberingRule, _apply_simple(NumberingRule)),
    "tag_dimension": (TagDimension, _apply_simple(TagDimension)),
    "tag": (Tag, _apply_tag),
    "tagging_rule": (None, _apply_tagging_rule),
    **{kind: (model, _apply_service(model)) for kind, model in (
        ("work_calendar", WorkCalendar), ("sla_policy", SlaPolicy), ("team", Team), ("assignment_rule", AssignmentRule))},
    "feedback_rule": (FeedbackRule, _apply_simple(FeedbackRule)),
}


def _rule_model():
    from app.models.tag import TaggingRule

    return TaggingRule


def _known_permissions() -> set[tuple[str, str]]:
    sm = appbuilder.sm
    pvs = db.session.query(sm.permissionview_model).all()
    return {(pv.permission.name, pv.view_menu.name) for pv in pvs}


def read_manifest(section: str = "load") -> tuple[list[_Record], _Problems]:
    problems = _Problems()
    manifest = _read_yaml(seed_dir() / "manifest.yaml", "seeds/manifest.yaml", problems)
    if manifest is None:
        raise SeedError(problems)
    files = manifest.get(section) or [] if isinstance(manifest, dict) else []
    if not isinstance(files, list):
        raise SeedError([f"seeds/manifest.yaml: '{section}' 必须是文件列表 / '{section}' must be a list of files"])
    _perm_cache: dict[str, set] = {}
    ctx = {"departments": set(), "tags": set(),
           "permissions": lambda: _perm_cache.setdefault("p", _known_permissions())}
    records: list[_Record] = []
    for name in files:
        rel = f"seeds/{name}"
        doc = _read_yaml(seed_dir() / name, rel, problems)
        if doc is None:
            continue
        if not isinstance(doc, dict) or doc.get("kind") not in PARSERS:
            kinds = ", ".join(PARSERS)
            if isinstance(doc, dict) and doc.get("kind"):
                problems.add(f"{rel}:{doc.get(LINE, 1)}", f"未知的 kind '{doc['kind']}'（可用：{kinds}）",
                             f"unknown kind '{doc['kind']}' (one of: {kinds})")
            else:
                problems.add(f"{rel}:1", f"必须声明 kind（{kinds}）", f"must declare kind ({kinds})")
            continue
        if not isinstance(doc.get("records"), list):
            problems.add(f"{rel}:{doc.get(LINE, 1)}", "缺少 records 列表", "missing a 'records' list")
            continue
        records.extend(PARSERS[doc["kind"]](doc, rel, problems, ctx))
    seen: dict[tuple[str, str], str] = {}
    for rec in records:
        if (rec.kind, rec.key) in seen:
            problems.add(rec.source, f"键 '{rec.key}' 已在 {seen[(rec.kind, rec.key)]} 定义",
                         f"key '{rec.key}' already defined at {seen[(rec.kind, rec.key)]}")
        seen[(rec.kind, rec.key)] = rec.source
    return records, problems


def load_seeds() -> SeedReport:
    """Validate every seed file, then write them all in one transaction."""
    records, problems = read_manifest("load")
    if problems:
        raise SeedError(problems)
    report = SeedReport()
    ctx: dict = {}
    try:
        for rec in records:
            model, apply = WRITERS[rec.kind]
            model = model or (appbuilder.sm.role_model if rec.kind == "role" else _rule_model())
            link = db.session.query(SeedRecord).filter_by(kind=rec.kind, key=rec.key).first()
            row = db.session.get(model, link.record_id) if link else None
            if link and rec.noupdate and row is not None:
                report.kept += 1
                continue
            if row is None and rec.kind == "role":  # adopt an existing role of that name
                row = appbuilder.sm.find_role(rec.values["name"])
            if row is None and rec.kind == "tag_dimension":  # adopt one an admin made from a free tag
                row = db.session.query(TagDimension).filter(
                    (TagDimension.key == rec.values["key"]) | (TagDimension.name == rec.values["name"])).first()
            row, changed = apply(rec, row, ctx)
            db.session.add(row)
            db.session.flush()
            if link is None:
                db.session.add(SeedRecord(kind=rec.kind, key=rec.key, record_id=row.id, source=rec.source,
                                          noupdate=rec.noupdate))
                report.created += 1
            elif link.record_id != row.id:
                link.record_id = row.id
                report.created += 1
            elif changed:
                report.updated += 1
            else:
                report.unchanged += 1
            report.by_kind[rec.kind] = report.by_kind.get(rec.kind, 0) + 1
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return report
