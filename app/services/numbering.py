"""Numbering rules (编号规则): allocate the next number of a record (C20240501001, 2024-I-001,
C20240501001-001, ...) and preview it.

A number is ``prefix | date part | segment | sequence`` joined by the rule's separator (empty
parts are left out). The segment is a value taken from the record, from a whitelist
registered per target (``register_target``): e.g. the customer's industry code, or the
parent's number for service records. The sequence counts per rule, reset period (the window:
day, month, year or never) and segment value, in ``crm_sequence_counter``.

Allocation is atomic and **gap-aware** (DOMAIN.md): the counter is bumped by one upsert
(``INSERT .. ON CONFLICT DO UPDATE SET value = value + 1 RETURNING value``) in its *own* short
transaction on its *own* connection, committed at once, before the record is saved:

* SQLite (WAL): the allocating transaction starts with ``BEGIN IMMEDIATE``, i.e. it takes the
  write lock before it reads anything. A deferred transaction that has already read and then
  writes must *upgrade* its lock; if another writer committed in between, SQLite fails at once
  with SQLITE_BUSY_SNAPSHOT ("database is locked") and busy_timeout cannot help. BEGIN IMMEDIATE
  waits in the busy handler instead, then reads the latest counter under the lock. If the
  caller's own session already holds the write lock (it has written in this transaction, e.g. a
  bulk load), a second connection could only wait for it, so the bump runs in the caller's
  transaction, which is already serialised.
* PostgreSQL: the upsert takes the counter row's lock and increments the latest committed
  value (READ COMMITTED re-checks the row), so two writers never get the same value; the lock
  is held only for the tiny transaction, not for the whole web request.

The separate connections come from a small pool of their own, so a request holding a session
connection never waits for another request's session connection (no pool deadlock).

Consequences: a number once allocated is never handed out again, but if saving the record then
fails (validation, a constraint) that number is simply skipped — numbers are unique and
increasing, not necessarily contiguous. Numbers are stored on the record and never change
(``protect_number`` refuses updates); editing a rule only affects records created afterwards.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import create_engine, event, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import NumberingRule, SequenceCounter

log = logging.getLogger(__name__)

DATE_PARTS = {"": None, "yyyy": "%Y", "yyyymm": "%Y%m", "yyyymmdd": "%Y%m%d"}
RESET_PERIODS = {"daily": "%Y%m%d", "monthly": "%Y%m", "yearly": "%Y", "never": None}
# a reset window needs a date part at least as fine, or numbers would repeat
_RESET_NEEDS = {"daily": {"yyyymmdd"}, "monthly": {"yyyymm", "yyyymmdd"},
                "yearly": {"yyyy", "yyyymm", "yyyymmdd"}, "never": set(DATE_PARTS)}
SEPARATORS = ("", "-", "_", ".", "/")
MAX_WIDTH = 12
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-./]{0,20}$")

DATE_PART_LABELS = {"": _l("(none)"), "yyyy": "yyyy", "yyyymm": "yyyymm", "yyyymmdd": "yyyymmdd"}
RESET_LABELS = {"daily": _l("Daily"), "monthly": _l("Monthly"), "yearly": _l("Yearly"), "never": _l("Never")}


class NumberingError(ValueError):
    """A number cannot be made (unknown rule, a required segment missing, an immutable number changed)."""


# -- targets and their whitelisted segments ---------------------------------------------------

@dataclass(frozen=True)
class Segment:
    label: Any
    value: Callable[[Any], str | None]  # record -> segment text (None: missing)
    example: Callable[[], str]  # for previews
    required: bool = False


@dataclass
class Target:
    key: str
    label: Any
    segments: dict[str, Segment] = field(default_factory=dict)
    number_attr: tuple[str, str] | None = None  # (model class name in app.models, column) once the table exists


TARGETS: dict[str, Target] = {}


def register_target(key: str, label, segments: dict[str, Segment] | None = None,
                    number_attr: tuple[str, str] | None = None) -> Target:
    TARGETS[key] = Target(key, label, dict(segments or {}), number_attr)
    return TARGETS[key]


def _dict_code(attr: str) -> Callable[[Any], str | None]:
    """A dictionary item's code, from the relationship or (not yet loaded) its id."""
    def get(record) -> str | None:
        item = getattr(record, attr, None)
        if item is None and getattr(record, f"{attr}_id", None):
            from app.models import DictionaryItem

            item = db.session.get(DictionaryItem, getattr(record, f"{attr}_id"))
        return item.code if item is not None else None
    return get


