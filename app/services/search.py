"""Customer search (检索): one box plus conditions, scoped and masked exactly like the customer
list; the look-ups behind type-ahead pickers; saved filters; archive and restore.

One box (``q``) finds a customer by a Chinese substring of its name, its pinyin initials or
full pinyin, a contact's name, a phone (full number or last four digits), the credit code or
the customer number. Every kind is an index look-up (app/services/search_keys.py). Phones are
never matched by "contains", so a user who sees masked phones cannot probe their digits.

A query is plain data (``SearchQuery.as_dict``), the same in the URL of the search page, the
API (GET /api/v1/customer/search) and a saved filter:
``{"q": "华星", "c": ["industry:eq:制造业", "total_amount:gte:10000"], "tag": ["消费能力-高"],
"notag": ["活跃度-沉睡"], "idle": 3}`` (idle: not contacted for N months)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import and_, exists, func, literal, literal_column, not_, or_, select, union, union_all
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import Contact, CrmUser, Customer, CustomerTag, Department, DictionaryItem, SavedFilter
from app.models.search import CustomerToken
from app.security import masking
from app.security.scopes import current_policy, current_user, hidden_fields, row_clause, visible
from app.services import tagging
from app.services.dedupe import normalise_credit_code, normalise_phone
from app.services.fields import (
    CHOICE_TYPES, FieldValueError, clean_value, customer_fields, extra_compare, extra_text, field_by_key,
)
from app.services.options import per_stamp
from app.services.paging import CappedCount, count_cap
from app.services.search_keys import _clean, initials_pieces, syllable_tokens, write_tokens

OPERATORS = {"eq": _l("equals"), "ne": _l("not equal"), "contains": _l("contains"),
             "gte": _l("at least"), "lte": _l("at most"), "in": _l("is one of")}
_ORDERED = {"number", "money", "integer", "date", "datetime"}
_RELATED = {"single_choice", "user", "department"}
PAGE_SIZE, MAX_PAGE_SIZE, LOOKUP_LIMIT = 50, 200, 20
RESULT_COLUMNS = ["customer_no", "name", "industry", "type", "level", "region", "owner", "phone",
                  "last_contact_at", "total_amount", "tags"]


class SearchError(ValueError):
    """Every problem of a query, each saying which condition and why."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class SearchQuery:
    q: str = ""
    conditions: list[tuple[str, str, str]] = field(default_factory=list)
    tags_in: list[str] = field(default_factory=list)
    tags_out: list[str] = field(default_factory=list)
    idle_months: int | None = None

    @classmethod
    def from_args(cls, args: Any) -> "SearchQuery":
        """From a request's args (MultiDict) or a saved dict; malformed parts raise SearchError."""
        get_list = args.getlist if hasattr(args, "getlist") else lambda k: _as_list(args.get(k))
        errors, conditions = [], []
        for n, raw in enumerate(get_list("c"), 1):
            parts = str(raw).split(":", 2)
            if len(parts) != 3 or not parts[2].strip():
                errors.append(gettext("Condition %(n)s: write field:operator:value.", n=n))
            else:
                conditions.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
        idle = str(args.get("idle") or "").strip()
        if idle and not (idle.isdigit() and 0 < int(idle) <= 600):
            errors.append(gettext("Not contacted for: give a whole number of months (1-600)."))
        if errors:
            raise SearchError(errors)
        return cls(q=str(args.get("q") or "").strip()[:100], conditions=conditions,
                   tags_in=[t for t in get_list("tag") if t], tags_out=[t for t in get_list("notag") if t],
                   idle_months=int(idle) if idle else None)

    def as_dict(self) -> dict:
        data = {"q": self.q, "c": [":".join(c) for c in self.conditions], "tag": self.tags_in,
                "notag": self.tags_out, "idle": self.idle_months}
        return {k: v for k, v in data.items() if v}

    def is_empty(self) -> bool:
        return not self.as_dict()


def _as_list(value) -> list:
    return value if isinstance(value, list) else [] if value in (None, "") else [value]


