"""Tags (标签): dimensions and their values (区域-华东), and which customer carries which tag."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import backref, relationship

from app.models.dictionary import _localized

TAG_SEPARATOR = "-"
SOURCE_MANUAL, SOURCE_RULE = "manual", "rule"


class TagDimension(Model):
    """A tag dimension (标签维度): 区域, 消费能力, 活跃度, 需求 ..."""
    __tablename__ = "crm_tag_dimension"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    name = Column(String(50), unique=True, nullable=False)
    name_en = Column(String(100))
    sort = Column(Integer, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)
    # one value at a time (活跃 and 沉睡 together is a conflict the audit flags)
    exclusive = Column(Boolean, nullable=False, default=False, server_default=false())
    tags = relationship("Tag", back_populates="dimension", order_by="Tag.sort")

    def __repr__(self) -> str:
        return _localized(self.name, self.name_en)


class Tag(Model):
    """One value of a dimension; shown as 维度-值 (区域-华东)."""
    __tablename__ = "crm_tag"
    __table_args__ = (UniqueConstraint("dimension_id", "name", name="uq_tag_dimension_name"),)
    id = Column(Integer, primary_key=True)
    dimension_id = Column(Integer, ForeignKey("crm_tag_dimension.id"), nullable=False, index=True)
    dimension = relationship(TagDimension, back_populates="tags")
    name = Column(String(50), nullable=False)
    name_en = Column(String(100))
    sort = Column(Integer, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)

    @property
    def label(self) -> str:
        """维度-值 in Chinese (the name users type), localised in English when both are known."""
        dim = self.dimension
        if dim is None:
            return self.name
        return f"{_localized(dim.name, dim.name_en)}{TAG_SEPARATOR}{_localized(self.name, self.name_en)}"

    def __repr__(self) -> str:
        return self.label


class CustomerTag(Model):
    """A tag on a customer: who put it there, when, and how (by hand or by a rule)."""
    __tablename__ = "crm_customer_tag"
    # (tag_id, customer_id): a tag's customers in customer order, for tag filters on big tables
    __table_args__ = (UniqueConstraint("customer_id", "tag_id", name="uq_customer_tag"),
                      Index("ix_crm_customer_tag_tag_customer", "tag_id", "customer_id"))
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer", backref=backref("tag_links", cascade="all, delete-orphan",
                                                       passive_deletes=True, order_by="CustomerTag.id"))
    tag_id = Column(Integer, ForeignKey("crm_tag.id", ondelete="CASCADE"), nullable=False)
    tag = relationship(Tag)
    source = Column(String(16), nullable=False, default=SOURCE_MANUAL)  # manual | rule
    rule_id = Column(Integer, nullable=True, index=True)  # the tagging rule that set it (crm_tagging_rule.id)
    tagged_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, index=True)
    tagged_by = relationship("CrmUser", foreign_keys=[tagged_by_id])
    tagged_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return self.tag.label if self.tag is not None else ""


# -- tagging rules (自动打标规则) and the monthly tag audit (每月标签核查) -------------------------

class TaggingRule(Model):
    """A rule an admin edits as data: when every condition holds, the customer gets ``tag``
    (and, with ``remove_unmet``, loses it again when they stop holding)."""
    __tablename__ = "crm_tagging_rule"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True)  # seeded rules only
    name = Column(String(100), unique=True, nullable=False)
    tag_id = Column(Integer, ForeignKey("crm_tag.id"), nullable=False, index=True)
    tag = relationship(Tag)
    active = Column(Boolean, nullable=False, default=False)
    remove_unmet = Column(Boolean, nullable=False, default=True)
    description = Column(String(255))
    updated_at = Column(DateTime, nullable=False, default=datetime.utcnow, onupdate=datetime.utcnow)
    last_run_at = Column(DateTime)
    last_result = Column(String(255))
    conditions = relationship("TaggingRuleCondition", back_populates="rule", cascade="all, delete-orphan",
                              order_by="TaggingRuleCondition.id")

    def __repr__(self) -> str:
        return self.name


class TaggingRuleCondition(Model):
    """One condition of a rule: a catalogue field (or ``interactions``: the count of interaction
    records in the last ``window_days`` days), an operator from the whitelist and a value."""
    __tablename__ = "crm_tagging_rule_condition"
    id = Column(Integer, primary_key=True)
    rule_id = Column(Integer, ForeignKey("crm_tagging_rule.id", ondelete="CASCADE"), nullable=False, index=True)
    rule = relationship(TaggingRule, back_populates="conditions")
    field = Column(String(64), nullable=False)
    operator = Column(String(16), nullable=False)
    value = Column(String(200))
    window_days = Column(Integer)

    def __repr__(self) -> str:
        window = f" ({self.window_days}d)" if self.window_days else ""
        return f"{self.field}{window} {self.operator} {self.value or ''}".strip()


class TagChange(Model):
    """Every tag a rule or an audit put on or took off a customer: what, who (rule or person), when."""
    __tablename__ = "crm_tag_change"
    id = Column(Integer, primary_key=True)
    batch = Column(String(32), nullable=False, index=True)  # one rule application or audit decision
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    tag_id = Column(Integer, ForeignKey("crm_tag.id", ondelete="CASCADE"), nullable=False, index=True)
    action = Column(String(8), nullable=False)  # add | remove
    source = Column(String(16), nullable=False)  # rule | audit
    rule_id = Column(Integer, ForeignKey("crm_tagging_rule.id", ondelete="SET NULL"), index=True)
    round_id = Column(Integer, ForeignKey("crm_tag_audit_round.id", ondelete="SET NULL"), index=True)
    user_id = Column(Integer, ForeignKey("ab_user.id"))
    changed_at = Column(DateTime, nullable=False, default=datetime.utcnow)


class TagSuppression(Model):
    """A tag removed from a customer in an audit: rules do not put it back until the evidence
    changes (the customer file is edited, a new interaction is recorded, or the rule is edited)."""
    __tablename__ = "crm_tag_suppression"
    __table_args__ = (UniqueConstraint("customer_id", "tag_id", name="uq_tag_suppression"),)
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    tag_id = Column(Integer, ForeignKey("crm_tag.id", ondelete="CASCADE"), nullable=False, index=True)
    round_id = Column(Integer, ForeignKey("crm_tag_audit_round.id", ondelete="SET NULL"))
    removed_at = Column(DateTime, nullable=False, default=datetime.utcnow)


class TagAuditRound(Model):
    """One department's audit of one month (2024-05): its items, progress and closing summary."""
    __tablename__ = "crm_tag_audit_round"
    __table_args__ = (UniqueConstraint("department_id", "month", name="uq_tag_audit_round"),)
    id = Column(Integer, primary_key=True)
    department_id = Column(Integer, ForeignKey("crm_department.id"), nullable=False, index=True)
    department = relationship("Department")
    month = Column(String(7), nullable=False)  # YYYY-MM
    status = Column(String(8), nullable=False, default="open")  # open | closed
    opened_by_id = Column(Integer, ForeignKey("ab_user.id"))
    opened_by = relationship("CrmUser", foreign_keys=[opened_by_id])
    opened_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    closed_by_id = Column(Integer, ForeignKey("ab_user.id"))
    closed_by = relationship("CrmUser", foreign_keys=[closed_by_id])
    closed_at = Column(DateTime)
    summary = Column(String(4000))  # JSON written when the round closes

    def __repr__(self) -> str:
        return f"{self.department} {self.month}"


class TagAuditItem(Model):
    """One customer's tag in a round, with the decision taken on it and by whom."""
    __tablename__ = "crm_tag_audit_item"
    id = Column(Integer, primary_key=True)
    round_id = Column(Integer, ForeignKey("crm_tag_audit_round.id", ondelete="CASCADE"), nullable=False, index=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    tag_id = Column(Integer, ForeignKey("crm_tag.id", ondelete="CASCADE"), nullable=False)
    source = Column(String(16))  # evidence as it was when the round opened
    rule_id = Column(Integer)
    tagged_by_id = Column(Integer)
    tagged_at = Column(DateTime)
    conflict = Column(Boolean, nullable=False, default=False)
    decision = Column(String(8))  # None (unchecked) | confirm | remove | change
    new_tag_id = Column(Integer, ForeignKey("crm_tag.id"))
    checked_by_id = Column(Integer, ForeignKey("ab_user.id"))
    checked_at = Column(DateTime)
