"""Spreadsheet imports (导入): each upload is a batch with its counts, report and the customers it
created or changed (so it can be undone); column mappings can be saved as named templates."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import relationship

# uploaded -> checking -> checked (dry run / preview) -> importing -> done | rejected | failed | cancelled
# done -> undone
STATUS_LABELS = {"uploaded": _l("uploaded"), "queued": _l("queued"), "checking": _l("checking"),
                 "checked": _l("checked"), "importing": _l("importing"), "done": _l("imported"),
                 "rejected": _l("rejected"), "failed": _l("failed"), "cancelled": _l("cancelled"),
                 "undone": _l("undone")}


class ImportBatch(Model):
    __tablename__ = "crm_import_batch"
    id = Column(Integer, primary_key=True)
    created_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=False, index=True)
    created_by = relationship("CrmUser", foreign_keys=[created_by_id])
    created_on = Column(DateTime, nullable=False, default=datetime.utcnow, index=True)
    finished_on = Column(DateTime)
    file_name = Column(String(255), nullable=False)
    file_hash = Column(String(64), nullable=False, index=True)  # sha256 of the upload
    file_path = Column(String(500), nullable=False)  # stored copy (CRM_IMPORT_DIR)
    file_purged_on = Column(DateTime)  # when the retention job deleted the stored copy
    sheet = Column(String(100))
    mapping = Column(Text)  # JSON: [[header, field key or "-" for ignored or null], ...]
    mode = Column(String(10), nullable=False, default="all")  # all (all-or-nothing) / valid
    update_by = Column(String(20))  # None / customer_no / credit_code (customers) / phone (contacts)
    dry_run = Column(Boolean, nullable=False, default=False)
    # what the file holds: customers / contacts / interactions (app.services.importer.KINDS)
    kind = Column(String(20), nullable=False, default="customers", server_default="customers")
    status = Column(String(20), nullable=False, default="uploaded", index=True)
    cancel_requested = Column(Boolean, nullable=False, default=False)
    job_id = Column(String(120))  # the RQ job of the last run (to tell a dead worker's batch)
    started_on = Column(DateTime)  # when the last run began
    rows_total = Column(Integer, nullable=False, default=0)
    rows_valid = Column(Integer, nullable=False, default=0)
    rows_created = Column(Integer, nullable=False, default=0)
    rows_updated = Column(Integer, nullable=False, default=0)
    rows_rejected = Column(Integer, nullable=False, default=0)
    report = Column(Text)  # JSON: errors with msgids, rendered in the reader's language
    undone_by_id = Column(Integer, ForeignKey("ab_user.id"))
    undone_by = relationship("CrmUser", foreign_keys=[undone_by_id])
    undone_on = Column(DateTime)

    def __repr__(self) -> str:
        return f"#{self.id} {self.file_name}"

    def status_label(self) -> str:
        return str(STATUS_LABELS.get(self.status, self.status))


class ImportItem(Model):
    """A record an import created or updated; ``before`` holds an updated one's previous values.
    ``entity``: customer (then ``customer_id`` is the record), contact or interaction (then
    ``entity_id`` is the record and ``customer_id`` / ``customer_no`` its customer)."""
    __tablename__ = "crm_import_item"
    id = Column(Integer, primary_key=True)
    batch_id = Column(Integer, ForeignKey("crm_import_batch.id", ondelete="CASCADE"), nullable=False, index=True)
    customer_id = Column(Integer, nullable=False, index=True)  # no FK: undo deletes the customer
    customer_no = Column(String(40), nullable=False)
    row = Column(Integer, nullable=False)  # the spreadsheet's row number
    action = Column(String(10), nullable=False)  # create / update (touch: a customer's last contact moved)
    entity = Column(String(20), nullable=False, default="customer", server_default="customer")
    entity_id = Column(Integer)  # contacts and interactions: the record (no FK: undo deletes it)
    before = Column(Text)  # JSON, updates only


class ImportTemplate(Model):
    """A named column mapping (表头 -> 字段), chosen again for the next file of the same shape."""
    __tablename__ = "crm_import_template"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), unique=True, nullable=False)
    mapping = Column(Text, nullable=False)  # JSON: {header: field key or "-"}
    created_by_id = Column(Integer, ForeignKey("ab_user.id"))
    created_by = relationship("CrmUser", foreign_keys=[created_by_id])
    created_on = Column(DateTime, nullable=False, default=datetime.utcnow)

    def __repr__(self) -> str:
        return self.name