# ---- one box -------------------------------------------------------------------------------

def _prefix(column, text: str):
    """``column`` starts with ``text``, as an index range (LIKE 'x%' uses no index on PostgreSQL
    with a locale collation, nor on SQLite without case_sensitive_like)."""
    return and_(column >= text, column < text + "\uffff")


def _readings(q: str) -> list[tuple[Any, str | None]]:
    """Every reading of the one-box text ``q`` that can match, each as (a condition on Customer,
    the name token it is read from or None: see _driven): a number, a phone, a credit code, a
    Chinese piece of the name, pinyin, a contact's name. Each is an index read in id order on
    its own, so a page of the newest matches stops early; readings that cannot match (digits
    have no name piece; Chinese has no pinyin; a piece no name carries) are left out."""
    q = (q or "").strip()
    clean = _clean(q)
    readings = [(Customer.customer_no == q.upper(), None)]
    if clean.isdigit():
        if len(clean) == 4:
            readings.append(_by_contact(Contact.phone_last4 == clean))
        elif normalise_phone(q):
            readings.append(_by_contact(Contact.phone_key == normalise_phone(q)))
    code = normalise_credit_code(q)
    if code and len(code) >= 15:
        readings.append((Customer.credit_code == code, None))
    pinyin = clean.isascii() and clean.isalnum() and not clean.isdigit()  # maybe with Latin letters or digits
    # a name holding the text holds each of its pieces (two characters; initials: three letters):
    # the rarest piece's customers are read, each checked with LIKE
    pieces = {clean[i:i + 2] for i in range(len(clean) - 1)}
    initials = initials_pieces(clean) if pinyin else set()
    sizes = _sizes(pieces | initials)
    if pieces:
        token = _rarest(pieces, sizes)
        if sizes.get(token, _PROBE):  # else no name carries it (pinyin typed: Latin pieces are rare in names)
            readings.append((func.lower(Customer.name).like(f"%{_escape(clean)}%", escape="\\"), token))
    elif clean:  # one character: no token; a scan, cut short by the page limit
        readings.append((Customer.name.like(f"%{_escape(clean)}%", escape="\\"), None))
    if pinyin:
        like = f"%{clean}%"
        tokens = syllable_tokens(clean)  # full pinyin from a syllable on
        if initials and sizes.get(_rarest(initials, sizes), _PROBE):
            tokens.add(_rarest(initials, sizes))
        for token in sorted(tokens):
            readings.append((or_(Customer.name_initials.like(like), Customer.name_pinyin.like(like)), token))
        readings.append((_prefix(Customer.name_pinyin, clean), None))
    if not clean.isdigit():
        readings.append(_by_contact(_prefix(Contact.name, q)))
    return readings


def _driven(stmt, token: str | None, fenced: bool = False):
    """A reading's SELECT of customer ids (``stmt``, on Customer) joined to its name token, if it
    has one. ``fenced``: read from the token's customer ids in id order (the token index), each
    customer checked by ``stmt`` as a subquery the planner may not turn into a join (OFFSET 0),
    so a page stops early. For a wide row scope (all customers, a department): PostgreSQL
    otherwise misjudges how many customers a LIKE on the initials keeps ('%htjy%': 1 in 20 of the
    token's customers, guessed 1 in 10,000) and scans every customer instead of stopping at the
    page. SQLite's planner finds its way unfenced (fenced it loses 2x). A count line that reads
    all of a token's customers in a department (fewer than 1,000 matches) checks them one by
    one: about as slow as the scan it replaces (bench_list)."""
    if token is None:
        return stmt
    if not fenced:
        return stmt.join(CustomerToken, CustomerToken.customer_id == Customer.id).where(CustomerToken.token == token)
    return select(CustomerToken.customer_id).where(
        CustomerToken.token == token, stmt.where(Customer.id == CustomerToken.customer_id).offset(0).exists())


