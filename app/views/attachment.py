"""Customer attachments (附件): upload on the customer page, list, download, delete.

Same FAB permissions as the customer view for now: seeing the customer (can_show) lets you list
and download its attachments; editing it (can_edit) lets you upload and delete.
"""
from __future__ import annotations

from app.security.scopes import ROW_SCOPE, require_in_scope

from dataclasses import dataclass
from datetime import datetime

from flask import abort, g, send_file
from flask_appbuilder import ModelView
from flask_appbuilder.baseviews import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from markupsafe import Markup, escape

from app.extensions import db
from app.models import Attachment
from app.services import attachments as files
from app.views.lookup import lookup_field
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime

LABELS = {
    "customer": _l("Customer"), "file": _l("File"), "original_name": _l("File Name"),
    "size": _l("Size"), "uploaded_by": _l("Uploaded by"), "uploaded_at": _l("Uploaded at"),
    "extension": _l("Type"), "download": _l("Download"),
}


@dataclass
class CheckedUpload:
    name: str
    ext: str
    data: bytes


def fmt_size(value: int | None) -> str:
    if value is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


class _AttachmentInterface(CrmSQLAInterface):
    """FAB's add, but the file written in pre_add goes again when the row cannot be saved."""

    def add(self, item, commit: bool = True) -> None:
        try:
            super().add(item, commit=commit)
        except Exception:
            files.remove_file(item.stored_name)
            raise

    def delete(self, item, commit: bool = True) -> None:
        stored = item.stored_name
        super().delete(item, commit=commit)  # raises when the row stays: then the file stays too
        files.remove_file(stored)

    def delete_all(self, items) -> None:
        stored = [i.stored_name for i in items]
        super().delete_all(items)
        for name in stored:
            files.remove_file(name)


def _upload_form(form_cls):
    class UploadForm(form_cls):
        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators=extra_validators)
            storage = self.file.data
            if storage is None or not getattr(storage, "filename", None):
                self.file.errors = list(self.file.errors) + [str(_l("Choose a file to upload."))]
                return False
            try:
                data = files.read_upload(storage.filename, storage.stream)
                ext = files.check_upload(storage.filename, data)
            except files.AttachmentRefused as exc:
                self.file.errors = list(self.file.errors) + [str(exc)]
                return False
            self.file.data = CheckedUpload(files.display_name(storage.filename), ext, data)
            return valid
    UploadForm.__name__ = form_cls.__name__
    return UploadForm


class AttachmentModelView(LocalizedValuesMixin, ModelView):
    datamodel = _AttachmentInterface(Attachment)
    base_filters = ROW_SCOPE  # attachments (and their downloads) follow their customer's row scope
    class_permission_name = "CustomerModelView"
    method_permission_name = {"list": "show", "show": "show", "get_file": "show", "add": "edit",
                              "delete": "edit", "edit": "edit_attachment", "download": "show",
                              "action": "edit", "action_post": "edit"}
    # Exactly the customer view's permissions (see CustomerTagModelView); "edit" is never granted.
    base_permissions = ["can_add", "can_delete", "can_download", "can_edit", "can_list", "can_show"]
    list_title = show_title = _l("Attachments")
    add_title = _l("Upload Attachment")
    list_columns = ["original_name", "size", "uploaded_by", "uploaded_at", "download"]
    show_columns = ["customer", "original_name", "extension", "size", "uploaded_by", "uploaded_at", "download"]
    add_columns = ["customer", "file"]
    edit_columns = ["original_name"]
    search_columns = ["original_name", "uploaded_at"]
    base_order = ("id", "desc")
    label_columns = LABELS
    add_form_extra_fields = {"customer": lookup_field(_l("Customer")), "file": FileField(_l("File"), description=_l(
        "PDF, PNG, JPG, XLSX, DOCX or TXT, at most 20 MB by default. Stored outside the database."))}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.formatters_columns = {**self.formatters_columns, "uploaded_at": fmt_datetime, "size": fmt_size}

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _upload_form(self.add_form)

    def pre_add(self, item: Attachment) -> None:
        require_in_scope(item.customer)  # before anything is written to disk
        upload: CheckedUpload = item.file  # set by the form's validate, after every check passed
        item.original_name = upload.name
        item.extension = upload.ext
        item.size = len(upload.data)
        item.stored_name, item.sha256 = files.write_file(upload.data, upload.ext)
        item.uploaded_by_id = g.user.id
        item.uploaded_at = datetime.utcnow()

    @expose("/file/<int:pk>")
    @has_access
    def get_file(self, pk: int):
        """Always a download (Content-Disposition: attachment; filename*=UTF-8''…), never inline,
        with a fixed safe content type and nosniff."""
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        try:
            path = files.file_path(item.stored_name)
            if not path.is_file():
                abort(404)
        except FileNotFoundError:
            abort(404)
        resp = send_file(path, mimetype=files.content_type(item.extension), as_attachment=True,
                         download_name=item.original_name, max_age=0, conditional=False, etag=False)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        resp.headers["Cache-Control"] = "private, no-store"
        return resp


def _download_link(self) -> Markup:
    from flask import url_for

    return Markup('<a href="%s"><i class="fa fa-download"></i> %s</a>') % (
        url_for("AttachmentModelView.get_file", pk=self.id), escape(self.original_name))


Attachment.download = property(_download_link)
