"""Sequence counters behind numbering rules (编号规则): one row per rule and period."""
from flask_appbuilder import Model
from sqlalchemy import Column, Integer, String, UniqueConstraint


class SequenceCounter(Model):
    __tablename__ = "crm_sequence_counter"
    __table_args__ = (UniqueConstraint("rule_key", "period", name="uq_sequence_counter_rule_period"),)
    id = Column(Integer, primary_key=True)
    rule_key = Column(String(64), nullable=False)
    period = Column(String(16), nullable=False)  # "20240501", "202405", "2024" or "-"
    value = Column(Integer, nullable=False, default=0)
