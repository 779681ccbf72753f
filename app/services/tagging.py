"""Tagging (打标签): parse 维度-值 labels, create free tags, add and remove a customer's tags.

One call is one unit of work: it validates, then commits once (or raises ``TagError`` with a
message for the user and writes nothing). Views built on FAB's own add/delete use the
helpers without commit (``resolve_tag``, ``duplicate_message``) and let FAB commit.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from flask_babel import get_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models.tag import SOURCE_MANUAL, SOURCE_RULE, TAG_SEPARATOR, CustomerTag, Tag, TagDimension
from app.services.options import options_stamp

SOURCES = (SOURCE_MANUAL, SOURCE_RULE)


class TagError(ValueError):
    """A tag request the user must correct; ``str()`` is the translated message."""


class TagLabel(NamedTuple):
    """A tag as pages show it: 维度-值 in the page's language."""
    id: int
    label: str


class _TagTable(NamedTuple):
    labels: dict[int, TagLabel]  # every tag
    ids: dict[tuple[str, str], int]  # (dimension, value), by their Chinese or English names -> tag id
    active: list[str]  # the active tags' labels, in the pickers' order (dimension, then tag)


_tables: dict[tuple[str, str], _TagTable] = {}  # per process: (options stamp, language) -> tags


def _tag_table(fresh: bool = False) -> _TagTable:
    key = (options_stamp(), str(get_locale()))
    table = None if fresh else _tables.get(key)
    if table is None:
        if len(_tables) >= 8:
            _tables.clear()
        tags = db.session.query(Tag).options(joinedload(Tag.dimension)).order_by(Tag.id).all()  # dozens, hundreds at most
        ids: dict[tuple[str, str], int] = {}
        for t in tags:
            for dim in (t.dimension.name, t.dimension.name_en):
                for value in (t.name, t.name_en):
                    if dim and value:
                        ids.setdefault((dim, value), t.id)
        active = sorted((t for t in tags if t.active and t.dimension.active),
                        key=lambda t: (t.dimension.sort, t.dimension.id, t.sort, t.id))
        table = _tables[key] = _TagTable({t.id: TagLabel(t.id, t.label) for t in tags}, ids, [t.label for t in active])
    return table


def active_labels() -> list[str]:
    """The active tags' labels (维度-值 in the page's language), as the tag pickers list them."""
    return _tag_table().active


def tag_id(text: str) -> int | None:
    """The id of the tag named 维度-值 (Chinese or English names), or None; TagError if ``text``
    is not written 维度-值. From the per-process table (read again once on a miss: a tag made
    by another process since the stamp was read)."""
    key = parse_label(text)
    found = _tag_table().ids.get(key)
    return found if found is not None else _tag_table(fresh=True).ids.get(key)


def tags_of_page(ids: list[int]) -> dict[int, list[TagLabel]]:
    """A page of customers' tags, each customer's in the order they were put on: the (customer,
    tag) pairs by one plain query, the labels from a per-process table of every tag (kept
    under the option tables' stamp, app/services/options.py), instead of an ORM object per tag
    link (250 on a page of 50 customers: most of a list or search page's loading time).
    Customers without tags are left out."""
    if not ids:
        return {}
    pairs = db.session.execute(select(CustomerTag.customer_id, CustomerTag.tag_id)
                               .where(CustomerTag.customer_id.in_(ids)).order_by(CustomerTag.id)).all()
    labels = _tag_table().labels
    if any(t not in labels for _, t in pairs):  # a tag made by another process since the stamp
        labels = _tag_table(fresh=True).labels
    found: dict[int, list[TagLabel]] = {}
    for customer_id, tag_id in pairs:
        if tag_id in labels:
            found.setdefault(customer_id, []).append(labels[tag_id])
    return found


def parse_label(text: str | None) -> tuple[str, str]:
    """'区域-华东' -> ('区域', '华东'): split at the first '-' (full-width '－' accepted too)."""
    raw = (text or "").strip().replace("－", TAG_SEPARATOR)
    dim, sep, value = raw.partition(TAG_SEPARATOR)
    dim, value = dim.strip(), value.strip()
    if not sep or not dim or not value:
        raise TagError(gettext("A free tag is written dimension-value, e.g. 区域-华东; got \"%(text)s\".",
                               text=raw))
    if len(dim) > 50 or len(value) > 50:
        raise TagError(gettext("A tag dimension or value has at most 50 characters."))
    return dim, value


