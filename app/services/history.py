"""Field history (修改记录): every create, update, delete, archive and merge of a customer or a
contact is recorded field by field, whoever or whatever writes it (forms, API, imports, jobs,
merges), because it is taken from the ORM session itself rather than from each caller.

How: ``before_flush`` looks at the Customer and Contact instances the flush will write and, for
updates and deletes, reads the stored row (the database still holds the old values at that
point; attribute history alone does not know an old value that was never loaded). ``after_flush``
then compares with what was written -- after the model listeners normalised it and after new rows
got their ids -- and inserts one ``FieldChange`` row per changed field with a Core INSERT on the
flush's own connection: the history is committed or rolled back together with the change.

* Relationship foreign keys (dictionary items, owner, department, a contact's customer) are
  stored as their display value (the dictionary item's Chinese name, the user's full name), so
  the history stays readable after the item is renamed or removed.
* One database transaction is one change set (``changeset``); ``recorded_as("merge")`` marks
  every change of a block with another action. An update that sets ``archived`` is "archive".
* The actor is ``g.user`` when someone is logged in, otherwise the named system user.
* Values are stored raw (phones and e-mails unmasked). Screens and the API show them only
  through ``display_value``, the single place where masking is to be plugged in.
* Nothing here updates or deletes history, except ``reassign_customer`` which a merge uses to
  hand the merged customer's history to the survivor (rows keep their entity and entity id).
"""
from __future__ import annotations

from app.security.masking import mask, masked_fields

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterator

from flask import current_app, g, has_app_context
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, insert, inspect as sa_inspect, select, update
from sqlalchemy.orm import Session

from app.models.customer import Contact, Customer
from app.models.history import FieldChange
from app.services.fields import custom_field, display_text, field_by_key

ACTIONS = ("create", "update", "delete", "merge", "archive")
_PENDING, _CHANGESET, _ACTION = "crm_history_pending", "crm_history_changeset", "crm_history_action"
_AUDIT = {"id", "created_on", "changed_on", "created_by_fk", "changed_by_fk"}


@dataclass
class _Spec:
    entity: str
    exclude: set[str]
    label: Callable[[Any], str]
    customer_of: Callable[[Any, dict | None], int | None]
    customer_no_of: Callable[[Session, Any, dict | None], str | None]
    fields: list[tuple[str, str, type | None]] | None = None  # (field, column key, related class)


def _customer_label(c: Any) -> str:
    return f"{c.customer_no or ''} {c.name or ''}".strip()


def _contact_customer_no(session: Session, contact: Any, stored: dict | None) -> str | None:
    """Taken before the flush, while a customer deleted with its contacts still exists."""
    customer = contact.customer
    if customer is None:
        pk = contact.customer_id or (stored or {}).get("customer_id")
        customer = session.get(Customer, pk) if pk is not None else None
    return customer.customer_no if customer is not None else None


SPECS: dict[type, _Spec] = {
    Customer: _Spec("customer", _AUDIT | {"name_key", "unique_name_key", "unique_credit_code", "name_pinyin",
                                          "name_initials"}, _customer_label, lambda obj, stored: obj.id,
                    lambda session, obj, stored: obj.customer_no or (stored or {}).get("customer_no")),
    Contact: _Spec("contact", _AUDIT | {"phone_key", "phone_last4"}, lambda c: c.name or "",
                   lambda obj, stored: obj.customer_id or (stored or {}).get("customer_id"),
                   _contact_customer_no),
}


def _fields(cls: type) -> list[tuple[str, str, type | None]]:
    """The tracked fields of a model: its columns minus keys and audit columns; a foreign key
    column is named after its many-to-one relationship (industry_id -> industry)."""
    spec = SPECS[cls]
    if spec.fields is None:
        mapper = sa_inspect(cls)
        rel_of: dict[str, Any] = {}
        for rel in mapper.relationships:
            if rel.direction.name == "MANYTOONE" and len(rel.local_columns) == 1 and not rel.viewonly:
                rel_of.setdefault(next(iter(rel.local_columns)).key, rel)
        fields = []
        for attr in mapper.column_attrs:
            if attr.key in spec.exclude:
                continue
            rel = rel_of.get(attr.columns[0].key)
            fields.append((rel.key, attr.key, rel.mapper.class_) if rel else (attr.key, attr.key, None))
        spec.fields = fields
    return spec.fields


def boolean_fields() -> set[tuple[str, str]]:
    return {(spec.entity, key) for cls, spec in SPECS.items()
            for key, col, _ in _fields(cls) if col == key and sa_inspect(cls).columns[key].type.python_type is bool}


# -- values -----------------------------------------------------------------------------------

