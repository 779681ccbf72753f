"""Customer feedback (客户反馈): intake from every channel, automatic classification by keyword
rules over jieba-segmented Chinese, dispatch by problem attribute, status changes, the
customer's look-up code, and the 高频问题 (problem diagnosis) figures.

Every channel (public form, staff form, REST API, e-mail) goes through ``prepare`` /
``submit``, so they number, classify and dispatch alike."""
from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import String, and_, case, cast, distinct, func, literal, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Contact, CrmUser, DictionaryItem, Feedback, FeedbackKeyword, FeedbackNote, FeedbackRule
from app.services.dedupe import normalise_phone
from app.services.numbering import next_number

STATUS_LABELS = {"pending": _l("Pending"), "processing": _l("Processing"), "resolved": _l("Resolved"),
                 "closed": _l("Closed")}
CHANNEL_LABELS = {"web": _l("Web form"), "staff": _l("Staff entry"), "email": _l("E-mail"), "api": _l("API")}
DONE = ("resolved", "closed")
LIMITS = {"contact_name": 100, "phone": 40, "email": 200, "subject": 200, "content": 5000}
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
# 8 characters of 32 = 40 bits, guessed online only through the rate-limited status page; the
# hash (salted PBKDF2, ~20 ms) keeps a stolen database from handing the codes out.
CODE_HASH = "pbkdf2:sha256:50000"
_DUMMY_HASH: list[str] = []
_SPLIT = re.compile(r"[\s,，、;；]+")


