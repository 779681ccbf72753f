"""Masking of contact data, in one place: phones (138****5678), e-mails (z***@example.com) and
an individual's ID number (1101**********1234) leave the server masked, wherever they go
(lists, show pages, search results, API answers, later exports), unless the user holds the
permission ``can_view_full_contact`` on ``ContactInfo``.

What counts as a reveal: lists (UI and API) are masked for everybody, authorised or not: a
list shows many people's data at once and nobody needs it in full there. A full value is
shown only on one record's page (the UI show page or the API's GET /<id>) to an authorised
user, and each full value shown that way is written to crm_reveal_log (who, when, record,
field, screen or API path).
"""
from __future__ import annotations

import re
from typing import Any

from flask import g, has_request_context, request

PERMISSION, VIEW_MENU = "can_view_full_contact", "ContactInfo"
# model key -> field -> masking kind
MASKED_FIELDS: dict[str, dict[str, str]] = {
    "contact": {"phone": "phone", "email": "email", "im_account": "account"},
    "customer": {"credit_code": "id_number"},  # only for individuals (kind 'person')
    "feedback": {"phone": "phone", "email": "email"},
    "survey": {"sent_to": "address"},  # where the survey link went
}
PERSON_KIND = "person"


def masked_fields(model_key: str, include_retired: bool = False) -> dict[str, str]:
    """MASKED_FIELDS of a model, plus (for customers) the admin-defined phone and e-mail fields,
    whose values live in Customer.extra and are masked exactly like contact phones and e-mails."""
    fields = MASKED_FIELDS.get(model_key, {})
    if model_key != "customer":
        return fields
    from app.services.fields import MASK_KINDS, custom_fields

    return {**fields, **{s.key: MASK_KINDS[s.type] for s in custom_fields(include_retired)
                       if s.type in MASK_KINDS}}


def mask_phone(value: str | None) -> str | None:
    """13812345678 -> 138****5678; short numbers keep only their last 2 digits."""
    if not value:
        return value
    if value.isdigit():  # the common case, the same result without the per-character walk
        n = len(value)
        return value[:3] + "*" * (n - 7) + value[-4:] if n >= 11 else "*" * (n - 4) + value[-4:] if n >= 7 \
            else "*" * (n - 2) + value[-2:]
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) >= 7:
        hide = set(digits[3:-4]) if len(digits) >= 11 else set(digits[:-4])
    else:
        hide = set(digits[:-2])
    return "".join("*" if i in hide else ch for i, ch in enumerate(value))


def mask_email(value: str | None) -> str | None:
    """zhang.wei@example.com -> z***@example.com."""
    if not value:
        return value
    local, at, domain = value.partition("@")
    if not at:
        return mask_account(value)
    return f"{local[:1]}***@{domain}"


def mask_id_number(value: str | None) -> str | None:
    """110101199003071234 -> 1101**********1234 (first 4 and last 4 kept)."""
    if not value:
        return value
    if len(value) <= 8:
        return value[:1] + "*" * (len(value) - 1)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_account(value: str | None) -> str | None:
    """wx_zhangwei88 -> w***8."""
    if not value:
        return value
    return f"{value[:1]}***{value[-1:]}" if len(value) > 2 else "*" * len(value)


def mask_person_name(value: str | None) -> str:
    """A staff name as customers see it: the surname and stars (张* 欧阳** by length), or the
    first letter and stars for Latin names."""
    if not value:
        return ""
    value = value.strip()
    if any("\u4e00" <= ch <= "\u9fff" for ch in value):
        keep = 2 if len(value) >= 4 else 1
        return value[:keep] + "*" * max(1, len(value) - keep)
    return value[:1] + "***"


_MASKERS = {"phone": mask_phone, "email": mask_email, "id_number": mask_id_number, "account": mask_account,
            "address": lambda v: mask_email(v) if "@" in v else mask_phone(v)}  # an e-mail or a phone


def mask(kind: str, value: Any) -> Any:
    return _MASKERS[kind](value) if isinstance(value, str) else value


