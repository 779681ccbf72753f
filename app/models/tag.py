"""Tags (标签): dimensions and their values (区域-华东), and which customer carries which tag."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, UniqueConstraint
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
    __table_args__ = (UniqueConstraint("customer_id", "tag_id", name="uq_customer_tag"),)
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship("Customer", backref=backref("tag_links", cascade="all, delete-orphan",
                                                       passive_deletes=True, order_by="CustomerTag.id"))
    tag_id = Column(Integer, ForeignKey("crm_tag.id", ondelete="CASCADE"), nullable=False, index=True)
    tag = relationship(Tag)
    source = Column(String(16), nullable=False, default=SOURCE_MANUAL)  # manual | rule
    rule_id = Column(Integer, nullable=True)  # the tagging rule that set it (rules come later; no FK yet)
    tagged_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, index=True)
    tagged_by = relationship("CrmUser", foreign_keys=[tagged_by_id])
    tagged_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return self.tag.label if self.tag is not None else ""
