"""The monthly tag audit (每月标签核查): a round per department and month lists every tag of the
department's customers with its evidence; supervisors confirm, remove or change tags in bulk;
conflicting (two values of a one-value dimension) and unused tags are flagged; closing writes a
summary admins read later. A tag removed here is held back from the rules (TagSuppression).

Each call validates, then commits once, or raises ``AuditError`` and writes nothing.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime

from flask import current_app
from flask_babel import gettext
from sqlalchemy import Integer, cast, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import Customer, CustomerTag, Department, Interaction, Tag, TagDimension
from app.models.tag import (
    SOURCE_MANUAL, TagAuditItem, TagAuditRound, TagChange, TaggingRule, TagSuppression,
)
from app.security.scopes import department_clause

DECISIONS = ("confirm", "remove", "change")
PAGE_SIZE = 100


class AuditError(ValueError):
    """An audit request the user must correct; ``str()`` is the translated message."""


def is_admin(user) -> bool:
    admin_role = current_app.config.get("AUTH_ROLE_ADMIN")
    return any(r.name == admin_role for r in getattr(user, "roles", []) or [])


def departments_for(user) -> list[Department]:
    """The departments whose rounds the user runs: every one for admins, else their own."""
    if is_admin(user):
        return db.session.query(Department).order_by(Department.id).all()
    dept = db.session.get(Department, user.department_id) if getattr(user, "department_id", None) else None
    return [dept] if dept is not None else []


def rounds_for(user):
    ids = [d.id for d in departments_for(user)]
    return (db.session.query(TagAuditRound).filter(TagAuditRound.department_id.in_(ids))
            .order_by(TagAuditRound.month.desc(), TagAuditRound.department_id))


def get_round(round_id: int, user) -> TagAuditRound | None:
    """The round, or None when missing or of a department the user does not audit."""
    rnd = db.session.get(TagAuditRound, round_id)
    if rnd is None or rnd.department_id not in {d.id for d in departments_for(user)}:
        return None
    return rnd


def _conflict(link=CustomerTag):
    """The link shares its customer with another tag of the same one-value dimension."""
    other, other_tag = aliased(CustomerTag), aliased(Tag)
    return exists().where(other.customer_id == link.customer_id, other.tag_id != link.tag_id,
                          other_tag.id == other.tag_id, other_tag.dimension_id == Tag.dimension_id,
                          TagDimension.exclusive.is_(True))


def open_round(department_id: int, month: str, user) -> TagAuditRound:
    """Open the department's round for the month (YYYY-MM), listing every tag its customers carry."""
    try:
        datetime.strptime(month or "", "%Y-%m")
    except ValueError:
        raise AuditError(gettext("Month: write it as YYYY-MM, e.g. 2024-05.")) from None
    if department_id not in {d.id for d in departments_for(user)}:
        raise AuditError(gettext("Department: you may only audit your own department."))
    if db.session.query(TagAuditRound.id).filter_by(department_id=department_id, month=month).first():
        raise AuditError(gettext("The round for this department and month is already open; continue it."))
    try:
        rnd = TagAuditRound(department_id=department_id, month=month, status="open", opened_by_id=user.id,
                            opened_at=datetime.now())
        db.session.add(rnd)
        db.session.flush()
        cols = ["round_id", "customer_id", "tag_id", "source", "rule_id", "tagged_by_id", "tagged_at", "conflict"]
        rows = (select(cast(literal(rnd.id), Integer), CustomerTag.customer_id, CustomerTag.tag_id, CustomerTag.source,
                       CustomerTag.rule_id, CustomerTag.tagged_by_id, CustomerTag.tagged_at, _conflict())
                .join(Customer, Customer.id == CustomerTag.customer_id)
                .join(Tag, Tag.id == CustomerTag.tag_id).join(TagDimension, TagDimension.id == Tag.dimension_id)
                .where(department_clause(department_id), Customer.archived.is_(False)))
        db.session.execute(insert(TagAuditItem).from_select(cols, rows))
        db.session.commit()
        return rnd
    except Exception:
        db.session.rollback()
        raise