class FeedbackError(ValueError):
    """Bad feedback input: field -> message, all in the reader's language."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# -- classification -------------------------------------------------------------------------------

_jieba_lock = threading.Lock()
_jieba_words: set[str] = set()


def segment(text: str, words: set[str]) -> list[str]:
    """jieba's words of ``text``; the rules' keywords are added to its dictionary so that they
    come out whole. The dictionary loads once per process (the first call, ~1 s)."""
    import jieba

    with _jieba_lock:
        if not jieba.dt.initialized:
            jieba.setLogLevel(60)
            jieba.initialize()
        for w in words - _jieba_words:
            jieba.add_word(w, freq=100000)
            _jieba_words.add(w)
    return [t for t in jieba.lcut(text or "") if t.strip()]


def keywords_of(rule: FeedbackRule) -> list[str]:
    return [w for w in _SPLIT.split(rule.keywords or "") if w]


@dataclass
class Match:
    code: str | None
    words: list[str] = field(default_factory=list)
    confidence: float = 0.0
    rule: FeedbackRule | None = None


def _best(rules: list[FeedbackRule], tokens: list[str]) -> Match:
    counts = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    scored = []
    for rule in rules:
        hits = [w for w in keywords_of(rule) if w in counts]
        scored.append((sum(counts[w] for w in hits), -rule.sort, rule, hits))
    total = sum(s[0] for s in scored)
    if not total:
        return Match(None)
    score, _, rule, hits = max(scored, key=lambda s: (s[0], s[1]))
    return Match(rule.code, hits, round(score / total, 2), rule)


def classify(text: str) -> tuple[Match, Match]:
    """(type match, attribute match) of a text by the active rules."""
    rules = db.session.query(FeedbackRule).filter_by(active=True).order_by(FeedbackRule.sort, FeedbackRule.id).all()
    words = {w for r in rules for w in keywords_of(r)}
    tokens = segment(text, words)
    return (_best([r for r in rules if r.kind == "type"], tokens),
            _best([r for r in rules if r.kind == "attribute"], tokens))


def type_item(code: str | None) -> DictionaryItem | None:
    code = code or current_app.config["CRM_FEEDBACK_DEFAULT_TYPE"]
    return db.session.query(DictionaryItem).filter_by(type_key="feedback_type", code=code).first()


# -- dispatch ---------------------------------------------------------------------------------------

def least_loaded(role_name: str | None) -> CrmUser | None:
    """The active holder of ``role_name`` with the fewest open feedbacks (then the oldest account)."""
    if not role_name:
        return None
    from app.extensions import appbuilder

    role = appbuilder.sm.find_role(role_name)
    if role is None:
        return None
    open_count = (select(func.count(Feedback.id)).where(Feedback.handler_id == CrmUser.id,
                                                        Feedback.status.notin_(DONE)).scalar_subquery())
    return (db.session.query(CrmUser).filter(CrmUser.active.is_(True), CrmUser.roles.any(id=role.id))
            .order_by(open_count, CrmUser.id).first())


def _dispatch(fb: Feedback, attr: Match) -> None:
    cfg = current_app.config
    rule = attr.rule
    if rule is None:
        rule = db.session.query(FeedbackRule).filter_by(kind="attribute", active=True,
                                                        code=cfg["CRM_FEEDBACK_DEFAULT_ATTRIBUTE"]).first()
    fb.attribute = rule.code if rule else None
    if fb.handler_id is None and fb.handler is None:
        handler = least_loaded(rule.role_name if rule else None) or least_loaded(cfg["CRM_FEEDBACK_FALLBACK_ROLE"])
        fb.handler_id = handler.id if handler else None
    hours = (rule.promise_hours if rule and rule.promise_hours else cfg["CRM_FEEDBACK_PROMISE_HOURS"])
    fb.promised_date = (fb.submitted_at + timedelta(hours=hours)).date()


# -- intake -------------------------------------------------------------------------------------------

def check_fields(values: dict[str, Any]) -> dict[str, str]:
    """Missing or oversized fields -> field: message."""
    errors = {}
    if not (values.get("content") or "").strip():
        errors["content"] = gettext("Please describe your feedback.")
    for name, limit in LIMITS.items():
        if len(values.get(name) or "") > limit:
            errors[name] = gettext("At most %(n)s characters.", n=limit)
    if values.get("channel") == "web" and not (values.get("phone") or values.get("email") or "").strip():
        errors["phone"] = gettext("Please give a phone number or an e-mail address so that we can reach you.")
    email = (values.get("email") or "").strip()
    if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        errors["email"] = gettext("This is not an e-mail address.")
    return errors


def _find_customer(fb: Feedback) -> None:
    if fb.customer_id or fb.customer is not None:
        return
    key = normalise_phone(fb.phone)
    q = db.session.query(Contact.customer_id)
    hit = q.filter(Contact.phone_key == key).first() if key else None
    if hit is None and fb.email:
        hit = q.filter(func.lower(Contact.email) == fb.email.strip().lower()).first()
    fb.customer_id = hit[0] if hit else None


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def prepare(fb: Feedback, channel: str) -> str:
    """Fill in a new feedback before it is saved: channel, customer (by phone or e-mail on
    file), classification, number, dispatch and its look-up code. Returns the code (shown
    once; only its hash is kept)."""
    fb.channel = fb.channel if fb.channel in ("web", "email") else channel
    fb.submitted_at = fb.submitted_at or datetime.utcnow()
    fb.status = fb.status or "pending"
    _find_customer(fb)
    kind, attr = classify(f"{fb.subject or ''}\n{fb.content or ''}")
    fb.auto_type_code = kind.code or current_app.config["CRM_FEEDBACK_DEFAULT_TYPE"]
    fb.matched_words = "、".join(kind.words + [w for w in attr.words if w not in kind.words])[:500] or None
    fb.confidence = kind.confidence
    if fb.type is None and fb.type_id is None:
        fb.type = type_item(fb.auto_type_code)
    fb.type_corrected = fb.type is not None and fb.type.code != fb.auto_type_code
    fb.keywords = [FeedbackKeyword(word=w[:50]) for w in dict.fromkeys(kind.words + attr.words)]
    fb.feedback_no = next_number("feedback", fb)
    _dispatch(fb, attr)
    code = new_code()
    fb.secret_hash = generate_password_hash(code, method=CODE_HASH)
    return code


def submit(values: dict[str, Any], channel: str) -> tuple[Feedback, str]:
    """Validate and save a feedback from plain values (public form, e-mail). Nothing is saved
    when a field is wrong (FeedbackError)."""
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items()}
    errors = check_fields({**values, "channel": channel})
    if errors:
        raise FeedbackError(errors)
    fb = Feedback(**{k: values.get(k) or None for k in ("contact_name", "phone", "email", "subject", "content",
                                                        "message_id", "customer_id")})
    fb.channel = channel
    code = prepare(fb, channel)
    db.session.add(fb)
    db.session.commit()
    return fb, code


def on_update(fb: Feedback) -> None:
    """Before saving a staff edit: count a corrected type, stamp the resolution time."""
    fb.type_corrected = fb.type is not None and fb.auto_type_code is not None and fb.type.code != fb.auto_type_code
    if fb.status in DONE and fb.resolved_at is None:
        fb.resolved_at = datetime.utcnow()
    elif fb.status not in DONE:
        fb.resolved_at = None


# -- the customer's view ------------------------------------------------------------------------------

def look_up(number: str, code: str) -> Feedback | None:
    """The feedback whose number is ``number`` if ``code`` is its look-up code or the last 4
    digits of the phone on file (given with it, or its customer's contacts); else None,
    whether or not the number exists."""
    fb = db.session.query(Feedback).filter_by(feedback_no=(number or "").strip().upper()).first()
    code = (code or "").strip().upper()
    if fb is None or not code:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(generate_password_hash(new_code(), method=CODE_HASH))
        check_password_hash(_DUMMY_HASH[0], code or "x")  # the same work either way
        return None
    if fb.secret_hash and check_password_hash(fb.secret_hash, code):
        return fb
    if re.fullmatch(r"\d{4}", code):
        phones = [fb.phone] + ([c.phone for c in fb.customer.contacts] if fb.customer else [])
        if any(normalise_phone(p).endswith(code) for p in phones if p and normalise_phone(p)):
            return fb
    return None


def public_notes(fb: Feedback) -> list[FeedbackNote]:
    return [n for n in fb.notes if n.public]


# -- 高频问题 ------------------------------------------------------------------------------------------

def problem_figures(since: datetime, until: datetime, scope_clause) -> dict[str, list[dict]]:
    """Feedback per type and per matched keyword in [since, until): count, customers affected
    (distinct customers, plus distinct phones of feedback without a known customer), resolved
    and open counts. Aggregated in SQL, within the caller's row scope."""
    period = and_(Feedback.submitted_at >= since, Feedback.submitted_at < until, scope_clause)
    resolved = func.sum(case((Feedback.status.in_(DONE), 1), else_=0))
    affected = func.count(distinct(func.coalesce(
        literal("c") + cast(Feedback.customer_id, String), literal("p") + Feedback.phone,
        literal("e") + Feedback.email, literal("f") + cast(Feedback.id, String))))
    by_type = (db.session.query(DictionaryItem, func.count(Feedback.id), affected, resolved)
               .join(Feedback, Feedback.type_id == DictionaryItem.id).filter(period)
               .group_by(DictionaryItem.id).order_by(func.count(Feedback.id).desc()).all())
    by_word = (db.session.query(FeedbackKeyword.word, func.count(Feedback.id), affected, resolved)
               .join(Feedback, Feedback.id == FeedbackKeyword.feedback_id).filter(period)
               .group_by(FeedbackKeyword.word).order_by(func.count(Feedback.id).desc(), FeedbackKeyword.word)
               .limit(30).all())
    corrections = (db.session.query(Feedback.auto_type_code, func.count(Feedback.id))
                   .filter(period, Feedback.type_corrected.is_(True)).group_by(Feedback.auto_type_code).all())

    def row(label, count, customers, done):
        done = int(done or 0)
        return {"label": str(label), "count": count, "customers": customers, "resolved": done,
                "open": count - done, "progress": round(100 * done / count) if count else 0}

    return {"types": [row(*r) for r in by_type], "words": [row(*r) for r in by_word],
            "corrections": [{"code": c, "count": n} for c, n in corrections]}


def default_period() -> tuple[date, date]:
    today = date.today()
    return today - timedelta(days=29), today