def stored_text(value: Any) -> str | None:
    """How a raw value is stored in the history (None and '' are both "empty"); also for writers
    that record their changes themselves (bulk imports)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _display_of(obj: Any) -> str:
    """A related record as the history shows it, in one language for everybody."""
    if isinstance(obj, Customer):
        return _customer_label(obj)
    for attr in ("name",):  # dictionary items, departments: the Chinese name
        if isinstance(getattr(obj, attr, None), str) and obj.__class__.__name__ != "CrmUser":
            return getattr(obj, attr)
    return str(obj)


def _related_display(session: Session, cls: type, pk: Any) -> str | None:
    if pk is None:
        return None
    with session.no_autoflush:
        obj = session.get(cls, pk)
    return _display_of(obj) if obj is not None else f"#{pk}"


def display_value(change: FieldChange, raw: str | None) -> str:
    """The text shown for a stored history value, on screens and in the API. Masking of phones
    and e-mails (by the viewer's rights) is to be plugged in here, and only here."""
    if raw is None:
        return ""
    if (change.entity, change.field) in boolean_fields():
        return gettext("Yes") if raw == "true" else gettext("No")
    kind = masked_fields(change.entity, include_retired=True).get(change.field)
    if kind:  # history is a list: masked for everybody, like every other list
        return mask(kind, raw)
    return _in_users_language(change, raw)


def _in_users_language(change: FieldChange, raw: str) -> str:
    """A dictionary item or department stored by its Chinese name, shown by its English name on
    English screens while the item still exists (one query per distinct value and request)."""
    related = next((rel for cls, spec in SPECS.items() if spec.entity == change.entity
                    for key, _, rel in _fields(cls) if key == change.field), None)
    if related is None or not hasattr(related, "name_en") or not str(get_locale() or "").startswith("en"):
        return raw
    cache = g.setdefault("_crm_history_names", {})
    if (related, raw) not in cache:
        from app.extensions import db

        query = select(related).filter_by(name=raw)
        spec = field_by_key(change.field) if change.entity == "customer" else None
        if spec is not None and spec.dictionary and hasattr(related, "type_key"):
            query = query.filter_by(type_key=spec.dictionary)
        row = db.session.scalars(query.limit(1)).first()
        cache[(related, raw)] = str(row) if row is not None else raw
    return cache[(related, raw)]


_ACTION_LABELS = {"create": _l("Added"), "update": _l("Updated"), "delete": _l("Deleted"),
                  "merge": _l("Merged"), "archive": _l("Archived")}
_ENTITY_LABELS = {"customer": _l("Customer"), "contact": _l("Contact")}
EVENT_LABELS = {"merged_from": _l("Merged from"), "merged_into": _l("Merged into"), "imported": _l("Imported")}


def action_label(action: str) -> str:
    return str(_ACTION_LABELS.get(action, action))


def entity_label(entity: str) -> str:
    return str(_ENTITY_LABELS.get(entity, entity))


def field_label(entity: str, field: str) -> str:  # noqa: ARG001
    """The field's label as the customer and contact screens show it."""
    from app.views.customer import LABELS

    label = EVENT_LABELS.get(field) or LABELS.get(field)
    if label is None and entity == "customer":  # an admin-defined field (字段配置), retired or not
        spec = custom_field(field, include_retired=True)
        label = spec.label if spec is not None else None
    return str(label) if label is not None else field


# -- the session events -----------------------------------------------------------------------

def _stored_row(session: Session, obj: Any) -> dict | None:
    identity = sa_inspect(obj).identity
    if identity is None:
        return None
    table = sa_inspect(type(obj)).local_table
    row = session.connection().execute(select(table).where(table.c.id == identity[0])).first()
    return dict(row._mapping) if row is not None else None


def _before_flush(session: Session, flush_context, instances) -> None:  # noqa: ARG001
    found = []
    for obj in list(session.new):
        if type(obj) in SPECS:
            found.append((obj, "create", None))
    for obj in list(session.dirty):
        if type(obj) in SPECS and obj not in session.deleted and session.is_modified(obj):
            found.append((obj, "update", _stored_row(session, obj)))
    for obj in list(session.deleted):
        if type(obj) in SPECS:
            found.append((obj, "delete", _stored_row(session, obj)))
    with session.no_autoflush:
        session.info[_PENDING] = [(obj, action, stored, SPECS[type(obj)].customer_no_of(session, obj, stored))
                                  for obj, action, stored in found]


def _extra_changes(old: dict | None, new: dict | None) -> list[tuple[str, str | None, str | None]]:
    """Customer.extra, field by field: one change per admin-defined field, under its key, with
    choices as their Chinese item names (like built-in dictionary fields)."""
    old, new = old or {}, new or {}
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            spec = custom_field(key, include_retired=True)
            changes.append((key, display_text(spec, old.get(key), "zh") or None,
                            display_text(spec, new.get(key), "zh") or None))
    return changes


def _diff(session: Session, obj: Any, action: str, stored: dict | None) -> list[tuple[str, str | None, str | None]]:
    changes = []
    for field, col, related in _fields(type(obj)):
        old_raw = stored.get(col) if stored is not None else None
        new_raw = None if action == "delete" else getattr(obj, col)
        if col == "extra":
            with session.no_autoflush:
                changes.extend(_extra_changes(old_raw, new_raw))
            continue
        if related is not None:
            if old_raw == new_raw:
                continue
            old, new = _related_display(session, related, old_raw), _related_display(session, related, new_raw)
        else:
            old, new = stored_text(old_raw), stored_text(new_raw)
            if action != "update" and (old or new) == "false":  # a default False is no news
                continue
        if old != new:
            changes.append((field, old, new))
    return changes


def _actor_id() -> int | None:
    if not has_app_context():
        return None
    user = g.get("user")
    if user is not None and getattr(user, "id", None) and getattr(user, "is_authenticated", True):
        return user.id
    cache = current_app.extensions.setdefault("crm_history", {})
    if "system_user_id" not in cache:
        from app.services.actor import system_user

        try:
            cache["system_user_id"] = system_user().id
        except RuntimeError:
            return None
    return cache["system_user_id"]


def changeset_id(session: Session) -> str:
    """The change set of the session's current transaction (made on first use)."""
    return session.info.setdefault(_CHANGESET, uuid.uuid4().hex)


def _after_flush(session: Session, flush_context) -> None:  # noqa: ARG001
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    rows, now = [], datetime.utcnow()
    for obj, action, stored, customer_no in pending:
        if action != "create" and stored is None:
            continue
        changes = _diff(session, obj, action, stored)
        if not changes:
            continue
        spec = SPECS[type(obj)]
        if action == "update" and ("archived", "false", "true") in changes:
            action = "archive"
        action = session.info.get(_ACTION) or action
        entity_id = obj.id if action != "delete" or stored is None else stored["id"]
        base = {"changeset": changeset_id(session), "action": action, "entity": spec.entity,
                "entity_id": entity_id, "record_label": spec.label(obj)[:200],
                "customer_no": customer_no, "customer_id": spec.customer_of(obj, stored), "changed_by_id": _actor_id(),
                "changed_on": now}
        rows.extend({**base, "field": f, "old_value": o, "new_value": n} for f, o, n in changes)
    if rows:
        session.connection().execute(insert(FieldChange.__table__), rows)


def _end_of_transaction(session: Session, *args) -> None:  # noqa: ARG001
    session.info.pop(_CHANGESET, None)
    session.info.pop(_PENDING, None)


event.listen(Session, "before_flush", _before_flush)
event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "after_commit", _end_of_transaction)
event.listen(Session, "after_rollback", _end_of_transaction)