def _by_contact(match) -> tuple[Any, None]:  # a semi-join: two contacts of one customer may match
    return Customer.id.in_(select(Contact.customer_id).where(match)), None


_PROBE = 5_000


def _sizes(tokens: set[str]) -> dict[str, int]:
    """How many customers carry each token, counted in the database only up to _PROBE (an index
    range each), in one statement."""
    if not tokens:
        return {}
    counts = [select(literal(t).label("token"), func.count().label("n")).select_from(
        select(CustomerToken.customer_id).where(CustomerToken.token == t).limit(_PROBE).subquery())
        for t in sorted(tokens)[:12]]
    return dict(db.session.execute(union_all(*counts) if len(counts) > 1 else counts[0]).all())


def _rarest(tokens: set[str], sizes: dict[str, int]) -> str:
    """The token of ``tokens`` carried by the fewest customers (``sizes``: _sizes; a token not
    counted is taken as common). Its customers are then read in id order through the token
    index and checked one by one, stopping at the page (an IN list of a few thousand ids
    instead cost 40-50 % of the search page, measured at 1,000,000 customers on both engines)."""
    return min(tokens, key=lambda t: (sizes.get(t, _PROBE), t))


def text_match_ids(q: str):
    """A SELECT of customer ids matching the one-box text ``q``, or None for an empty box."""
    if not (q or "").strip():
        return None
    return union(*(_driven(select(Customer.id).where(match), token) for match, token in _readings(q)))


def matching_ids(q: str, clauses: list, tag_ids: list[int], limit: int) -> list[int]:
    """The first ``limit`` ids (newest first) of customers meeting ``clauses``, carrying every
    tag of ``tag_ids`` and matching the box text ``q`` in any reading: each reading read in id
    order up to ``limit``, then merged (a customer found by two readings counts once). Fewer
    than ``limit`` ids means every match was read. A staff user's own customers (a few
    thousand, from the owner's index, which both engines read first) are read once, checked
    against every reading at a time: one pass instead of one per reading (staff pinyin
    initials at 1,000,000 customers on SQLite: three passes of 3 ms)."""
    postgresql, own = db.engine.dialect.name == "postgresql", current_policy().scope == "own"
    readings = _readings(q) if (q or "").strip() else [(None, None)]
    one_pass = own and len(readings) > 1
    if one_pass:
        readings = [(or_(*(match for match, _token in readings)), None)]
    fenced = postgresql and not own  # see _driven
    pages = []
    for match, token in readings:
        stmt = select(Customer.id) if match is None else select(Customer.id).where(match)
        order = Customer.id if token is None else CustomerToken.customer_id
        if one_pass:  # the owner's matches all read, then sorted: PostgreSQL would otherwise walk the
            order = Customer.id + literal_column("0")  # id index backwards for the first few (200 ms against 6)
        for tag_id in tag_ids:  # a join per tag: the tag index (tag_id, customer_id) read in id order
            if postgresql and own:
                # a staff user's own customers (a few thousand, from the owner's index) each
                # probed per tag; fenced (OFFSET 0), or PostgreSQL merge-joins the whole tag index
                # in id order (21 ms against 5 at 1,000,000 customers)
                stmt = stmt.where(select(CustomerTag.id).where(CustomerTag.customer_id == Customer.id,
                                                               CustomerTag.tag_id == tag_id).offset(0).exists())
                continue
            link = aliased(CustomerTag)
            stmt = stmt.join(link, and_(link.customer_id == Customer.id, link.tag_id == tag_id))
            if order is Customer.id:
                order = link.customer_id
        pages.append(_driven(stmt.where(*clauses), token, fenced).order_by(order.desc()).limit(limit))
    if len(pages) > 1:  # one statement: each reading its own limited subquery
        pages = [union_all(*(select(*page.subquery().c) for page in pages))]
    return sorted(set(db.session.scalars(pages[0])), reverse=True)[:limit]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- conditions ----------------------------------------------------------------------------

def _label(spec) -> str:
    return str(spec.label)