def progress(rnd: TagAuditRound) -> dict[str, int]:
    total, checked, conflicts = db.session.execute(
        select(func.count(), func.count(TagAuditItem.decision),
               func.coalesce(func.sum(cast(TagAuditItem.conflict, Integer)), 0))
        .where(TagAuditItem.round_id == rnd.id)).one()
    return {"total": total, "checked": checked, "conflicts": int(conflicts)}


def unused_tags(rnd: TagAuditRound) -> list[str]:
    """Active tags none of the department's customers carries."""
    used = (select(CustomerTag.tag_id).join(Customer, Customer.id == CustomerTag.customer_id)
            .where(department_clause(rnd.department_id)))
    tags = (db.session.query(Tag).join(TagDimension)
            .filter(Tag.active.is_(True), TagDimension.active.is_(True), Tag.id.not_in(used))
            .order_by(TagDimension.sort, Tag.sort, Tag.id))
    return [t.label for t in tags]


def items_page(rnd: TagAuditRound, page: int = 0, only: str = "") -> tuple[list[dict], int]:
    """One page of the round's items with their evidence: (rows, number of matching items)."""
    from app.extensions import appbuilder
    from app.services.tag_rules import describe

    q = db.session.query(TagAuditItem).filter(TagAuditItem.round_id == rnd.id)
    if only == "unchecked":
        q = q.filter(TagAuditItem.decision.is_(None))
    elif only == "checked":  # who decided what so far, without paging through the whole round
        q = q.filter(TagAuditItem.decision.is_not(None))
    elif only == "conflict":
        q = q.filter(TagAuditItem.conflict.is_(True))
    count = q.count()
    items = q.order_by(TagAuditItem.customer_id, TagAuditItem.id).offset(page * PAGE_SIZE).limit(PAGE_SIZE).all()
    cids = {i.customer_id for i in items}
    customers = {c.id: c for c in db.session.query(Customer).filter(Customer.id.in_(cids))}
    last = dict(db.session.execute(select(Interaction.customer_id, func.max(Interaction.occurred_at))
                                   .where(Interaction.customer_id.in_(cids)).group_by(Interaction.customer_id)).all())
    tags = {t.id: t for t in db.session.query(Tag).filter(
        Tag.id.in_({i.tag_id for i in items} | {i.new_tag_id for i in items if i.new_tag_id}))}
    rules = {r.id: r for r in db.session.query(TaggingRule).filter(TaggingRule.id.in_({i.rule_id for i in items if i.rule_id}))}
    users = {u.id: u.username for u in db.session.query(appbuilder.sm.user_model).filter(
        appbuilder.sm.user_model.id.in_({i.tagged_by_id for i in items} | {i.checked_by_id for i in items}))}
    rows = []
    for i in items:
        c, rule = customers.get(i.customer_id), rules.get(i.rule_id)
        rows.append({
            "id": i.id, "customer": c.name if c else "", "customer_no": c.customer_no if c else "",
            "customer_id": i.customer_id, "tag": tags[i.tag_id].label if i.tag_id in tags else "",
            "set_by": (rule.name if rule else gettext("Rule (deleted)")) if i.source == "rule"
            else users.get(i.tagged_by_id, ""),
            "source": i.source, "tagged_at": i.tagged_at, "rule_now": describe(rule) if rule else "",
            "last_activity": last.get(i.customer_id) or (c.last_contact_at if c else None),
            "conflict": i.conflict, "decision": i.decision,
            "new_tag": tags[i.new_tag_id].label if i.new_tag_id in tags else "",
            "checked_by": users.get(i.checked_by_id, ""), "checked_at": i.checked_at,
        })
    return rows, count


