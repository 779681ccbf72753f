"""Dictionaries (数据字典): the admin-maintained value lists behind choice fields."""
from __future__ import annotations

from flask_appbuilder import Model
from flask_babel import get_locale
from sqlalchemy import event, Boolean, Column, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import relationship


def _localized(zh: str | None, en: str | None) -> str:
    loc = get_locale()
    if loc is not None and loc.language == "en" and en:
        return en
    return zh or en or ""


class DictionaryType(Model):
    __tablename__ = "crm_dictionary_type"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)
    name = Column(String(100), nullable=False)
    name_en = Column(String(100))
    items = relationship("DictionaryItem", back_populates="type", order_by="DictionaryItem.sort")

    def __repr__(self) -> str:
        return _localized(self.name, self.name_en)


class DictionaryItem(Model):
    __tablename__ = "crm_dictionary_item"
    __table_args__ = (UniqueConstraint("type_id", "code", name="uq_dictionary_item_code"),)
    id = Column(Integer, primary_key=True)
    type_id = Column(Integer, ForeignKey("crm_dictionary_type.id"), nullable=False, index=True)
    type = relationship(DictionaryType, back_populates="items")
    # The type's key, copied so that forms can filter choices without a join (see set_type_key).
    type_key = Column(String(64), nullable=False, index=True)
    code = Column(String(64), nullable=False)
    name = Column(String(100), nullable=False)
    name_en = Column(String(100))
    sort = Column(Integer, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return _localized(self.name, self.name_en)


@event.listens_for(DictionaryItem, "before_insert")
@event.listens_for(DictionaryItem, "before_update")
def set_type_key(mapper, connection, item: DictionaryItem) -> None:  # noqa: ARG001
    if item.type is not None:
        item.type_key = item.type.key


def choices_of(type_key: str) -> list:
    """A FAB query filter limiting a related field to one dictionary's active items."""
    from flask_appbuilder.models.sqla.filters import FilterEqual

    return [["type_key", FilterEqual, type_key], ["active", FilterEqual, True]]