def _parse_value(spec, raw: str, where: str):
    try:
        if spec.type in ("number", "money"):
            return Decimal(raw.replace(",", ""))
        if spec.type == "integer":
            return int(raw)
        if spec.type in ("date", "datetime"):
            value = date.fromisoformat(raw[:10])
            return datetime.combine(value, datetime.min.time()) if spec.type == "datetime" else value
    except (InvalidOperation, ValueError):
        raise SearchError([gettext("%(where)s: %(value)s is not a valid %(kind)s.", where=where, value=raw,
                                   kind=gettext("date (YYYY-MM-DD)") if "date" in spec.type else gettext("number"))])
    return raw


def _related_ids(spec, value: str):
    if spec.type == "single_choice":
        return select(DictionaryItem.id).where(DictionaryItem.type_key == spec.dictionary, or_(
            DictionaryItem.name == value, DictionaryItem.name_en == value, DictionaryItem.code == value))
    if spec.type == "user":
        return select(CrmUser.id).where(or_(CrmUser.username == value, CrmUser.last_name + CrmUser.first_name == value,
                                            CrmUser.first_name + " " + CrmUser.last_name == value))
    return select(Department.id).where(or_(Department.name == value, Department.key == value,
                                           Department.name_en == value))


def allowed_ops(spec) -> list[str]:
    """The operators a condition on ``spec`` takes (in OPERATORS order): equals / not equal for
    every field; contains for text (not for values masked from the user); at least / at most for
    numbers, amounts and dates; is one of (comma separated) for choices; a multiple choice
    "equals" a value it includes."""
    allowed = {"eq", "ne"} | ({"gte", "lte"} if spec.type in _ORDERED else set()) | \
        ({"contains"} if spec.type in ("text", "long_text") and not _probe_guarded(spec.key) else set()) | \
        ({"in"} if spec.type in CHOICE_TYPES else set())
    return [o for o in OPERATORS if o in allowed]


def _split(raw: str) -> list[str]:
    """Values of "is one of": comma separated (not 、, which dictionary names contain: 农、林、牧、渔业)."""
    return [v.strip() for v in raw.replace("，", ",").split(",") if v.strip()]


def condition_clause(key: str, op: str, raw: str, n: int = 1):
    """The SQL condition for one condition row (n numbers it in messages)."""
    spec = field_by_key(key)
    where = gettext("Condition %(n)s", n=n)
    if spec is None or key in hidden_fields() or (spec.custom and not spec.searchable):
        raise SearchError([gettext("%(where)s: there is no field %(field)s you may search.", where=where, field=key)])
    where = f"{where} ({_label(spec)})"
    allowed = allowed_ops(spec)
    if op not in allowed:
        names = "、".join(str(OPERATORS[o]) for o in allowed)
        raise SearchError([gettext("%(where)s: use one of %(ops)s.", where=where, ops=names)])
    if spec.custom:
        return _custom_clause(spec, op, raw, where)
    column = getattr(Customer, key)
    if spec.type in _RELATED:
        fk = getattr(Customer, f"{key}_id")
        ids = []
        for value in _split(raw) if op == "in" else [raw]:
            ids.append(_related_ids(spec, value))
            if db.session.execute(ids[-1].limit(1)).first() is None:
                raise SearchError([gettext("%(where)s: no such value: %(value)s.", where=where, value=value)])
        ids = union(*ids) if len(ids) > 1 else ids[0]
        return or_(fk.is_(None), fk.not_in(ids)) if op == "ne" else fk.in_(ids)
    value = _parse_value(spec, raw, where)
    if key == "credit_code":
        value = normalise_credit_code(value) or value
    if op == "eq":
        if spec.type == "datetime":
            return and_(column >= value, column < value + timedelta(days=1))
        return column == value
    if op == "ne":
        return or_(column.is_(None), column != value)
    if op == "contains":
        return column.like(f"%{_escape(value)}%", escape="\\")
    if op == "gte":
        return column >= value
    return column < value + timedelta(days=1) if spec.type == "datetime" else column <= value