# -- for the merge service --------------------------------------------------------------------

@contextmanager
def recorded_as(session: Session, action: str) -> Iterator[None]:
    """Every change flushed inside the block is recorded with ``action`` (e.g. "merge")."""
    assert action in ACTIONS
    previous = session.info.get(_ACTION)
    session.info[_ACTION] = action
    try:
        yield
    finally:
        if previous is None:
            session.info.pop(_ACTION, None)
        else:
            session.info[_ACTION] = previous


def record_event(session: Session, *, action: str, entity: str, entity_id: int, customer_no: str,
                 customer_id: int | None, field: str, old: str | None, new: str | None, label: str = "") -> None:
    """One history row that is not a field change (e.g. "merged into"), in the current change set."""
    session.connection().execute(insert(FieldChange.__table__), [{
        "changeset": changeset_id(session), "action": action, "entity": entity, "entity_id": entity_id,
        "record_label": label[:200], "customer_no": customer_no, "customer_id": customer_id, "field": field, "old_value": old,
        "new_value": new, "changed_by_id": _actor_id(), "changed_on": datetime.utcnow()}])


def reassign_customer(session: Session, from_customer_no: str, to_customer_no: str, to_customer_id: int) -> int:
    """Hand a merged customer's history to the survivor; what each row says stays as written."""
    table = FieldChange.__table__
    result = session.connection().execute(
        update(table).where(table.c.customer_no == from_customer_no)
        .values(customer_no=to_customer_no, customer_id=to_customer_id))
    return result.rowcount