def decide(rnd: TagAuditRound, item_ids: list[int], decision: str, user, new_tag_id: int | None = None) -> int:
    """Confirm, remove or change (to ``new_tag_id``) the tags of the chosen items, all or nothing.
    Returns how many items were decided."""
    if rnd.status != "open":
        raise AuditError(gettext("This round is closed."))
    if decision not in DECISIONS:
        raise AuditError(gettext("Choose confirm, remove or change."))
    if not item_ids:
        raise AuditError(gettext("Tick at least one row."))
    new_tag = db.session.get(Tag, new_tag_id) if new_tag_id else None
    if decision == "change" and new_tag is None:
        raise AuditError(gettext("Change to: choose the tag to put instead."))
    items = db.session.query(TagAuditItem).filter(TagAuditItem.round_id == rnd.id, TagAuditItem.id.in_(item_ids)).all()
    if len(items) != len(set(item_ids)):
        raise AuditError(gettext("Some ticked rows are not part of this round."))
    now, batch = datetime.now(), uuid.uuid4().hex
    try:
        if decision in ("remove", "change"):
            pairs = [(i.customer_id, i.tag_id) for i in items if not (decision == "change" and i.tag_id == new_tag.id)]
            _remove_links(pairs, rnd.id, user.id, now, batch)
        if decision == "change":
            _add_links({i.customer_id for i in items}, new_tag.id, rnd.id, user.id, now, batch)
        db.session.execute(update(TagAuditItem).where(TagAuditItem.id.in_([i.id for i in items])).values(
            decision=decision, new_tag_id=new_tag.id if new_tag else None, checked_by_id=user.id, checked_at=now))
        db.session.commit()
        return len(items)
    except Exception:
        db.session.rollback()
        raise


def _remove_links(pairs: list[tuple[int, int]], round_id: int, user_id: int, now: datetime, batch: str) -> None:
    for customer_id, tag_id in pairs:  # bounded by one page of ticked rows
        link = CustomerTag.customer_id == customer_id, CustomerTag.tag_id == tag_id
        if db.session.query(CustomerTag.id).filter(*link).first():
            db.session.add(TagChange(batch=batch, customer_id=customer_id, tag_id=tag_id, action="remove",
                                     source="audit", round_id=round_id, user_id=user_id, changed_at=now))
            db.session.execute(delete(CustomerTag).where(*link))
        db.session.execute(delete(TagSuppression).where(TagSuppression.customer_id == customer_id,
                                                        TagSuppression.tag_id == tag_id))
        db.session.add(TagSuppression(customer_id=customer_id, tag_id=tag_id, round_id=round_id, removed_at=now))
    db.session.flush()


def _add_links(customer_ids: set[int], tag_id: int, round_id: int, user_id: int, now: datetime, batch: str) -> None:
    have = {c for (c,) in db.session.query(CustomerTag.customer_id).filter(
        CustomerTag.tag_id == tag_id, CustomerTag.customer_id.in_(customer_ids))}
    for customer_id in sorted(customer_ids - have):
        db.session.add(CustomerTag(customer_id=customer_id, tag_id=tag_id, source=SOURCE_MANUAL,
                                   tagged_by_id=user_id, tagged_at=now))
        db.session.add(TagChange(batch=batch, customer_id=customer_id, tag_id=tag_id, action="add",
                                 source="audit", round_id=round_id, user_id=user_id, changed_at=now))
    db.session.execute(delete(TagSuppression).where(TagSuppression.tag_id == tag_id,
                                                    TagSuppression.customer_id.in_(customer_ids)))
    db.session.flush()


def close_round(rnd: TagAuditRound, user) -> dict:
    """Close the round with its summary (kept on the round for admins)."""
    if rnd.status != "open":
        raise AuditError(gettext("This round is closed."))
    counts = {d or "": n for d, n in db.session.execute(
        select(TagAuditItem.decision, func.count()).where(TagAuditItem.round_id == rnd.id)
        .group_by(TagAuditItem.decision)).all()}
    prog = progress(rnd)
    summary = {"total": prog["total"], "checked": prog["checked"], "unchecked": counts.get("", 0),
               "confirmed": counts.get("confirm", 0), "removed": counts.get("remove", 0),
               "changed": counts.get("change", 0), "conflicts": prog["conflicts"], "unused_tags": unused_tags(rnd)}
    try:
        rnd.status, rnd.closed_by_id, rnd.closed_at = "closed", user.id, datetime.now()
        rnd.summary = json.dumps(summary, ensure_ascii=False)[:4000]
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return summary


def summary_of(rnd: TagAuditRound) -> dict:
    return json.loads(rnd.summary) if rnd.summary else {}

