"""Exports (导出): one row per export, whoever asked and however it ran (download at once, job,
command line). It is the export log (who, when, which list, filter, format, rows) and the job's
state (progress, file, expiry) in one."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import relationship

STATUSES = ("queued", "running", "done", "failed", "expired")


class ExportLog(Model):
    __tablename__ = "crm_export_log"
    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    user = relationship("CrmUser")
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    finished_at = Column(DateTime)
    list_name = Column(String(32), nullable=False)  # customers / contacts / interactions
    filter = Column(Text, nullable=False, default="")  # the list's URL arguments (filters and sort)
    format = Column(String(8), nullable=False)  # xlsx / csv
    channel = Column(String(8), nullable=False)  # direct (downloaded at once) / job / cli
    status = Column(String(16), nullable=False, default="queued")
    total = Column(Integer)  # rows matching when the export started
    rows = Column(Integer, nullable=False, default=0)  # rows written (progress while running)
    file_name = Column(String(255))  # download name
    stored_name = Column(String(64), unique=True)  # random name under CRM_EXPORT_DIR (jobs only)
    size = Column(Integer)
    expires_at = Column(DateTime, index=True)
    error = Column(Text)

    def __repr__(self) -> str:
        return self.file_name or f"{self.list_name}.{self.format}"
