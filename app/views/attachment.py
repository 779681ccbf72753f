"""Attachments (附件): of a customer (its page's tab: upload, list, download, delete), and of an
interaction record or a service ticket (files on their add forms, "上传附件" on their pages and
the customer's timeline, ``POST /api/v1/<interaction|ticket>/<pk>/attachments``).

Customer attachments have the customer view's FAB permissions: seeing the customer (can_show)
lets you list and download its attachments; editing it (can_edit) lets you upload and delete.
Interaction and ticket attachments are uploaded with ``can_attach`` on their view / API, and
downloaded through the same route, in the customer's row scope (a ticket's: also the ticket's).
"""
from __future__ import annotations

from app.security.scopes import ROW_SCOPE, require_in_scope

from flask import abort, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import ModelView
from flask_appbuilder.api import protect, safe
from flask_appbuilder.baseviews import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, MultipleFileField
from markupsafe import Markup, escape

from app.models import Attachment
from app.services import attachments as files
from app.views.lookup import lookup_field
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime

LABELS = {
    "customer": _l("Customer"), "file": _l("File"), "original_name": _l("File Name"),
    "size": _l("Size"), "uploaded_by": _l("Uploaded by"), "uploaded_at": _l("Uploaded at"),
    "extension": _l("Type"), "download": _l("Download"), "interaction": _l("Interaction"), "ticket": _l("Ticket"),
}


def fmt_size(value: int | None) -> str:
    if value is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def _upload_form(form_cls, field: str = "file", required: bool = True):
    """The FAB form class whose file field ``field`` holds, once valid, the list of checked
    uploads (CheckedUpload); a refused file is named next to the field and nothing is saved."""
    class UploadForm(form_cls):
        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators=extra_validators)
            target = self[field]
            try:
                target.data = files.checked_uploads(target.data)
            except files.AttachmentRefused as exc:
                target.errors = list(target.errors) + [str(exc)]
                return False
            if required and not target.data:
                target.errors = list(target.errors) + [str(_l("Choose a file to upload."))]
                return False
            return valid
    UploadForm.__name__ = form_cls.__name__
    return UploadForm


ATTACHMENT_HELP = _l("PDF, PNG, JPG, XLSX, DOCX or TXT, at most 20 MB by default. Stored outside the database.")


def attachment_files_field():
    """The add forms' file input (several files) of interaction records and tickets."""
    return MultipleFileField(_l("Attachments"), description=ATTACHMENT_HELP)


class AttachableViewMixin:
    """For an interaction / ticket ModelView: files chosen on the add form (field
    ``attachment_files``) are stored with the record; ``POST <view>/attach/<pk>`` (permission
    can_attach, field ``files``) adds files to an existing one, then goes back to ``next``."""

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _upload_form(self.add_form, "attachment_files", required=False)

    def attach_uploads(self, item) -> None:
        """Call last in pre_add, once the record is otherwise complete."""
        files.attach(item, getattr(item, "attachment_files", None) or [], g.user.id)

    @expose("/attach/<int:pk>", methods=["POST"])
    @has_access
    def attach(self, pk: int):
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        back = request.form.get("next") or ""
        if not back.startswith("/") or back[1:2] in ("/", "\\"):  # our own pages only
            back = url_for(f"{self.__class__.__name__}.show", pk=pk)
        try:
            uploads = files.checked_uploads(request.files.getlist("files"))
        except files.AttachmentRefused as exc:
            flash(str(exc), "danger")
            return redirect(back)
        if not uploads:
            flash(gettext("Choose a file to upload."), "danger")
            return redirect(back)
        files.attach_saved(item, uploads, g.user.id)
        flash(gettext("%(n)d file(s) attached: %(names)s", n=len(uploads), names="、".join(u.name for u in uploads)),
              "success")
        return redirect(back)


def attachment_dicts(item) -> list[dict]:
    return [{"id": a.id, "name": a.original_name, "size": a.size, "type": a.extension,
             "uploaded_by": getattr(a.uploaded_by, "username", None), "uploaded_at": a.uploaded_at,
             "download_url": url_for("AttachmentModelView.get_file", pk=a.id)} for a in item.attachments]


class AttachableApiMixin:
    """For an interaction / ticket REST API: ``attachments`` in GET /<pk>, and
    ``POST /<pk>/attachments`` (multipart, field ``files``, one or several; permission
    can_attach): 201 with the stored files, 422 naming a refused file (none is stored), 404
    outside the scope."""

    def pre_get(self, data: dict) -> None:
        super().pre_get(data)
        item = self.datamodel.get(data.get("id"), self._base_filters) if data.get("id") else None
        if item is not None and isinstance(data.get("result"), dict):
            data["result"]["attachments"] = attachment_dicts(item)

    @expose("/<int:pk>/attachments", methods=["POST"])
    @protect()
    @safe
    def attach(self, pk: int):
        """Attach files (multipart/form-data, field ``files``).
        ---
        post:
          responses:
            201: {description: the record's attachments}
            404: {description: not found or outside your scope}
            422: {description: a file was refused (type, content or size); nothing was stored}
        """
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            return self.response_404()
        try:
            uploads = files.checked_uploads(request.files.getlist("files"))
        except files.AttachmentRefused as exc:
            return self.response(422, message=str(exc), file=exc.filename)
        if not uploads:
            return self.response(422, message=gettext("Choose a file to upload."))
        files.attach_saved(item, uploads, g.user.id)
        return self.response(201, attachments=attachment_dicts(item))


class AttachmentModelView(LocalizedValuesMixin, ModelView):
    # Files follow their rows: written in pre_add and removed again when the row is not saved,
    # removed after the commit of a delete (session listeners in app/models/attachment.py).
    datamodel = CrmSQLAInterface(Attachment)
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
    show_columns = ["customer", "interaction", "ticket", "original_name", "extension", "size", "uploaded_by", "uploaded_at", "download"]
    add_columns = ["customer", "file"]
    edit_columns = ["original_name"]
    search_columns = ["original_name", "uploaded_at"]
    base_order = ("id", "desc")
    label_columns = LABELS
    add_form_extra_fields = {"customer": lookup_field(_l("Customer")), "file": FileField(_l("File"), description=ATTACHMENT_HELP)}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.formatters_columns = {**self.formatters_columns, "uploaded_at": fmt_datetime, "size": fmt_size}

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _upload_form(self.add_form)

    def pre_add(self, item: Attachment) -> None:
        require_in_scope(item.customer)  # before anything is written to disk
        files.store(item, item.file[0], g.user.id)  # checked by the form's validate

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
    return Markup('<a href="%s"><i class="fa fa-download"></i> %s</a>') % (
        url_for("AttachmentModelView.get_file", pk=self.id), escape(self.original_name))


Attachment.download = property(_download_link)
Attachment.size_label = property(lambda self: fmt_size(self.size))
