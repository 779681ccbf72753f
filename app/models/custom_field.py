"""Admin-defined customer fields (字段配置): their definitions. Values live in Customer.extra,
keyed by CustomField.key; app/services/fields.py turns these rows into FieldSpecs."""
from __future__ import annotations

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, event
from sqlalchemy.orm import relationship


class CustomField(Model):
    __tablename__ = "crm_custom_field"
    id = Column(Integer, primary_key=True)
    key = Column(String(40), unique=True, nullable=False)  # ascii slug, the key inside Customer.extra
    label_zh = Column(String(100), nullable=False)
    label_en = Column(String(100))
    field_type = Column(String(20), nullable=False)  # one of app.services.fields.TYPES
    required = Column(Boolean, nullable=False, default=False)
    dictionary_type_id = Column(Integer, ForeignKey("crm_dictionary_type.id"), nullable=True)
    dictionary_type = relationship("DictionaryType")
    category = Column(String(20), nullable=False, default="basic")  # one of fields.CATEGORIES
    group = Column(String(50))  # admin-defined second-level group (free text)
    position = Column(Integer, nullable=False, default=0)
    in_list = Column(Boolean, nullable=False, default=False)
    searchable = Column(Boolean, nullable=False, default=False)
    retired = Column(Boolean, nullable=False, default=False)

    def __repr__(self) -> str:
        return self.label_zh or self.key


@event.listens_for(CustomField, "after_insert")
@event.listens_for(CustomField, "after_update")
@event.listens_for(CustomField, "after_delete")
def _forget_cached_specs(mapper, connection, target) -> None:  # noqa: ARG001
    from app.services.fields import forget_custom_specs

    forget_custom_specs()
