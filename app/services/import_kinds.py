"""Contacts (联系人) and interactions (互动记录) imported as customers are (app/services/importer.py:
the same files, mapping, column-wise parsing, modes, batches, jobs, error workbook and undo).
Each kind here gives its columns, its checks across rows, its bulk writer and its undo.

Both name their customer by 客户编号 (customer no.) or, without one, by 客户名称 when exactly one
active customer in the importer's row scope has that name (compared as the dedupe key,
normalise_name); a customer outside the scope is refused, as for customer updates.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update

from app.extensions import db
from app.models import Contact, Customer, FieldChange, Interaction, Task
from app.models.customer import contact_keys
from app.models.followup import interaction_contact, interaction_participant
from app.models.importing import ImportBatch, ImportItem
from app.security.scopes import policy_for, row_clause
from app.services import followup, history
from app.services.bulk import insert_columns, insert_rows, reserve_ids
from app.services.dedupe import normalise_name, normalise_phone
from app.services.fields import N_, FieldSpec
from app.services.importer import (
    _HISTORY_COLUMNS, KINDS, Cancelled, Checker, ImportKind, Problem, Row, UpdateKey, _both, _err,
)

SLICE = 5000  # keys per IN list

CUSTOMER_REF: tuple[FieldSpec, ...] = (
    FieldSpec("customer_no", "text", "basic", N_("Customer No."),
              synonyms=("客户编号", "编号", "customer no", "customer number")),
    FieldSpec("customer_name", "text", "basic", N_("Customer Name"),
              synonyms=("客户名称", "客户", "公司名称", "企业名称", "单位名称", "customer", "company")),
)
_ONE_OF = ("customer_no", "customer_name")

_NAME = FieldSpec("name", "text", "contact", N_("Contact"), required=True,
                  synonyms=("姓名", "联系人姓名", "name", "contact name"))
CONTACT_COLUMNS: tuple[FieldSpec, ...] = CUSTOMER_REF + (
    _NAME,
    FieldSpec("title", "text", "contact", N_("Title"), synonyms=("职务", "职位", "岗位", "job title", "position")),
    FieldSpec("phone", "phone", "contact", N_("Phone"),
              synonyms=("手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "联系方式", "mobile", "tel",
                        "telephone")),
    FieldSpec("email", "email", "contact", N_("Email"), synonyms=("邮箱", "电子邮箱", "电子邮件", "e-mail", "mail")),
    FieldSpec("im_account", "text", "contact", N_("IM Account"), synonyms=("微信", "微信号", "qq", "即时通讯", "wechat")),
    FieldSpec("preference", "text", "contact", N_("Preference"), synonyms=("偏好", "沟通偏好")),
    FieldSpec("is_primary", "boolean", "contact", N_("Primary"),
              synonyms=("是否主要联系人", "主要联系人", "主联系人", "primary contact", "is primary")),
)

INTERACTION_COLUMNS: tuple[FieldSpec, ...] = CUSTOMER_REF + (
    FieldSpec("occurred_at", "timestamp", "interaction", N_("Time"), required=True,
              synonyms=("时间", "日期", "互动时间", "跟进时间", "拜访时间", "联系时间", "date", "occurred at")),
    FieldSpec("kind", "single_choice", "interaction", N_("Kind"), dictionary="interaction_kind",
              synonyms=("方式", "类型", "互动方式", "跟进方式", "联系方式", "type", "channel")),
    FieldSpec("key_points", "long_text", "interaction", N_("Key Points"), required=True,
              synonyms=("要点", "内容", "沟通内容", "跟进内容", "沟通要点", "summary", "notes")),
    FieldSpec("customer_feedback", "long_text", "interaction", N_("Customer Feedback"), synonyms=("客户反馈", "反馈")),
    FieldSpec("result", "single_choice", "interaction", N_("Result"), dictionary="interaction_result",
              synonyms=("结果", "处理结果", "跟进结果")),
    FieldSpec("next_step", "text", "interaction", N_("Next Step"), synonyms=("下一步", "下一步计划", "后续计划")),
    FieldSpec("owner", "user", "interaction", N_("Owner"),
              synonyms=("负责人", "记录人", "跟进人", "recorded by")),
    FieldSpec("contact", "text", "interaction", N_("Contact"),
              synonyms=("联系人", "客户联系人", "对接人", "contact person")),
)


def _slices(keys) -> list[list]:
    keys = sorted(keys)
    return [keys[i:i + SLICE] for i in range(0, len(keys), SLICE)]


def _problem(r: Row, col_of, key: str, cell: Any, code: str, msgid: str, **params: Any) -> None:
    i, header = col_of.get(key, (None, ""))
    r.errors.append(_err(r.row, i, header, cell, Problem(code, msgid, params)))


def resolve_customers(checker: Checker, rows: list[Row]) -> None:
    """Each row's customer (``values["_customer"]`` = (id, customer no.)): by no., else by name
    among the active customers the importer may manage (one IN query per slice of keys)."""
    col_of, scope = checker.col_of, row_clause(Customer, policy_for(checker.user))
    active = Customer.archived.is_(False)
    nos = {r.values["customer_no"] for r in rows if r.values.get("customer_no")}
    names = {normalise_name(r.values["customer_name"]) for r in rows
             if not r.values.get("customer_no") and r.values.get("customer_name")}
    by_no: dict[str, tuple[int, bool]] = {}
    for part in _slices(nos):
        for cid, no, visible in db.session.execute(
                select(Customer.id, Customer.customer_no, scope).where(Customer.customer_no.in_(part), active)):
            by_no[no] = (cid, bool(visible))
    by_name: dict[str, list[tuple[int, str]]] = {}
    for part in _slices(k for k in names if k):
        for cid, no, key in db.session.execute(
                select(Customer.id, Customer.customer_no, Customer.name_key).where(
                    Customer.name_key.in_(part), active, scope)):
            by_name.setdefault(key, []).append((cid, no))
    for r in rows:
        no, name = r.values.get("customer_no"), r.values.get("customer_name")
        if no:
            if no not in by_no:
                _problem(r, col_of, "customer_no", no, "not_found", N_("There is no customer %(value)s."), value=no)
            elif not by_no[no][1]:
                _problem(r, col_of, "customer_no", no, "out_of_scope",
                         N_("Customer %(value)s is outside the records you may manage."), value=no)
            else:
                r.values["_customer"] = (by_no[no][0], no)
        elif name:
            found = by_name.get(normalise_name(name), [])
            if not found:
                _problem(r, col_of, "customer_name", name, "not_found",
                         N_("No customer you may manage is called '%(value)s'."), value=name)
            elif len(found) > 1:
                _problem(r, col_of, "customer_name", name, "ambiguous_customer",
                         N_("%(n)s customers are called '%(value)s': give the customer no."), n=len(found), value=name)
            else:
                r.values["_customer"] = found[0]
        elif not any(e["col"] in (col_of.get(k, (None,))[0] for k in _ONE_OF) for e in r.errors):
            key = "customer_name" if "customer_name" in col_of else "customer_no"
            _problem(r, col_of, key, "", "required", N_("%(column)s is required."), column=col_of[key][1])


def _ours(checker: Checker, entity: str):
    """The records this batch created in earlier chunks (same transaction)."""
    return select(ImportItem.entity_id).where(ImportItem.batch_id == checker.batch_id, ImportItem.entity == entity,
                                              ImportItem.action == "create")


def _history_rows(changeset: str, action: str, entity: str, records, label: str, user_id: int, now: datetime):
    """FieldChange rows: one per record (id, record label, customer no., customer id)."""
    return [(changeset, action, entity, rid, text[:200], no, cid, "imported", label, user_id, now)
            for rid, text, no, cid in records]


def _items(batch: ImportBatch, entity: str, rows: list[Row], ids: list[int]) -> list[tuple]:
    return [(batch.id, r.values["_customer"][0], r.values["_customer"][1], r.row, "create", entity, rid)
            for r, rid in zip(rows, ids)]


_ITEM_COLUMNS = ("batch_id", "customer_id", "customer_no", "row", "action", "entity", "entity_id")


# -- contacts -------------------------------------------------------------------------------------

def _contact_checks(checker: Checker, rows: list[Row]) -> None:
    """The customer; the phone once per file and not on any stored contact (of that customer:
    a duplicate, or in update mode (update_by phone) the contact the row updates; of another: the
    phone belongs to someone else, as the contact form says); a new contact's name; one primary
    contact per customer in the file."""
    resolve_customers(checker, rows)
    col_of, first, updating = checker.col_of, checker.seen.setdefault("phone", {}), checker.update_by == "phone"
    keyed = [(r, normalise_phone(r.values["phone"])) for r in rows if r.values.get("phone")]
    keyed = [(r, k) for r, k in keyed if k]
    for r, key in keyed:
        earlier = first.setdefault(key, r.row)
        if earlier != r.row:
            _problem(r, col_of, "phone", r.values["phone"], "duplicate_in_file",
                     N_("Same phone as row %(row)s of this file."), row=earlier)
    stored: dict[str, list[tuple]] = {}
    for part in _slices({k for _, k in keyed}):
        query = (select(Contact.phone_key, Contact.name, Contact.customer_id, Customer.customer_no, Customer.name,
                        Contact.id).join(Customer, Contact.customer_id == Customer.id)
                 .where(Contact.phone_key.in_(part)).order_by(Contact.id))
        if checker.batch_id is not None:
            query = query.where(Contact.id.notin_(_ours(checker, "contact")))
        for key, *found in db.session.execute(query):
            stored.setdefault(key, []).append(found)
    for r, key in keyed:
        holders = stored.get(key, [])
        same = [h for h in holders if h[1] == r.values.get("_customer", (None,))[0]]
        if same and updating:
            r.target_id = same[0][4]
        elif same:
            name, _, no, _, _ = same[0]
            _problem(r, col_of, "phone", r.values["phone"], "duplicate_existing",
                     N_("Customer %(no)s already has contact %(name)s with this phone."), no=no, name=name)
        elif holders:
            name, _, no, cname, _ = holders[0]
            _problem(r, col_of, "phone", r.values["phone"], "duplicate_existing",
                     N_("This phone belongs to contact %(name)s of customer %(no)s %(customer)s."),
                     name=name, no=no, customer=cname)
    if updating:  # the name is required of new contacts only (the checker let blanks pass)
        i, header = col_of.get("name", (None, None))
        column = header or _both(lambda: _NAME.label)
        for r in rows:
            if r.target_id is None and "name" not in r.values and not (i is not None and any(e["col"] == i
                                                                                            for e in r.errors)):
                _problem(r, col_of, "name", "", "required", N_("%(column)s is required."), column=column)
    primary = checker.seen.setdefault("primary", {})
    for r in rows:
        if r.values.get("is_primary") and "_customer" in r.values:
            earlier = primary.setdefault(r.values["_customer"][0], r.row)
            if earlier != r.row:
                _problem(r, col_of, "is_primary", r.cells[col_of["is_primary"][0]], "duplicate_primary",
                         N_("Row %(row)s already makes a primary contact of this customer: a customer has one."),
                         row=earlier)


def _save_contacts(rows: list[Row], batch: ImportBatch, user, specs, progress, cancelled,
                   offset: int) -> tuple[int, int]:
    """New contacts by bulk inserts, column by column; the contacts update rows match (update_by
    phone) by one UPDATE per set of changed columns. A row making a contact primary takes over
    from the customer's current primary (demoted, with its field history row; undo promotes it
    again). (created, updated): rows of the file, so a demoted primary is not counted."""
    if cancelled():
        raise Cancelled()
    now, conn = datetime.utcnow(), db.session.connection()
    creates = [r for r in rows if r.target_id is None]
    updates = [r for r in rows if r.target_id is not None]
    _demote_primaries(batch, rows, user, now, conn, {r.target_id for r in updates if r.values.get("is_primary")})
    if creates:
        _insert_contacts(creates, batch, user, specs, now, conn)
    _update_contacts(updates, batch, user, now, conn)
    progress(saved=offset + len(rows))
    return len(creates), len(updates)


def _insert_contacts(rows: list[Row], batch: ImportBatch, user, specs, now: datetime, conn) -> None:
    n, table = len(rows), Contact.__table__
    data: dict[str, list] = {s.key: [r.values.get(s.key) for r in rows] for s in specs.values()
                             if s.key in table.c and s.key != "is_primary"}
    data["is_primary"] = [bool(r.values.get("is_primary")) for r in rows]
    data["customer_id"] = [r.values["_customer"][0] for r in rows]
    keys = [contact_keys(p) for p in data["phone"]]
    data["phone_key"], data["phone_last4"] = [k["phone_key"] for k in keys], [k["phone_last4"] for k in keys]
    data["created_on"] = data["changed_on"] = [now] * n
    data["created_by_fk"] = data["changed_by_fk"] = [user.id] * n
    ids = data["id"] = reserve_ids(conn, table, n)
    insert_columns(conn, table, data)
    insert_rows(conn, ImportItem.__table__, _ITEM_COLUMNS, _items(batch, "contact", rows, ids))
    insert_rows(conn, FieldChange.__table__, _HISTORY_COLUMNS, _history_rows(
        history.changeset_id(db.session), "create", "contact",
        [(i, r.values["name"], *reversed(r.values["_customer"])) for i, r in zip(ids, rows)],
        f"{batch.file_name} (#{batch.id})", user.id, now))


_UPDATABLE = tuple(s.key for s in CONTACT_COLUMNS if s.key not in _ONE_OF)
_CHANGE_COLUMNS = (*_HISTORY_COLUMNS[:8], "old_value", "new_value", "changed_by_id", "changed_on")  # field history


def _update_contacts(rows: list[Row], batch: ImportBatch, user, now: datetime, conn) -> None:
    """The matched contacts' changed fields (a blank cell keeps the value, as customer updates
    do): the stored values read once per slice, one UPDATE per set of changed columns, a field
    history row per change and an import item per row keeping the previous values for undo."""
    if not rows:
        return
    table = Contact.__table__
    fields = [k for k in _UPDATABLE if any(k in r.values for r in rows)]
    current: dict[int, Any] = {}
    for part in _slices({r.target_id for r in rows}):
        current.update((rec.id, rec._mapping) for rec in db.session.execute(
            select(table.c.id, *(table.c[k] for k in dict.fromkeys(("name", *fields)))).where(table.c.id.in_(part))))
    changeset, items, changes, groups = history.changeset_id(db.session), [], [], {}
    for r in rows:
        old, (cid, no) = current[r.target_id], r.values["_customer"]
        changed = {k: r.values[k] for k in fields if k in r.values and r.values[k] != old[k]}
        items.append((batch.id, cid, no, r.row, "update", "contact", r.target_id,
                      json.dumps({k: old[k] for k in changed}, ensure_ascii=False)))
        label = (changed.get("name") or old["name"])[:200]
        changes.extend((changeset, "update", "contact", r.target_id, label, no, cid, k, history.stored_text(old[k]),
                        history.stored_text(v), user.id, now) for k, v in changed.items())
        if "phone" in changed:
            changed.update(contact_keys(changed["phone"]))
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append(
                {"_id": r.target_id, **{f"v_{k}": v for k, v in changed.items()}})
    for keys, params in groups.items():
        conn.execute(update(table).where(table.c.id == bindparam("_id")).values(
            {**{k: bindparam(f"v_{k}") for k in keys}, "changed_on": now, "changed_by_fk": user.id}), params)
    insert_rows(conn, ImportItem.__table__, (*_ITEM_COLUMNS, "before"), items)
    insert_rows(conn, FieldChange.__table__, _CHANGE_COLUMNS, changes)


def _demote_primaries(batch: ImportBatch, rows: list[Row], user, now: datetime, conn, keep: set[int]) -> None:
    """The current primary contacts of the customers a row gives a new one (but not the new ones
    themselves, ``keep``: contacts that rows update to primary): no longer primary, in one UPDATE
    per slice, each recorded as an import item (for undo) and in field history."""
    new_primary = {r.values["_customer"][0]: r.row for r in rows if r.values.get("is_primary")}
    ctable, changeset = Contact.__table__, None
    for part in _slices(new_primary):
        query = (select(Contact.id, Contact.customer_id, Contact.name, Customer.customer_no)
                 .join(Customer, Contact.customer_id == Customer.id)
                 .where(Contact.customer_id.in_(part), Contact.is_primary.is_(True)))
        found = db.session.execute(query.where(Contact.id.notin_(keep)) if keep else query).all()
        if not found:
            continue
        changeset = changeset or history.changeset_id(db.session)
        conn.execute(update(ctable).where(ctable.c.id.in_([f.id for f in found]))
                     .values(is_primary=False, changed_on=now, changed_by_fk=user.id))
        insert_rows(conn, ImportItem.__table__, (*_ITEM_COLUMNS, "before"), [
            (batch.id, cid, no, new_primary[cid], "update", "contact", i, '{"is_primary": true}')
            for i, cid, _, no in found])
        insert_rows(conn, FieldChange.__table__, _CHANGE_COLUMNS,
                    [(changeset, "update", "contact", i, name[:200], no, cid, "is_primary", "true", "false", user.id, now)
                     for i, cid, name, no in found])


def _undo_contacts(batch: ImportBatch, items: list[ImportItem], user) -> tuple[int, int]:  # noqa: ARG001
    """Created contacts deleted; updated ones (and demoted primaries) given back their previous
    values, latest first; through the ORM (field history records it all)."""
    created = [i.entity_id for i in items if i.action == "create"]
    removed = 0
    for part in _slices(created):
        db.session.execute(delete(interaction_contact).where(interaction_contact.c.contact_id.in_(part)))
        for contact in db.session.execute(select(Contact).where(Contact.id.in_(part))).scalars():
            db.session.delete(contact)
            removed += 1
    restored = 0
    for item in items:
        contact = db.session.get(Contact, item.entity_id) if item.action == "update" else None
        if contact is not None:
            for key, value in json.loads(item.before or "{}").items():
                setattr(contact, key, value)
            restored += 1
    return removed, restored


# -- interactions ---------------------------------------------------------------------------------

def _interaction_checks(checker: Checker, rows: list[Row]) -> None:
    """The customer; a time not in the future; the contact person one of that customer's
    contacts, by name."""
    resolve_customers(checker, rows)
    col_of = checker.col_of
    latest = followup.now() + followup.PAST_TOLERANCE
    for r in rows:
        at = r.values.get("occurred_at")
        if at is not None and at > latest:
            _problem(r, col_of, "occurred_at", r.cells[col_of["occurred_at"][0]], "future_date",
                     N_("%(value)s is in the future: only what has happened can be recorded."),
                     value=at.strftime("%Y-%m-%d %H:%M"))
    wanted = [r for r in rows if r.values.get("contact") and "_customer" in r.values]
    found: dict[tuple[int, str], list[int]] = {}
    for part in _slices({r.values["_customer"][0] for r in wanted}):
        for cid, name, contact_id in db.session.execute(select(Contact.customer_id, Contact.name, Contact.id).where(
                Contact.customer_id.in_(part), Contact.name.in_({r.values["contact"] for r in wanted}))):
            found.setdefault((cid, name), []).append(contact_id)
    for r in wanted:
        ids = found.get((r.values["_customer"][0], r.values["contact"]), [])
        if len(ids) == 1:
            r.values["_contact"] = ids[0]
        else:
            _problem(r, col_of, "contact", r.values["contact"], "unknown_contact",
                     N_("Customer %(no)s has no contact called '%(value)s'.") if not ids else
                     N_("Customer %(no)s has several contacts called '%(value)s'."),
                     no=r.values["_customer"][1], value=r.values["contact"])


def _save_interactions(rows: list[Row], batch: ImportBatch, user, specs, progress, cancelled,  # noqa: ARG001
                       offset: int) -> tuple[int, int]:
    """Bulk inserts, column by column, then what saving one in the UI does
    (followup.record_interaction): the owner defaults to the recorder, and each customer's
    last contact time moves up to its latest imported interaction (one UPDATE per chunk; the
    previous value is kept for undo)."""
    if cancelled():
        raise Cancelled()
    now, n, conn = datetime.utcnow(), len(rows), db.session.connection()
    table = Interaction.__table__
    data: dict[str, list] = {}
    for key in ("occurred_at", "key_points", "customer_feedback", "next_step"):
        data[key] = [r.values.get(key) for r in rows]
    for key in ("kind", "result", "owner"):
        data[f"{key}_id"] = [getattr(r.values.get(key), "id", None) for r in rows]
    data["owner_id"] = [o or user.id for o in data["owner_id"]]
    data["customer_id"] = [r.values["_customer"][0] for r in rows]
    data["created_on"] = data["changed_on"] = [now] * n
    data["created_by_fk"] = data["changed_by_fk"] = [user.id] * n
    ids = data["id"] = reserve_ids(conn, table, n)
    insert_columns(conn, table, data)
    insert_rows(conn, interaction_contact, ("interaction_id", "contact_id"),
                [(i, r.values["_contact"]) for i, r in zip(ids, rows) if "_contact" in r.values])
    insert_rows(conn, ImportItem.__table__, _ITEM_COLUMNS, _items(batch, "interaction", rows, ids))
    insert_rows(conn, FieldChange.__table__, _HISTORY_COLUMNS, _history_rows(
        history.changeset_id(db.session), "create", "interaction",
        [(i, f"{r.values['occurred_at']:%Y-%m-%d %H:%M} {r.values['key_points']}", *reversed(r.values["_customer"]))
         for i, r in zip(ids, rows)], f"{batch.file_name} (#{batch.id})", user.id, now))
    _move_last_contact(batch, rows, user, now, conn)
    progress(saved=offset + n)
    return n, 0


def _move_last_contact(batch: ImportBatch, rows: list[Row], user, now: datetime, conn) -> None:
    """Each customer's last contact time up to its latest imported interaction: one UPDATE per
    slice, a field history row per moved customer (as an ORM save records it) and, the first time
    the batch moves it, an import item keeping the previous value for undo."""
    latest: dict[int, tuple[datetime, str, int]] = {}
    for r in rows:
        cid, no = r.values["_customer"]
        if cid not in latest or latest[cid][0] < r.values["occurred_at"]:
            latest[cid] = (r.values["occurred_at"], no, r.row)
    ctable, changeset = Customer.__table__, history.changeset_id(db.session)
    for part in _slices(latest):
        touched = set(db.session.execute(select(ImportItem.customer_id).where(
            ImportItem.batch_id == batch.id, ImportItem.action == "touch", ImportItem.customer_id.in_(part))).scalars())
        moving = [(cid, name, before) for cid, name, before in db.session.execute(
            select(ctable.c.id, ctable.c.name, ctable.c.last_contact_at).where(ctable.c.id.in_(part)))
            if before is None or before < latest[cid][0]]
        if not moving:
            continue
        insert_rows(conn, ImportItem.__table__, (*_ITEM_COLUMNS, "before"), [
            (batch.id, cid, latest[cid][1], latest[cid][2], "touch", "customer", cid,
             json.dumps({"last_contact_at": before.isoformat() if before else None}))
            for cid, _, before in moving if cid not in touched])
        conn.execute(update(ctable).where(ctable.c.id == bindparam("cid"), or_(
            ctable.c.last_contact_at.is_(None), ctable.c.last_contact_at < bindparam("at")))
            .values(last_contact_at=bindparam("at")), [{"cid": cid, "at": latest[cid][0]} for cid, _, _ in moving])
        _last_contact_history(conn, changeset, [(cid, latest[cid][1], name, before, latest[cid][0])
                                                for cid, name, before in moving], user.id, now)


def _last_contact_history(conn, changeset: str, changes, user_id: int, now: datetime) -> None:
    """Field history rows for last-contact moves: (customer id, no., name, old, new) each."""
    def text(v):
        return v.strftime("%Y-%m-%d %H:%M:%S") if v else None

    insert_rows(conn, FieldChange.__table__, (*_HISTORY_COLUMNS[:8], "old_value", "new_value", "changed_by_id",
                                              "changed_on"),
                [(changeset, "update", "customer", cid, f"{no} {name}"[:200], no, cid, "last_contact_at", text(old),
                  text(new), user_id, now) for cid, no, name, old, new in changes if old != new])


def _undo_interactions(batch: ImportBatch, items: list[ImportItem], user) -> tuple[int, int]:
    """The batch's interactions deleted (field history gets a delete per record, as the import
    recorded a create); each customer's last contact time back to what it was, or to its latest
    remaining interaction when that is later."""
    created = [i for i in items if i.action == "create" and i.entity == "interaction"]
    now, changeset = datetime.utcnow(), history.changeset_id(db.session)
    removed = 0
    for start in range(0, len(created), SLICE):
        part = created[start:start + SLICE]
        ids = [i.entity_id for i in part]
        existing = set(db.session.execute(select(Interaction.id).where(Interaction.id.in_(ids))).scalars())
        for link in (interaction_contact, interaction_participant):
            db.session.execute(delete(link).where(link.c.interaction_id.in_(ids)))
        db.session.execute(update(Task).where(Task.interaction_id.in_(ids)).values(interaction_id=None))
        db.session.execute(delete(Interaction).where(Interaction.id.in_(ids)))
        insert_rows(db.session.connection(), FieldChange.__table__, _HISTORY_COLUMNS, [
            (changeset, "delete", "interaction", i.entity_id, f"#{i.entity_id}", i.customer_no, i.customer_id,
             "imported", f"{batch.file_name} (#{batch.id})", user.id, now)
            for i in part if i.entity_id in existing])
        removed += len(existing)
    restored, changes = 0, []
    touches = {i.customer_id: (i.customer_no, json.loads(i.before or "{}").get("last_contact_at"))
               for i in items if i.action == "touch"}
    ctable = Customer.__table__
    for part in _slices(touches):
        remaining = dict(db.session.execute(select(Interaction.customer_id, func.max(Interaction.occurred_at))
                                            .where(Interaction.customer_id.in_(part)).group_by(Interaction.customer_id)).all())
        for cid, name, current in db.session.execute(select(ctable.c.id, ctable.c.name, ctable.c.last_contact_at)
                                                     .where(ctable.c.id.in_(part))).all():
            no, before = touches[cid]
            before = datetime.fromisoformat(before) if before else None
            value = max((v for v in (before, remaining.get(cid)) if v is not None), default=None)
            db.session.execute(update(ctable).where(ctable.c.id == cid).values(last_contact_at=value))
            changes.append((cid, no, name, current, value))
            restored += 1
    _last_contact_history(db.session.connection(), changeset, changes, user.id, now)
    return removed, restored


_UNKNOWN = N_("Column %(letter)s '%(column)s' matches no column of this import: map it or ignore it.")
KINDS["contacts"] = ImportKind("contacts", N_("Contact"), N_("Contacts"), lambda: list(CONTACT_COLUMNS),
                               _contact_checks, _save_contacts, _undo_contacts, _UNKNOWN, Contact.__table__, _ONE_OF,
                               add_view="ContactModelView",
                               update_keys=(UpdateKey("mobile", "phone", N_("update, matched by phone")),),
                               existing=(N_("Existing contacts"), N_("only create new contacts")))
KINDS["interactions"] = ImportKind("interactions", N_("Interaction Records"), N_("Interactions"),
                                   lambda: list(INTERACTION_COLUMNS), _interaction_checks, _save_interactions,
                                   _undo_interactions, _UNKNOWN, Interaction.__table__, _ONE_OF,
                                   add_view="InteractionModelView")