def _dict_example(type_key: str, fallback: str) -> Callable[[], str]:
    def example() -> str:
        from app.models import DictionaryItem

        with db.session.no_autoflush:
            code = db.session.execute(
                select(DictionaryItem.code).where(DictionaryItem.type_key == type_key, DictionaryItem.active.is_(True))
                .order_by(DictionaryItem.sort).limit(1)).scalar()
        return code or fallback
    return example


def _parent_no(record) -> str | None:
    parent = getattr(record, "customer", None)
    if parent is None and getattr(record, "customer_id", None):
        from app.models import Customer

        parent = db.session.get(Customer, record.customer_id)
    return getattr(parent, "customer_no", None)


def _parent_example() -> str:
    return preview_key("customer")


_PARENT = Segment(_l("Parent number (customer no.)"), _parent_no, _parent_example, required=True)

register_target("customer", _l("Customer"), {
    "industry": Segment(_l("Industry code"), _dict_code("industry"), _dict_example("industry", "I")),
    "region": Segment(_l("Region code"), _dict_code("region"), _dict_example("region", "east")),
}, number_attr=("Customer", "customer_no"))
register_target("ticket", _l("Service ticket"), {
    "parent": _PARENT, "type": Segment(_l("Ticket type code"), _dict_code("type"), _dict_example("ticket_type", "repair"))},
    number_attr=("Ticket", "ticket_no"))
register_target("feedback", _l("Feedback"), {
    "parent": _PARENT, "type": Segment(_l("Feedback type code"), _dict_code("type"), _dict_example("feedback_type", "complaint"))},
    number_attr=("Feedback", "feedback_no"))
register_target("service_record", _l("Service record"), {"parent": _PARENT},
                number_attr=("ServiceRecord", "service_no"))

# Built-in patterns, the same as seeds/numbering.yaml: used while a rule is missing or inactive.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "customer": dict(target="customer", prefix="C", date_part="yyyymmdd", separator="", field_segment="",
                     width=3, reset_period="daily"),
    "ticket": dict(target="ticket", prefix="W", date_part="yyyymmdd", separator="", field_segment="",
                   width=3, reset_period="daily"),
    "feedback": dict(target="feedback", prefix="F", date_part="yyyymmdd", separator="", field_segment="",
                     width=3, reset_period="daily"),
    "service_record": dict(target="service_record", prefix="", date_part="", separator="-",
                           field_segment="parent", width=3, reset_period="never"),
}


# -- validation (forms, seeds and the service share it) --------------------------------------

def N_(msgid: str) -> str:
    """Marks a msgid for extraction; translated later, in the reader's language."""
    return msgid