def _custom_clause(spec, op: str, raw: str, where: str):
    """A condition on an admin-defined field (its value in Customer.extra), the value checked
    like a stored one (clean_value: numbers, amounts, dates, choices by code or name)."""
    expr = extra_text(spec.key)
    if op == "contains":
        return func.lower(expr).like(f"%{_escape(raw.lower())}%", escape="\\")
    try:
        values = [clean_value(replace(spec, required=False), v) for v in (_split(raw) if op == "in" else [raw])]
    except FieldValueError as exc:
        raise SearchError([gettext("%(where)s: %(problem)s", where=where, problem=str(exc))]) from None
    values = [v[0] if isinstance(v, list) else v for v in values if v not in (None, [])]
    if not values:
        raise SearchError([gettext("%(where)s: give a value.", where=where)])
    if spec.type == "multi_choice":  # includes the value (any of them for "is one of")
        match = or_(*(expr.like(f'%"{_escape(v)}"%', escape="\\") for v in values))
    elif op == "in":
        match = expr.in_(values)
    elif spec.type in ("number", "money"):
        number = Decimal(values[0])
        match = {"eq": extra_compare(spec) == number, "ne": extra_compare(spec) == number,
                 "gte": extra_compare(spec) >= number, "lte": extra_compare(spec) <= number}[op]
    elif spec.type in CHOICE_TYPES or spec.type == "date":
        match = {"eq": expr == values[0], "ne": expr == values[0],
                 "gte": expr >= values[0], "lte": expr <= values[0]}[op]
    else:  # text: equals ignores case
        match = func.lower(expr) == values[0].lower()
    return or_(expr.is_(None), not_(match)) if op == "ne" else match


def _probe_guarded(key: str) -> bool:
    """Masked values may not be searched by pieces by someone who only sees them masked."""
    return key in masking.MASKED_FIELDS["customer"] and not masking.may_view_full()


def _tag_ids(labels: list[str], errors: list[str]) -> list[int]:
    ids = []
    for label in labels:
        try:
            found = tagging.tag_id(label)
        except tagging.TagError:
            found = None
        if found is None:
            errors.append(gettext("No such tag: %(tag)s.", tag=label))
        else:
            ids.append(found)
    return ids


def customer_filter(query: SearchQuery) -> list:
    """Every SQL condition of a query, row scope and "not archived" included."""
    clauses, tag_ids = _filter_parts(query)
    ids = text_match_ids(query.q)
    clauses += [Customer.id.in_(ids)] if ids is not None else []
    return clauses + [exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == t) for t in tag_ids]


def _filter_parts(query: SearchQuery) -> tuple[list, list[int]]:
    """The SQL conditions of a query but its box text and the tags it must carry, and the ids of
    those tags (read as joins on the tag index by matching_ids)."""
    clauses = [Customer.archived.is_(False), row_clause(Customer)]
    errors: list[str] = []
    for n, (key, op, raw) in enumerate(query.conditions, 1):
        try:
            clauses.append(condition_clause(key, op, raw, n))
        except SearchError as exc:
            errors += exc.errors
    tag_ids = _tag_ids(query.tags_in, errors)
    for tag_id in _tag_ids(query.tags_out, errors):
        clauses.append(not_(exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == tag_id)))
    if query.idle_months:
        since = datetime.utcnow() - timedelta(days=round(query.idle_months * 30.4375))
        # never contacted (NULL) counts as idle; written so that no index is used: most customers
        # match, so reading in id order finds a page at once (an index on the date would
        # collect every match first, then sort them: 15 s at 1,000,000 on SQLite)
        clauses.append(func.coalesce(Customer.last_contact_at, _NEVER) < since)
    if errors:
        raise SearchError(errors)
    return clauses, tag_ids


_NEVER = datetime(1900, 1, 1)


@dataclass
class SearchPage:
    count: int  # capped (app/services/paging.py): a CappedCount reads "1,000+"
    page: int
    page_size: int
    columns: list[str]
    rows: list[dict]  # display values (masked), plus "id"


