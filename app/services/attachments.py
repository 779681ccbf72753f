"""Attachments (附件) of customers, interaction records and service tickets: what may be
uploaded, where the bytes go, how they come back.

Files live outside the database under CRM_ATTACHMENT_DIR (default instance/attachments/) with
random names; the user's file name is kept only for display and for the download header. A file
is accepted only when its extension is allowed AND its content looks like that type (magic
bytes, zip layout, text without markup), and it is no larger than CRM_ATTACHMENT_MAX_MB.
HTML, SVG and other browser-executable types are never accepted, whatever the configuration.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from flask_babel import gettext

DEFAULT_TYPES = ("pdf", "png", "jpg", "jpeg", "xlsx", "docx", "txt")
# Served as these types only, always as a download; anything else never reaches the disk.
CONTENT_TYPES = {
    "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain; charset=utf-8",
}
_MARKUP = re.compile(rb"<\s*(!doctype|html|head|body|script|svg|iframe|object|embed|\?xml|meta|style|a\s)", re.I)


@dataclass
class CheckedUpload:
    """An upload that passed every check, not yet on disk."""
    name: str
    ext: str
    data: bytes


class AttachmentRefused(ValueError):
    """An upload that is not stored; ``str()`` names the file and the reason, in the user's language."""

    def __init__(self, filename: str, reason: str):
        self.filename, self.reason = filename, reason
        super().__init__(gettext("File \"%(name)s\" was not saved: %(reason)s", name=filename, reason=reason))


def attachment_dir() -> Path:
    folder = current_app.config.get("CRM_ATTACHMENT_DIR") or os.path.join(current_app.instance_path, "attachments")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def allowed_types() -> list[str]:
    configured = current_app.config.get("CRM_ATTACHMENT_TYPES") or DEFAULT_TYPES
    if isinstance(configured, str):
        configured = configured.split(",")
    # Only types we can recognise by content (and serve safely) count, whatever is configured.
    return [t for t in (c.strip().lower().lstrip(".") for c in configured) if t in CONTENT_TYPES]


def max_mb() -> float:
    return float(current_app.config.get("CRM_ATTACHMENT_MAX_MB") or 20)


def max_bytes() -> int:
    return int(max_mb() * 1024 * 1024)


def display_name(filename: str | None) -> str:
    """The user's file name without any folder part or control characters (display only)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 254 - len(ext)] + dot + ext) if dot else name[:255]
    return name or "file"


def _zip_has(data: bytes, folder: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, ValueError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith(folder) for n in names)


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    for enc in ("utf-8-sig", "gb18030"):
        try:
            data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        return False
    return _MARKUP.search(data[:4096]) is None


SNIFFERS = {
    "pdf": lambda d: d.startswith(b"%PDF-"),
    "png": lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"),
    "jpg": lambda d: d.startswith(b"\xff\xd8\xff"),
    "jpeg": lambda d: d.startswith(b"\xff\xd8\xff"),
    "xlsx": lambda d: d.startswith(b"PK\x03\x04") and _zip_has(d, "xl/"),
    "docx": lambda d: d.startswith(b"PK\x03\x04") and _zip_has(d, "word/"),
    "txt": _is_text,
}


def read_upload(filename: str, stream) -> bytes:
    """Read at most the size limit (+1 byte to know it was exceeded) from an upload stream."""
    limit = max_bytes()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise AttachmentRefused(display_name(filename), gettext(
            "the file is larger than the limit of %(limit)s MB.", limit=f"{max_mb():g}"))
    return data


def check_upload(filename: str | None, data: bytes) -> str:
    """The checked extension of an upload, or AttachmentRefused naming the file and the reason."""
    name = display_name(filename)
    allowed = allowed_types()
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if ext not in allowed:
        raise AttachmentRefused(name, gettext("files of type %(ext)s are not accepted (allowed: %(allowed)s).",
                                              ext=f".{ext}" if ext else "(none)", allowed=", ".join(allowed)))
    if len(data) > max_bytes():
        raise AttachmentRefused(name, gettext("the file is larger than the limit of %(limit)s MB.",
                                              limit=f"{max_mb():g}"))
    if not data:
        raise AttachmentRefused(name, gettext("the file is empty."))
    if not SNIFFERS[ext](data):
        raise AttachmentRefused(name, gettext("its content is not a %(ext)s file.", ext=ext.upper()))
    return ext


def write_file(data: bytes, ext: str) -> tuple[str, str]:
    """Store the bytes under a random name; returns (stored_name, sha256). Never the user's name."""
    stored = f"{secrets.token_hex(16)}.{ext}"
    path = attachment_dir() / stored
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "xb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return stored, hashlib.sha256(data).hexdigest()


def file_path(stored_name: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}\.[a-z]{1,8}", stored_name or ""):
        raise FileNotFoundError(stored_name)
    return attachment_dir() / stored_name


def remove_file(stored_name: str | None) -> None:
    if not stored_name:
        return
    try:
        file_path(stored_name).unlink()
    except FileNotFoundError:
        pass


def content_type(ext: str) -> str:
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def checked_uploads(storages) -> list[CheckedUpload]:
    """Every chosen file of a form/multipart field (one FileStorage or a list; empty file inputs
    are skipped), each read and checked before any is stored: the first refused file raises
    AttachmentRefused naming it, and nothing is written."""
    if storages is None:
        return []
    if not isinstance(storages, (list, tuple)):
        storages = [storages]
    checked = []
    for storage in storages:
        if isinstance(storage, CheckedUpload):
            checked.append(storage)
            continue
        if storage is None or not getattr(storage, "filename", None):
            continue
        data = read_upload(storage.filename, storage.stream)
        checked.append(CheckedUpload(display_name(storage.filename), check_upload(storage.filename, data), data))
    return checked


def store(item, upload: CheckedUpload, user_id: int | None):
    """Write a checked upload to disk and fill the Attachment row ``item`` with it. The file goes
    again if the transaction rolls back (app/models/attachment.py)."""
    from app.extensions import db
    from app.models.attachment import written_in_transaction

    item.original_name = upload.name
    item.extension = upload.ext
    item.size = len(upload.data)
    item.stored_name, item.sha256 = write_file(upload.data, upload.ext)
    written_in_transaction(db.session, item.stored_name)
    item.uploaded_by_id = user_id
    item.uploaded_at = datetime.utcnow()
    return item


def attach(owner, uploads: list[CheckedUpload], user_id: int | None) -> list:
    """Attach checked uploads to an interaction record or a ticket (``owner``), in the current
    transaction: the rows carry the owner's customer too, so row scope works through it."""
    from app.extensions import db
    from app.models import Attachment

    added = []
    with db.session.no_autoflush:  # the new record may be half-made (pre_add)
        customer = owner.customer
        for upload in uploads:
            att = store(Attachment(), upload, user_id)
            owner.attachments.append(att)
            if customer is not None:
                att.customer = customer
            else:
                att.customer_id = owner.customer_id
            added.append(att)
    return added


def attach_saved(owner, uploads: list[CheckedUpload], user_id: int | None) -> list:
    """Attach checked uploads to an existing record and commit (上传附件 on a page, the API)."""
    from app.extensions import db

    added = attach(owner, uploads, user_id)
    db.session.commit()
    return added