def rule_problems(values: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    """field -> (English msgid, params) for every problem of a rule's values (empty: valid)."""
    out: dict[str, tuple[str, dict]] = {}
    key = values.get("key")
    if "key" in values and not (isinstance(key, str) and _KEY_RE.match(key)):
        out["key"] = (N_("The key must start with a small letter and use only a-z, 0-9 and _ (at most 64)."), {})
    target = values.get("target")
    if target not in TARGETS:
        out["target"] = (N_("Unknown target '%(value)s': use one of %(choices)s."),
                         {"value": target or "", "choices": ", ".join(TARGETS)})
    prefix = values.get("prefix") or ""
    if not (isinstance(prefix, str) and _PREFIX_RE.match(prefix)):
        out["prefix"] = (N_("The prefix may have at most 20 letters, digits or - _ . / (no spaces)."), {})
    date_part = values.get("date_part") or ""
    if date_part not in DATE_PARTS:
        out["date_part"] = (N_("Unknown date part '%(value)s': use yyyy, yyyymm or yyyymmdd, or leave it empty."),
                            {"value": date_part})
    sep = values.get("separator") or ""
    if sep not in SEPARATORS:
        out["separator"] = (N_("Unknown separator '%(value)s': use - _ . / or nothing."), {"value": sep})
    seg = values.get("field_segment") or ""
    if seg and target in TARGETS and seg not in TARGETS[target].segments:
        allowed = ", ".join(TARGETS[target].segments) or "-"
        out["field_segment"] = (N_("Unknown field segment '%(value)s' for %(target)s: use one of %(choices)s, or leave it empty."),
                                {"value": seg, "target": target, "choices": allowed})
    width = values.get("width")
    try:
        ok = width is not None and not isinstance(width, bool) and int(width) == width and 1 <= int(width) <= MAX_WIDTH
    except (TypeError, ValueError):
        ok = False
    if not ok:
        out["width"] = (N_("The sequence width must be a whole number from 1 to %(max)s."), {"max": MAX_WIDTH})
    reset = values.get("reset_period")
    if reset not in RESET_PERIODS:
        out["reset_period"] = (N_("Unknown reset period '%(value)s': use daily, monthly, yearly or never."),
                               {"value": reset or ""})
    elif date_part in DATE_PARTS and date_part not in _RESET_NEEDS[reset]:
        out["reset_period"] = (N_("A %(reset)s reset needs a date part of at least %(need)s, or numbers would repeat."),
                               {"reset": reset, "need": {"daily": "yyyymmdd", "monthly": "yyyymm"}.get(reset, "yyyy")})
    return out


def problem_text(msgid: str, params: dict) -> str:
    return gettext(msgid, **params)


# -- formatting --------------------------------------------------------------------------------

def _now(now: datetime | None) -> datetime:
    if now is not None:
        return now
    tz = current_app.config.get("CRM_TIMEZONE") or current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai"
    return datetime.now(ZoneInfo(tz)).replace(tzinfo=None)


def period_of(reset_period: str, now: datetime) -> str:
    fmt = RESET_PERIODS[reset_period]
    return now.strftime(fmt) if fmt else "-"


def format_number(rule, now: datetime, seq: int, segment: str | None = None) -> str:
    fmt = DATE_PARTS[rule.date_part or ""]
    parts = [rule.prefix or "", now.strftime(fmt) if fmt else "", segment or "", f"{seq:0{int(rule.width)}d}"]
    sep = rule.separator or ""
    if not sep:
        return "".join(parts)
    head = [p for p in parts[:-1] if p]
    return sep.join(head + [parts[-1]])


@dataclass
class _RuleData:
    """A detached copy of a rule (or a built-in default) for one allocation."""
    key: str
    target: str
    prefix: str
    date_part: str
    separator: str
    field_segment: str
    width: int
    reset_period: str


def _rule_data(rule) -> _RuleData:
    return _RuleData(rule.key, rule.target, rule.prefix or "", rule.date_part or "", rule.separator or "",
                     rule.field_segment or "", int(rule.width), rule.reset_period)


def get_rule(rule_key: str) -> _RuleData:
    """The active rule of that key, else the built-in default of that key."""
    with db.session.no_autoflush:
        rule = db.session.execute(select(NumberingRule).where(NumberingRule.key == rule_key)).scalar_one_or_none()
    if rule is not None and rule.active:
        return _rule_data(rule)
    if rule_key in DEFAULT_RULES:
        if rule is not None:
            log.warning("numbering rule %s is inactive: using the built-in pattern", rule_key)
        return _RuleData(key=rule_key, **DEFAULT_RULES[rule_key])
    raise NumberingError(f"no active numbering rule '{rule_key}'")


def _segment_value(rule: _RuleData, record) -> str:
    if not rule.field_segment:
        return ""
    target = TARGETS.get(rule.target)
    seg = target.segments.get(rule.field_segment) if target else None
    if seg is None:
        raise NumberingError(f"numbering rule '{rule.key}': unknown field segment '{rule.field_segment}'")
    value = seg.value(record) if record is not None else None
    if not value:
        if seg.required:
            raise NumberingError(f"numbering rule '{rule.key}': the record has no {rule.field_segment}")
        return ""
    return str(value)[:64]


# -- allocation --------------------------------------------------------------------------------

def _upsert(conn: Connection, rule_key: str, period: str, scope: str, count: int = 1) -> int:
    """Bump one counter by ``count``; returns the new (last allocated) value."""
    table = SequenceCounter.__table__
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(table).values(rule_key=rule_key, period=period, scope=scope, value=count)
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.rule_key, table.c.period, table.c.scope],
                                          set_={"value": table.c.value + count}).returning(table.c.value)
        return int(conn.execute(stmt).scalar_one())
    # other engines: update, else insert (a lost insert race raises and the caller retries)
    where = (table.c.rule_key == rule_key, table.c.period == period, table.c.scope == scope)
    if conn.execute(update(table).where(*where).values(value=table.c.value + count)).rowcount:
        return int(conn.execute(select(table.c.value).where(*where)).scalar_one())
    conn.execute(insert(table).values(rule_key=rule_key, period=period, scope=scope, value=count))
    return count