def find_tag(text: str) -> Tag | None:
    """The tag named 维度-值 (Chinese or English names), or None."""
    dim, value = parse_label(text)
    q = (db.session.query(Tag).join(TagDimension)
         .filter((TagDimension.name == dim) | (TagDimension.name_en == dim))
         .filter((Tag.name == value) | (Tag.name_en == value)))
    return q.first()


def get_or_create_tag(text: str) -> Tag:
    """The tag named 维度-值, creating the dimension and/or value when missing (flushed, not committed)."""
    found = find_tag(text)
    if found is not None:
        return found
    dim_name, value = parse_label(text)
    dim = db.session.query(TagDimension).filter(
        (TagDimension.name == dim_name) | (TagDimension.name_en == dim_name)).first()
    if dim is None:
        dim = TagDimension(key=f"free-{uuid.uuid4().hex[:12]}", name=dim_name, sort=1000, active=True)
        db.session.add(dim)
        db.session.flush()
    tag = Tag(dimension=dim, name=value, sort=1000, active=True)
    db.session.add(tag)
    db.session.flush()
    return tag


def duplicate_message(customer_id: int | None, tag: Tag | None) -> str | None:
    """The polite refusal when the customer already carries the tag, else None."""
    if customer_id is None or tag is None or tag.id is None:
        return None
    exists = db.session.query(CustomerTag.id).filter_by(customer_id=customer_id, tag_id=tag.id).first()
    if exists:
        return gettext("This customer already has the tag %(tag)s.", tag=tag.label)
    return None


def add_tag(customer_id: int, tag: Tag | str, user_id: int | None, *, source: str = SOURCE_MANUAL,
            rule_id: int | None = None, create: bool = False) -> CustomerTag:
    """Put a tag (a Tag or a 维度-值 label) on a customer and commit; TagError when refused."""
    from app.models import Customer

    try:
        if source not in SOURCES:
            raise TagError(gettext("Unknown tag source %(source)s.", source=source))
        if db.session.get(Customer, customer_id) is None:
            raise TagError(gettext("No such customer."))
        if isinstance(tag, str):
            tag = get_or_create_tag(tag) if create else find_tag(tag)
            if tag is None:
                raise TagError(gettext("No such tag. Only administrators may create new tags."))
        message = duplicate_message(customer_id, tag)
        if message:
            raise TagError(message)
        link = CustomerTag(customer_id=customer_id, tag_id=tag.id, source=source, rule_id=rule_id,
                           tagged_by_id=user_id, tagged_at=datetime.utcnow())
        db.session.add(link)
        db.session.commit()
        return link
    except Exception:
        db.session.rollback()
        raise


def remove_tag(link_id: int) -> bool:
    """Take a tag off a customer; False when there was no such link."""
    link = db.session.get(CustomerTag, link_id)
    if link is None:
        return False
    db.session.delete(link)
    db.session.commit()
    return True


def tags_of(customer) -> list[dict]:
    """A customer's tags as plain data (REST answers)."""
    return [{"id": link.id, "tag_id": link.tag_id, "label": link.tag.label,
             "dimension": link.tag.dimension.name, "value": link.tag.name, "source": link.source,
             "rule_id": link.rule_id,
             "tagged_by": link.tagged_by.username if link.tagged_by is not None else None,
             "tagged_at": link.tagged_at.isoformat(timespec="seconds") if link.tagged_at else None}
            for link in customer.tag_links]


def tag_ids(values) -> list[int]:
    """Tag ids from ids or 维度-值 labels (a list, or one comma-separated string); TagError on an
    unknown label, naming it."""
    if isinstance(values, (str, int)):
        values = [values]
    out: list[int] = []
    for value in values or []:
        for part in str(value).replace("，", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if part.isdigit():
                out.append(int(part))
                continue
            tag = find_tag(part)
            if tag is None:
                raise TagError(gettext("No such tag: %(tag)s.", tag=part))
            out.append(tag.id)
    return out


def tag_clause(include_all=(), include_any=(), exclude=()):
    """The SQL condition on Customer for tag filters: every tag of ``include_all`` AND at least one
    of ``include_any`` AND none of ``exclude`` (ids or 维度-值 labels). Each part is an EXISTS on
    crm_customer_tag (fast for the first page, see bench notes); empty parts add nothing."""
    from sqlalchemy import and_, exists, true

    from app.models import Customer

    def carries(ids):
        return exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id.in_(ids))

    parts = [carries([t]) for t in tag_ids(include_all)]
    any_ids = tag_ids(include_any)
    if any_ids:
        parts.append(carries(any_ids))
    not_ids = tag_ids(exclude)
    if not_ids:
        parts.append(~carries(not_ids))
    return and_(*parts) if parts else true()
