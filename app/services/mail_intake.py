"""Feedback by e-mail: a periodic job reads the inbound mailbox over IMAP (CRM_IMAP_* settings)
and turns each new message into a feedback (channel 'email'), once per Message-ID."""
from __future__ import annotations

import email
import email.policy
import hashlib
import imaplib
import logging
import re
from email.utils import parseaddr

from flask import current_app

from app.extensions import db
from app.models import Feedback
from app.services.feedback import LIMITS, FeedbackError, submit

log = logging.getLogger(__name__)


def parse_message(raw: bytes) -> dict:
    """The feedback values of one RFC 822 message: sender's name and address, subject, plain
    text body (HTML stripped when there is no text part), Message-ID (a hash of the message
    when it has none)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    name, address = parseaddr(str(msg.get("From", "")))
    part = msg.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    if part is not None and part.get_content_type() == "text/html":
        body = re.sub(r"<[^>]+>", " ", body)
    message_id = (str(msg.get("Message-ID", "")).strip() or "sha256:" + hashlib.sha256(raw).hexdigest())[:255]
    return {"contact_name": (name or None) and name[:LIMITS["contact_name"]], "email": address or None,
            "subject": str(msg.get("Subject", "") or "")[:LIMITS["subject"]] or None,
            "content": re.sub(r"\n{3,}", "\n\n", body).strip()[:LIMITS["content"]], "message_id": message_id}


def take(raw: bytes) -> Feedback | None:
    """Save one message as a feedback; None when its Message-ID was taken already or it is empty."""
    values = parse_message(raw)
    if db.session.query(Feedback.id).filter_by(message_id=values["message_id"]).first():
        return None
    try:
        fb, _code = submit(values, "email")
    except FeedbackError as exc:
        log.warning("mail %s not taken: %s", values["message_id"], exc)
        return None
    return fb


def read_mailbox() -> dict[str, int]:
    """The periodic job: every unseen message of CRM_IMAP_FOLDER becomes a feedback and is
    marked seen. Does nothing (answers {"configured": false}) while CRM_IMAP_HOST is unset."""
    cfg = current_app.config
    if not cfg.get("CRM_IMAP_HOST"):
        return {"configured": False}
    cls = imaplib.IMAP4_SSL if cfg["CRM_IMAP_SSL"] else imaplib.IMAP4
    taken = seen = 0
    with cls(cfg["CRM_IMAP_HOST"], cfg["CRM_IMAP_PORT"], timeout=30) as imap:
        imap.login(cfg["CRM_IMAP_USER"], cfg["CRM_IMAP_PASSWORD"])
        imap.select(cfg["CRM_IMAP_FOLDER"])
        _typ, data = imap.uid("search", None, "UNSEEN")
        for uid in (data[0] or b"").split():
            _typ, parts = imap.uid("fetch", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if raw is None:
                continue
            seen += 1
            if take(raw) is not None:
                taken += 1
            imap.uid("store", uid, "+FLAGS", "(\\Seen)")  # after the commit: a crash re-reads, dedupe skips
    return {"messages": seen, "feedback": taken}