def _allocator_engine() -> Engine | None:
    """A small engine of its own on the same database (None: in-memory SQLite, use the session)."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    engines = current_app.extensions.setdefault("crm_numbering_engines", {})
    key = url.render_as_string(hide_password=False)
    if key not in engines:
        engines[key] = create_engine(url, pool_size=4, max_overflow=16, pool_pre_ping=True, pool_timeout=60)
    return engines[key]


_WROTE = "crm_sqlite_wrote"
_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


@event.listens_for(Engine, "before_cursor_execute")
def _note_sqlite_write(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ARG001
    """Remember that this SQLite connection's transaction has written (so holds the write lock)."""
    if conn.dialect.name == "sqlite" and statement.lstrip()[:7].upper().startswith(_WRITE_WORDS):
        conn.info[_WROTE] = True


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _forget_sqlite_write(conn) -> None:
    conn.info.pop(_WROTE, None)


def _session_holds_sqlite_write_lock() -> bool:
    """True when the session's SQLite transaction has written, i.e. holds the write lock.

    Both must hold: the DBAPI connection is in a transaction, and a write ran in it. A
    transaction that has only read (an explicit BEGIN, or another driver mode) holds just a
    snapshot: the counter is then bumped on a connection of its own.
    """
    conn = db.session.connection()
    raw = conn.connection.dbapi_connection
    return bool(getattr(raw, "in_transaction", False)) and bool(conn.info.get(_WROTE))


def allocate(rule_key: str, period: str, scope: str = "", count: int = 1) -> int:
    """The next value of one counter (with ``count`` > 1: the last of a block of ``count``
    consecutive values), committed at once (see the module docstring)."""
    sqlite = db.engine.dialect.name == "sqlite"
    engine = _allocator_engine()
    if engine is None or (sqlite and _session_holds_sqlite_write_lock()):
        with db.session.no_autoflush:
            return _upsert(db.session.connection(), rule_key, period, scope, count)
    for attempt in range(5):
        try:
            with engine.connect() as conn:
                if sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif conn.dialect.name == "postgresql":
                    # no fsync of its own: WAL is flushed in order, so the record's (synchronous)
                    # commit makes this earlier bump durable too; a crash before that loses only
                    # a number nobody has saved yet
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                value = _upsert(conn, rule_key, period, scope, count)
                conn.commit()
                return value
        except IntegrityError:  # only the generic path can lose an insert race
            if attempt == 4:
                raise
    raise NumberingError(f"could not allocate a number for {rule_key}")  # pragma: no cover


def _exists(target: Target | None, number: str) -> bool:
    return number in _existing(target, [number])