def search(query: SearchQuery, page: int = 0, page_size: int = PAGE_SIZE, count: bool = True) -> SearchPage:
    """One page of the customers matching ``query``, newest first, scoped and masked. Counted up
    to the cap past the page (app/services/paging.py); with ``count=False`` only as far as the
    page ("50+" says there is a next page: the search page asks ``count_matches`` apart)."""
    page_size = max(1, min(int(page_size or PAGE_SIZE), MAX_PAGE_SIZE))
    page = max(0, int(page or 0))
    clauses, tag_ids = _filter_parts(query)
    offset = page * page_size
    reach = max(count_cap(), page_size) if count else page_size
    ids = matching_ids(query.q, clauses, tag_ids, offset + reach + 1)
    page_ids = ids[offset:offset + page_size]
    columns = visible(RESULT_COLUMNS)
    return SearchPage(_capped(len(ids), offset + (count_cap() if count else page_size)), page, page_size, columns,
                      _page_rows(page_ids, columns, query.q))


def count_matches(query: SearchQuery, page: int = 0, page_size: int = PAGE_SIZE) -> int:
    """How many customers ``query`` finds, counted no further than the cap past the page."""
    page_size = max(1, min(int(page_size or PAGE_SIZE), MAX_PAGE_SIZE))
    offset = max(0, int(page or 0)) * page_size
    clauses, tag_ids = _filter_parts(query)
    return _capped(len(matching_ids(query.q, clauses, tag_ids, offset + count_cap() + 1)), offset + count_cap())


def _capped(found: int, shown: int) -> int:
    return CappedCount(shown) if found > shown else found


_DICTIONARY_COLUMNS = ("industry", "type", "level", "region")
_ROW_COLUMNS = (Customer.id, Customer.customer_no, Customer.name, Customer.owner_id, Customer.last_contact_at,
                Customer.total_amount, *(getattr(Customer, f"{c}_id") for c in _DICTIONARY_COLUMNS))
_CONTACT_COLUMNS = (Contact.customer_id, Contact.id, Contact.name, Contact.phone, Contact.phone_key,
                    Contact.phone_last4, Contact.is_primary)


def _dictionary_labels() -> dict[int, str]:
    """Every dictionary item's label in the page's language (a few hundred), per process."""
    return per_stamp("dictionary labels", lambda: {i.id: str(i) for i in db.session.query(DictionaryItem)})


def _page_rows(ids: list[int], columns: list[str], q: str) -> list[dict]:
    """The result rows of the customers ``ids`` (newest first), phones masked for everybody as
    in lists (RESULT_COLUMNS holds no other masked field: a credit code would need the
    customer's kind to know whether it is an ID number). Plain rows: one query for the
    customers, one for their contacts, one for their owners and one for their tags (ORM
    objects were most of a search page's time)."""
    if not ids:
        return []
    from app.views.formatting import fmt_datetime, fmt_money

    rows = db.session.execute(select(*_ROW_COLUMNS).where(Customer.id.in_(ids)).order_by(Customer.id.desc())).all()
    contacts: dict[int, list] = {}
    for c in db.session.execute(select(*_CONTACT_COLUMNS).where(Contact.customer_id.in_(ids))):
        contacts.setdefault(c.customer_id, []).append(c)
    owner_ids = {r.owner_id for r in rows if r.owner_id is not None}
    owners = {u.id: repr(u) for u in db.session.scalars(select(CrmUser).where(CrmUser.id.in_(owner_ids)))} \
        if "owner" in columns and owner_ids else {}
    tags = tagging.tags_of_page(ids) if "tags" in columns else {}
    labels, out = _dictionary_labels(), []
    for r in rows:
        contact = _shown_contact(contacts.get(r.id, []), q)
        values = {
            "id": r.id, "customer_no": r.customer_no, "name": r.name,
            **{c: labels.get(getattr(r, f"{c}_id"), "") for c in _DICTIONARY_COLUMNS},
            "owner": owners.get(r.owner_id, ""),
            "phone": masking.mask("phone", contact.phone) if contact is not None else "",
            "contact": contact.name if contact is not None else "",
            "last_contact_at": fmt_datetime(r.last_contact_at), "total_amount": fmt_money(r.total_amount),
            "tags": [tag.label for tag in tags.get(r.id, [])],
        }
        out.append({k: v for k, v in values.items() if k in columns or k in ("id", "contact")})
    return out


