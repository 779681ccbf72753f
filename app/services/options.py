"""The option tables' stamp: dictionaries, tags and admin-defined fields (what filter choices,
tag badges and field labels are made of). Pages cache what they make of those tables per
process under the stamp (app/views/scoped.py CachedSearchWidget, tagging.tags_of_page)."""
from __future__ import annotations

import hashlib
import time

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.extensions import db

# Tables the choices of a cacheable search form come from (dictionaries, tags, custom fields).
_OPTION_MODELS = ("DictionaryType", "DictionaryItem", "TagDimension", "Tag", "CustomField")
STAMP_SECONDS = 2.0  # how long another process's change to the option tables may go unseen
_stamp = [float("-inf"), ""]  # when read (time.monotonic()), the stamp


def options_stamp() -> str:
    """A digest of every row of the option tables, read as plain rows (a few hundred, ~1 ms),
    at most every STAMP_SECONDS per process: a change made in this process (an admin edits a
    dictionary, a tag, a field) gives a new stamp at once (_option_rows_flushed), one made by
    another process within STAMP_SECONDS."""
    now = time.monotonic()
    if now - _stamp[0] >= STAMP_SECONDS:
        import app.models as models

        digest = hashlib.blake2b(digest_size=16)
        for name in _OPTION_MODELS:
            table = getattr(models, name).__table__
            digest.update(repr(db.session.execute(select(table).order_by(*table.primary_key)).all()).encode())
        _stamp[:] = [now, digest.hexdigest()]
    return _stamp[1]


@event.listens_for(Session, "after_flush")
def _option_rows_flushed(session, flush_context) -> None:  # noqa: ARG001
    if any(type(o).__name__ in _OPTION_MODELS for o in (*session.new, *session.dirty, *session.deleted)):
        session.info["crm_options_changed"] = True
        _stamp[0] = float("-inf")


@event.listens_for(Session, "after_commit")
def _option_rows_committed(session) -> None:  # read again once committed (another thread may have read meanwhile)
    if session.info.pop("crm_options_changed", False):
        _stamp[0] = float("-inf")


_made: dict[tuple, object] = {}  # per process: (what, stamp, language) -> what build() made of the option tables


def per_stamp(what, build):
    """What ``build()`` makes of the option tables (e.g. every dictionary item's label), made
    once per process for each stamp and page language; ``what`` (hashable) names it."""
    from flask_babel import get_locale

    key = (what, options_stamp(), str(get_locale()))
    if key not in _made:
        if len(_made) >= 64:
            _made.clear()
        _made[key] = build()
    return _made[key]
