"""Customer feedback (客户反馈跟踪, DOMAIN.md table 7), its rules, progress notes, the
satisfaction survey links and the revisits that low scores raise.

Surveys and revisits refer to their subject generically (``subject_kind`` + ``subject_id``,
e.g. ('feedback', 12)), so service tickets plug in with one registration
(app/services/satisfaction.py ``register_subject``)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, Date, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import relationship

STATUSES = ("pending", "processing", "resolved", "closed")  # 待处理/处理中/已解决/已关闭
CHANNELS = ("web", "staff", "email", "api")
RULE_KINDS = ("type", "attribute")  # classification (投诉/建议/咨询/表扬) and dispatch (product/service/...)


class FeedbackRule(Model):
    """A keyword rule, as data. kind 'type': words that point to a feedback type (the code of a
    feedback_type dictionary item). kind 'attribute': words that point to a problem attribute
    (product, service, logistics ...), which decides the role the feedback is dispatched to and
    the promised resolution time."""

    __tablename__ = "crm_feedback_rule"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    kind = Column(String(16), nullable=False, default="type")
    code = Column(String(64), nullable=False)  # feedback_type code, or the attribute's code
    name = Column(String(100), nullable=False)
    keywords = Column(Text, nullable=False, default="")  # separated by spaces, commas or 、
    role_name = Column(String(100))  # attribute rules: the role that handles it
    promise_hours = Column(Integer)  # attribute rules: promised resolution, hours after submission
    sort = Column(Integer, nullable=False, default=0)  # ties and the fallback: lowest first
    active = Column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return self.name


class Feedback(Model):
    __tablename__ = "crm_feedback"
    id = Column(Integer, primary_key=True)
    feedback_no = Column(String(40), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="SET NULL"), index=True)
    customer = relationship("Customer")
    contact_name = Column(String(100))
    phone = Column(String(40))
    email = Column(String(200))
    channel = Column(String(16), nullable=False, default="staff")
    subject = Column(String(200))
    content = Column(Text, nullable=False)
    type_id = Column(Integer, ForeignKey("crm_dictionary_item.id"), index=True)
    type = relationship("DictionaryItem", foreign_keys=[type_id])
    auto_type_code = Column(String(64))  # what the rules said (kept when staff correct it)
    matched_words = Column(String(500))  # the words that decided it, 、-separated
    confidence = Column(Float)  # 0..1
    type_corrected = Column(Boolean, nullable=False, default=False)
    attribute = Column(String(64), index=True)
    handler_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    handler = relationship("CrmUser", foreign_keys=[handler_id])
    status = Column(String(16), nullable=False, default="pending", index=True)
    submitted_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    promised_date = Column(Date)
    resolved_at = Column(DateTime, index=True)
    secret_hash = Column(String(200))  # the customer's look-up code, hashed; shown once
    message_id = Column(String(255), unique=True)  # e-mail intake: dedupe on Message-ID
    satisfaction_score = Column(Integer)
    satisfaction_comment = Column(Text)
    notes = relationship("FeedbackNote", back_populates="feedback", cascade="all, delete-orphan",
                         order_by="FeedbackNote.created_at")
    keywords = relationship("FeedbackKeyword", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.feedback_no or ""


class FeedbackKeyword(Model):
    """One matched word of a feedback: the 高频问题 list groups them in SQL."""

    __tablename__ = "crm_feedback_keyword"
    id = Column(Integer, primary_key=True)
    feedback_id = Column(Integer, ForeignKey("crm_feedback.id", ondelete="CASCADE"), nullable=False, index=True)
    word = Column(String(50), nullable=False, index=True)


class FeedbackNote(Model):
    """A progress note; only notes marked public reach the customer's status page."""

    __tablename__ = "crm_feedback_note"
    id = Column(Integer, primary_key=True)
    feedback_id = Column(Integer, ForeignKey("crm_feedback.id", ondelete="CASCADE"), nullable=False, index=True)
    feedback = relationship(Feedback, back_populates="notes")
    text = Column(Text, nullable=False)
    public = Column(Boolean, nullable=False, default=False)
    author_id = Column(Integer, ForeignKey("ab_user.id"))
    author = relationship("CrmUser")
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return self.text[:30]


class Survey(Model):
    """A one-question satisfaction link (score 1-5 + comment) for a resolved subject: single
    use, expires. The link's token is derived from the id and SECRET_KEY (HMAC), and only its
    hash is stored."""

    __tablename__ = "crm_survey"
    id = Column(Integer, primary_key=True)
    subject_kind = Column(String(32), nullable=False)
    subject_id = Column(Integer, nullable=False, index=True)
    subject_no = Column(String(40))
    handler_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    handler = relationship("CrmUser", foreign_keys=[handler_id])
    token_hash = Column(String(64), unique=True)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    expires_at = Column(DateTime, nullable=False)
    sent_to = Column(String(200))
    answered_at = Column(DateTime)
    score = Column(Integer)
    comment = Column(Text)

    def __repr__(self) -> str:
        return f"{self.subject_no or self.subject_id}"


class Revisit(Model):
    """A revisit task raised by a low score (≤ 3): the supervisor calls the customer back within
    24 hours. (The task inbox takes these over when it lands.)"""

    __tablename__ = "crm_revisit"
    id = Column(Integer, primary_key=True)
    subject_kind = Column(String(32), nullable=False)
    subject_id = Column(Integer, nullable=False, index=True)
    subject_no = Column(String(40))
    survey_id = Column(Integer, ForeignKey("crm_survey.id", ondelete="CASCADE"), unique=True)
    survey = relationship(Survey)
    assignee_id = Column(Integer, ForeignKey("ab_user.id"), index=True)
    assignee = relationship("CrmUser", foreign_keys=[assignee_id])
    due_at = Column(DateTime, nullable=False)
    done_at = Column(DateTime)
    result = Column(Text)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return f"{self.subject_no or self.subject_id}"


class PublicChallenge(Model):
    """The anti-bot question of a public form, kept server-side and used once."""

    __tablename__ = "crm_public_challenge"
    id = Column(Integer, primary_key=True)
    token = Column(String(64), unique=True, nullable=False)
    answer = Column(String(20), nullable=False)
    expires_at = Column(DateTime, nullable=False, index=True)
