"""Numbering rules (编号规则) and the sequence counters behind them.

A rule is data: prefix + date part + a segment taken from the record (or its parent's number)
+ a zero-padded sequence, joined by an optional separator. Counters live in one row per rule,
period (the reset window) and scope (the segment's value), see app/services/numbering.py.
"""
from __future__ import annotations

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, Integer, String, UniqueConstraint


class NumberingRule(Model):
    __tablename__ = "crm_numbering_rule"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), unique=True, nullable=False)  # what code asks for: next_number("customer", ...)
    target = Column(String(64), nullable=False)  # registered record kind: decides the allowed segments
    name = Column(String(100), nullable=False)
    name_en = Column(String(100))
    prefix = Column(String(20), nullable=False, default="")
    date_part = Column(String(16), nullable=False, default="")  # "", yyyy, yyyymm, yyyymmdd
    separator = Column(String(3), nullable=False, default="")
    field_segment = Column(String(64), nullable=False, default="")  # "" or a name registered for target
    width = Column(Integer, nullable=False, default=3)
    reset_period = Column(String(16), nullable=False, default="daily")  # daily/monthly/yearly/never
    active = Column(Boolean, nullable=False, default=True)

    def preview(self) -> str:
        """What the next number would look like (nothing is consumed)."""
        from app.services.numbering import preview

        try:
            return preview(self)
        except Exception:  # noqa: BLE001  (a half-edited rule must not break the list page)
            return "—"

    def __repr__(self) -> str:
        from app.models.dictionary import _localized

        return _localized(self.name, self.name_en)


class SequenceCounter(Model):
    __tablename__ = "crm_sequence_counter"
    __table_args__ = (UniqueConstraint("rule_key", "period", "scope", name="uq_sequence_counter_rule_period_scope"),)
    id = Column(Integer, primary_key=True)
    rule_key = Column(String(64), nullable=False)
    period = Column(String(16), nullable=False)  # "20240501", "202405", "2024" or "-"
    scope = Column(String(64), nullable=False, default="", server_default="")  # segment value: "I", "C20240501001"
    value = Column(Integer, nullable=False, default=0)
