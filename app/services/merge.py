"""Merging two customer files into one (一户一档, the second half): the survivor keeps its own
values, takes over the merged customer's contacts, interaction records and history, and has its
empty fields filled from the merged one; the merged customer is then deleted.

Deleted rather than archived: an archived copy would keep its name, credit code and phones and
so clash with the survivor in every later duplicate check, and the history already keeps every
value it had (its delete is recorded field by field, with action "merge", and handed to the
survivor together with the rest of its history).

One call is one unit of work: every problem is gathered first (MergeError carries them all),
then everything is written and committed once; on any failure the session is rolled back and
nothing has changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Attachment, Contact, Customer, FieldChange, Interaction, ServiceRecord, Ticket
from app.services import history

# Fields a merge never copies (identity, keys, bookkeeping, state).
NEVER_FILLED = {"customer_no", "name", "archived"}


@dataclass
class Movable:
    """Records that belong to a customer and move to the survivor: rows of ``model`` whose
    many-to-one relationship ``attr`` points at the merged customer. Moving goes through the
    ORM so that history (for contacts) and the models' own listeners see it."""
    label: Any  # what the confirmation page and the API call it
    model: type
    attr: str

    def query(self, customer_id: int):
        column = getattr(self.model, self.attr).property.local_columns
        return select(self.model).where(next(iter(column)) == customer_id)

    def count(self, customer_id: int) -> int:
        return db.session.execute(select(func.count()).select_from(self.query(customer_id).subquery())).scalar()

    def move(self, merged: Customer, survivor: Customer) -> int:
        rows = list(db.session.execute(self.query(merged.id)).scalars())
        for row in rows:
            setattr(row, self.attr, survivor)
        return len(rows)


# Tags, attachments, tickets ... add themselves here as they arrive (a many-to-many table needs
# its own object with the same count/move methods).
MOVABLES: list[Movable] = [
    Movable(_l("Contacts"), Contact, "customer"),
    Movable(_l("Interactions"), Interaction, "customer"),
    Movable(_l("Service Tickets"), Ticket, "customer"),
    Movable(_l("Service Records"), ServiceRecord, "customer"),
    # every file of the customer, its interactions' and tickets' included (they follow the
    # customer's row scope): else the merged customer's delete would take them with it
    Movable(_l("Attachments"), Attachment, "customer"),
]


class MergeError(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass
class MergePlan:
    survivor: Customer
    merged: Customer
    moves: list[tuple[str, str, int]] = field(default_factory=list)  # (key, label, count)
    fills: list[tuple[str, str, str]] = field(default_factory=list)  # (field, label, value shown)
    history_rows: int = 0

    def __post_init__(self) -> None:  # kept: the merged customer is gone after the commit
        self.survivor_id, self.merged_id = self.survivor.id, self.merged.id
        self.survivor_no, self.merged_no = self.survivor.customer_no, self.merged.customer_no
        self.survivor_label = history._customer_label(self.survivor)
        self.merged_label = history._customer_label(self.merged)

    def as_dict(self) -> dict[str, Any]:
        return {"survivor_id": self.survivor_id, "merged_id": self.merged_id,
                "survivor": self.survivor_label, "merged": self.merged_label,
                "moved": {key: n for key, _label, n in self.moves}, "history_rows": self.history_rows,
                "filled": {f: value for f, _label, value in self.fills}}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fillable() -> list[str]:
    return [f for f, _col, _rel in history._fields(Customer) if f not in NEVER_FILLED]


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def plan_merge(survivor_id: Any, merged_id: Any, loader: Callable[[int], Customer | None] | None = None) -> MergePlan:
    """Check everything and say what a merge would do, writing nothing. ``loader`` finds a
    customer by id (the views pass their scoped look-up); raises MergeError with every problem."""
    from app.views.customer import LABELS

    loader = loader or (lambda pk: db.session.get(Customer, pk))
    errors: list[str] = []
    ids = {}
    for key, value in (("survivor", survivor_id), ("merged", merged_id)):
        pk = _as_id(value)
        if pk is None:
            errors.append(_("Choose two customers to merge."))
            continue
        ids[key] = pk
    if len(ids) == 2 and ids["survivor"] == ids["merged"]:
        errors.append(_("A customer cannot be merged with itself."))
    found = {}
    for key, pk in ids.items():
        customer = loader(pk)
        if customer is None:
            errors.append(_("Customer %(id)s does not exist.", id=pk))
        found[key] = customer
    if errors:
        raise MergeError(list(dict.fromkeys(errors)))
    survivor, merged = found["survivor"], found["merged"]
    plan = MergePlan(survivor, merged)
    for m in MOVABLES:
        plan.moves.append((m.model.__tablename__, str(m.label), m.count(merged.id)))
    for f in _fillable():
        theirs = getattr(merged, f)
        if _empty(getattr(survivor, f)) and not _empty(theirs):
            plan.fills.append((f, str(LABELS.get(f, f)), str(theirs)))
    plan.history_rows = db.session.execute(
        select(func.count()).select_from(FieldChange).where(FieldChange.customer_no == merged.customer_no)).scalar()
    return plan


def merge_customers(survivor_id: Any, merged_id: Any,
                    loader: Callable[[int], Customer | None] | None = None) -> MergePlan:
    """Merge ``merged_id`` into ``survivor_id`` and commit once (rules in the module docstring)."""
    session = db.session
    try:
        plan = plan_merge(survivor_id, merged_id, loader)
        survivor, merged = plan.survivor, plan.merged
        label_survivor, label_merged = plan.survivor_label, plan.merged_label
        survivor_pk, merged_pk = plan.survivor_id, plan.merged_id
        with history.recorded_as(session, "merge"):
            fills = {f: getattr(merged, f) for f, _label, _value in plan.fills}
            if "credit_code" in fills:  # unique: leaves the merged customer before the survivor takes it
                session.execute(update(Customer).where(Customer.id == merged_pk)
                                .values(credit_code=None, unique_credit_code=None))
            for f, value in fills.items():
                setattr(survivor, f, value)
            for m in MOVABLES:
                m.move(merged, survivor)
            session.flush()
            session.expire(merged)  # its collections now read as empty from the database
            session.delete(merged)
            session.flush()
        history.record_event(session, action="merge", entity="customer", entity_id=merged_pk,
                             customer_no=plan.merged_no, customer_id=merged_pk, field="merged_into", old=None, new=label_survivor,
                             label=label_merged)
        plan.history_rows = history.reassign_customer(session, plan.merged_no, plan.survivor_no, survivor_pk)
        history.record_event(session, action="merge", entity="customer", entity_id=survivor_pk,
                             customer_no=plan.survivor_no, customer_id=survivor_pk, field="merged_from", old=None, new=label_merged,
                             label=label_survivor)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return plan
