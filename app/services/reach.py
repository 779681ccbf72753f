"""The "at least two ways to reach a customer" rule (DOMAIN.md, 一户一档): a warning, not a
refusal, because files often start with one number and fill up later. The minimum comes from
CRM_MIN_CONTACT_WAYS (default 2; 0 turns the warning off)."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import Contact
from app.services.dedupe import normalise_phone


def contact_ways(customer_id: int) -> int:
    """Distinct phones, e-mail addresses and IM accounts over all the customer's contacts."""
    ways: set[tuple[str, str]] = set()
    rows = db.session.execute(select(Contact.phone, Contact.email, Contact.im_account)
                              .where(Contact.customer_id == customer_id))
    for phone, email, im in rows:
        if normalise_phone(phone):
            ways.add(("phone", normalise_phone(phone)))
        if email and email.strip():
            ways.add(("email", email.strip().lower()))
        if im and im.strip():
            ways.add(("im", im.strip()))
    return len(ways)


def reach_warning(customer_id: int | str | None) -> str | None:
    """The warning to show for this customer (the page passes its pk as text), or None when it
    can be reached often enough."""
    need = current_app.config.get("CRM_MIN_CONTACT_WAYS", 2)
    if not need or not str(customer_id or "").isdigit():
        return None
    have = contact_ways(int(customer_id))
    if have >= need:
        return None
    return _("This customer has %(have)d way(s) to be reached; add contacts until there are at least "
             "%(need)d (phone, e-mail or IM account).", have=have, need=need)