def next_number(rule_key: str, record: Any = None, now: datetime | None = None) -> str:
    """Allocate and return the next number of rule ``rule_key`` for ``record``.

    Gap-aware: the number is committed as used before the record is saved; if the save fails,
    that number stays unused. A number that already exists in the target's table (possible only
    after an admin changed the rule's format back and forth) is skipped.
    """
    rule = get_rule(rule_key)
    now = _now(now)
    period = period_of(rule.reset_period, now)
    scope = _segment_value(rule, record)
    target = TARGETS.get(rule.target)
    for _ in range(1000):
        seq = allocate(rule.key, period, scope)
        if seq >= 10 ** rule.width:
            log.warning("numbering rule %s: sequence %s outgrew width %s", rule.key, seq, rule.width)
        number = format_number(rule, now, seq, scope)
        if not _exists(target, number):
            return number
    raise NumberingError(f"numbering rule '{rule_key}': no free number")


def next_numbers(rule_key: str, records: list[Any], now: datetime | None = None) -> list[str]:
    """Numbers for many new records at once (imports): one block per segment value, each
    allocated by one atomic upsert (``allocate`` with a count), so 100,000 customers take a
    handful of statements instead of 100,000 transactions. Same guarantees as next_number:
    unique, increasing, gaps possible; numbers already present in the table are skipped."""
    rule = get_rule(rule_key)
    now = _now(now)
    period = period_of(rule.reset_period, now)
    target = TARGETS.get(rule.target)
    by_scope: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_scope.setdefault(_segment_value(rule, record), []).append(i)
    out: list[str] = [""] * len(records)
    for scope, indexes in by_scope.items():
        last = allocate(rule.key, period, scope, len(indexes))
        numbers = [format_number(rule, now, seq, scope) for seq in range(last - len(indexes) + 1, last + 1)]
        taken = _existing(target, numbers)
        for i, number in zip(indexes, numbers):
            out[i] = number if number not in taken else next_number(rule_key, records[i], now)
    return out


def _existing(target: Target | None, numbers: list[str]) -> set[str]:
    if target is None or target.number_attr is None or not numbers:
        return set()
    import app.models as models

    model_name, column = target.number_attr
    col = getattr(getattr(models, model_name), column)
    found: set[str] = set()
    with db.session.no_autoflush:
        for start in range(0, len(numbers), 5000):
            found.update(db.session.execute(select(col).where(col.in_(numbers[start:start + 5000]))).scalars())
    return found


def preview(rule, record: Any = None, now: datetime | None = None) -> str:
    """What the next number of ``rule`` would look like now, without consuming it."""
    data = _rule_data(rule)
    now = _now(now)
    target = TARGETS.get(data.target)
    if record is not None:
        scope = _segment_value(data, record)
    elif data.field_segment and target and data.field_segment in target.segments:
        scope = target.segments[data.field_segment].example()
    else:
        scope = ""
    with db.session.no_autoflush:
        current = db.session.execute(select(SequenceCounter.value).where(
            SequenceCounter.rule_key == data.key, SequenceCounter.period == period_of(data.reset_period, now),
            SequenceCounter.scope == scope)).scalar()
    return format_number(data, now, (current or 0) + 1, scope)


def preview_key(rule_key: str, now: datetime | None = None) -> str:
    rule = get_rule(rule_key)
    return preview(rule, now=now)


# -- numbers never change ------------------------------------------------------------------------

def protect_number(model, attr: str) -> None:
    """Refuse to update ``model.attr`` once the row exists (numbers never change after creation)."""
    from sqlalchemy import inspect

    @event.listens_for(model, "before_update")
    def _immutable(mapper, connection, target) -> None:  # noqa: ARG001
        hist = inspect(target).attrs[attr].history
        if hist.deleted and hist.deleted[0] is not None and hist.added and hist.added[0] != hist.deleted[0]:
            raise NumberingError(f"{model.__name__}.{attr} cannot change ({hist.deleted[0]} -> {hist.added[0]})")


def _protect_registered() -> None:
    from app.models import Customer, Feedback, ServiceRecord, Ticket

    protect_number(Customer, "customer_no")
    protect_number(Ticket, "ticket_no")
    protect_number(ServiceRecord, "service_no")
    protect_number(Feedback, "feedback_no")


_protect_registered()