def may_view_full() -> bool:
    """Whether the current user (``g.user``: also an export job's or the command line's
    requester, outside any request) holds the 'view full contact info' permission."""
    from app.extensions import appbuilder
    from app.security.scopes import current_user

    user = current_user()
    if user is None:
        return False
    cache = g.setdefault("_crm_full_contact", {})
    if user.id not in cache:
        cache[user.id] = bool(user.is_active and appbuilder.sm._has_view_access(user, PERMISSION, VIEW_MENU))
    return cache[user.id]


def _needs_mask(model_key: str, field: str, item: Any) -> bool:
    if model_key == "customer" and field == "credit_code":
        kind = getattr(item, "kind", None)
        return getattr(kind, "code", None) == PERSON_KIND
    return True


def mask_row(model_key: str, item: Any, row: dict, full: bool = False, fields: dict[str, str] | None = None) -> list[str]:
    """Mask the sensitive values of ``row`` (a dict of one item's values) in place, unless
    ``full``. Returns the fields whose full value stays in the row (to be logged). Bulk callers
    (exports) pass ``fields`` = masked_fields(model_key), looked up once for all their rows."""
    revealed = []
    for field, kind in (masked_fields(model_key) if fields is None else fields).items():
        if field not in row or not row[field] or not _needs_mask(model_key, field, item):
            continue
        if full:
            revealed.append(field)
        else:
            row[field] = mask(kind, row[field])
    return revealed


def list_masker(model_key: str, keys: list[str], fields: dict[str, str] | None = None):
    """``mask_row`` made once for many rows held as lists in ``keys`` order (exports): returns
    ``apply(row, item=None)``, which masks the row in place, always (no reveal in bulk)."""
    fields = masked_fields(model_key) if fields is None else fields
    plan = [(keys.index(field), _MASKERS[kind], field) for field, kind in fields.items() if field in keys]

    def apply(row: list, item: Any = None) -> None:
        for i, fn, field in plan:
            value = row[i]
            if value and isinstance(value, str) and _needs_mask(model_key, field, item):
                row[i] = fn(value)
    return apply


def log_reveals(model_key: str, record_id: int, fields: list[str], channel: str) -> None:
    """Record each full value shown; committed with the request's own unit of work."""
    from app.extensions import db
    from app.models import RevealLog
    from app.security.scopes import current_user

    user = current_user()
    if not fields or user is None:
        return
    endpoint = request.path[:255] if has_request_context() else None
    for field in fields:
        db.session.add(RevealLog(user_id=user.id, model=model_key, record_id=int(record_id), field=field,
                                 channel=channel, endpoint=endpoint))
    db.session.commit()


def mask_text(text: str | None) -> str | None:
    """Mask phone numbers and e-mail addresses inside free text (e.g. a clash message)."""
    if not text:
        return text
    text = re.sub(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", lambda m: mask_email(m.group(0)), text)
    return re.sub(r"\+?\d[\d -]{6,}\d", lambda m: mask_phone(m.group(0)), text)


def filter_allowed(model_key: str | None, field: str, operator: str, value: Any) -> bool:
    """Whether a list filter on a masked field is allowed: someone who sees only masked values
    may match the full value (operator ``eq``; ``custom_eq`` for an admin-defined phone or e-mail)
    or a phone's last four digits (``ew`` with four digits), never pieces of it (contains, starts
    with ...), which would let them probe digits."""
    kind = masked_fields(model_key or "").get(field.split(".")[0])  # admin-defined phones and e-mails too
    if kind is None or operator in ("eq", "custom_eq") or may_view_full():
        return True
    value = value[0] if isinstance(value, (list, tuple)) and value else value
    return kind == "phone" and operator == "ew" and isinstance(value, str) and len(value) == 4 and value.isdigit()


def unsortable(model_key: str | None) -> set[str]:
    """The masked fields a list may not be sorted by for someone who sees them masked: the order
    of the rows would tell what the hidden digits are."""
    fields = masked_fields(model_key) if model_key else {}
    return set(fields) if fields and not may_view_full() else set()


def probing_filter(model_key: str | None, filters) -> str | None:
    """The column of the first of a list's active FAB ``filters`` that ``filter_allowed``
    refuses (a piece of a masked value), or None: the list page and its export ask alike."""
    for flt, value in zip(getattr(filters, "filters", []), getattr(filters, "values", [])):
        if not filter_allowed(model_key, flt.column_name, flt.arg_name, value):
            return flt.column_name
    return None