def _shown_contact(contacts: list, q: str):
    """The contact whose phone matched the box, else the primary (or first) contact."""
    digits = _clean(q)
    contacts = sorted(contacts, key=lambda c: (not c.is_primary, c.id))
    if digits.isdigit():
        for c in contacts:
            if c.phone_key and (c.phone_last4 == digits or c.phone_key == normalise_phone(q)):
                return c
    return contacts[0] if contacts else None


# ---- type-ahead look-ups ---------------------------------------------------------------------

def lookup_customers(q: str, limit: int = LOOKUP_LIMIT) -> list[dict]:
    """At most ``limit`` customers in the user's scope (archived ones left out) for a picker."""
    ids = matching_ids(q, [Customer.archived.is_(False), row_clause(Customer)], [], limit)
    rows = db.session.execute(select(Customer.id, Customer.name, Customer.customer_no).where(Customer.id.in_(ids))
                              .order_by(Customer.id.desc())).all() if ids else []
    return [{"id": r.id, "text": f"{r.name} ({r.customer_no})", "name": r.name, "customer_no": r.customer_no}
            for r in rows]


def lookup_users(q: str, limit: int = LOOKUP_LIMIT) -> list[dict]:
    """At most ``limit`` active people (not the system user) whose user name or name matches."""
    clauses = [CrmUser.active.is_(True), CrmUser.is_system.is_(False)]
    q = (q or "").strip()
    if q:
        clauses.append(CrmUser.id.in_(user_ids_matching(q)))
    users = db.session.execute(select(CrmUser).where(*clauses).order_by(CrmUser.username).limit(limit)).scalars()
    return [{"id": u.id, "text": f"{u!r} ({u.username})", "username": u.username} for u in users]


def lookup_contacts(customer_id: int | None, q: str, limit: int = LOOKUP_LIMIT) -> list[dict]:
    """At most ``limit`` contacts of one customer (in the user's scope, not archived) whose name
    starts with ``q``: the interaction form's contact picker, never every contact."""
    if not customer_id:
        return []
    clauses = [Contact.customer_id == customer_id, row_clause(Contact),
               Contact.customer_id.in_(select(Customer.id).where(Customer.id == customer_id,
                                                                 Customer.archived.is_(False)))]
    if (q or "").strip():
        clauses.append(_prefix(Contact.name, q.strip()))
    rows = db.session.execute(select(Contact.id, Contact.name, Contact.title).where(*clauses)
                              .order_by(Contact.is_primary.desc(), Contact.name).limit(limit)).all()
    return [{"id": r.id, "text": f"{r.name} {r.title or ''}".strip()} for r in rows]


def user_ids_matching(text: str):
    """A SELECT of the ids of users whose user name or name contains ``text``."""
    like = f"%{_escape(text.strip().lower())}%"
    return select(CrmUser.id).where(or_(func.lower(CrmUser.username).like(like, escape="\\"),
                                        (CrmUser.last_name + CrmUser.first_name).like(like, escape="\\"),
                                        func.lower(CrmUser.first_name + " " + CrmUser.last_name).like(like, escape="\\")))


# ---- saved filters --------------------------------------------------------------------------

def saved_filters(user=None) -> list[SavedFilter]:
    """The user's own filters and those shared with the user's department."""
    user = user or current_user()
    shared = and_(SavedFilter.shared.is_(True), SavedFilter.department_id == user.department_id) \
        if user.department_id is not None else False
    return db.session.query(SavedFilter).filter(or_(SavedFilter.owner_id == user.id, shared)) \
        .order_by(SavedFilter.name).all()


def save_filter(name: str, query: SearchQuery, shared: bool, user=None) -> SavedFilter:
    """Save (or overwrite) the user's filter called ``name``."""
    user = user or current_user()
    name = (name or "").strip()
    errors = []
    if not name or len(name) > 100:
        errors.append(gettext("Filter name: give a name of 1 to 100 characters."))
    if query.is_empty():
        errors.append(gettext("There is nothing to save: the search is empty."))
    if shared and user.department_id is None:
        errors.append(gettext("You belong to no department to share the filter with."))
    if errors:
        raise SearchError(errors)
    customer_filter(query)  # refuses a query this user could not run
    item = db.session.query(SavedFilter).filter_by(owner_id=user.id, name=name).first() or \
        SavedFilter(owner_id=user.id, name=name)
    item.query = json.dumps(query.as_dict(), ensure_ascii=False)
    item.shared, item.department_id = bool(shared), user.department_id
    db.session.add(item)
    db.session.commit()
    return item


def delete_filter(filter_id: int, user=None) -> bool:
    user = user or current_user()
    item = db.session.query(SavedFilter).filter_by(id=filter_id, owner_id=user.id).first()
    if item is None:
        return False
    db.session.delete(item)
    db.session.commit()
    return True


def filter_query(item: SavedFilter) -> SearchQuery:
    return SearchQuery.from_args(json.loads(item.query))


# ---- archive --------------------------------------------------------------------------------

def set_archived(customers: list[Customer], archived: bool) -> int:
    """Archive (or restore) customers; recorded in field history. Nothing is deleted."""
    changed = [c for c in customers if c is not None and bool(c.archived) != archived]
    for c in changed:
        c.archived = archived
    db.session.commit()
    return len(changed)


# ---- keys of existing rows --------------------------------------------------------------------

def reindex(only_missing: bool = True, batch: int = 2000) -> int:
    """(Re)build the search keys of customers (after the migration, or a bulk load that
    bypassed the ORM) and contacts; returns how many customers were done. A full run
    (``only_missing=False``) also removes the tokens of customers that no longer exist."""
    from app.services.search_keys import pinyin_keys

    if not only_missing:
        tokens = CustomerToken.__table__
        db.session.execute(tokens.delete().where(tokens.c.customer_id.notin_(select(Customer.id))))

    done, last = 0, 0
    while True:
        stmt = select(Customer.id, Customer.name).where(Customer.id > last).order_by(Customer.id).limit(batch)
        if only_missing:
            stmt = stmt.where(Customer.name_initials.is_(None))
        rows = db.session.execute(stmt).all()
        if not rows:
            break
        keyed = [(r.id, r.name, *pinyin_keys(r.name)) for r in rows]
        conn = db.session.connection()
        for cid, _name, full, initials in keyed:
            conn.execute(Customer.__table__.update().where(Customer.id == cid)
                         .values(name_pinyin=full, name_initials=initials))
        write_tokens(conn, [(cid, name, initials) for cid, name, _f, initials in keyed])
        db.session.commit()
        done, last = done + len(rows), rows[-1].id
    for contact in db.session.query(Contact).filter(Contact.phone_key.isnot(None), Contact.phone_last4.is_(None)):
        contact.phone_last4 = contact.phone_key[-4:]
    db.session.commit()
    return done


def condition_fields() -> list:
    """The fields a condition row offers this user: the catalogue minus hidden fields, with the
    admin-defined fields marked searchable (可筛选)."""
    hidden = hidden_fields()
    return [s for s in customer_fields() if s.key not in hidden and (s.searchable or not s.custom)]


def filter_query_safe(item: SavedFilter) -> SearchQuery:
    """A saved filter's query; an unreadable one gives the empty query."""
    try:
        return filter_query(item)
    except (SearchError, ValueError):
        return SearchQuery()
