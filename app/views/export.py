"""Export buttons on the CRM lists, 我的导出 (the requester's exports and their files) and the
admins' export log. The work is done by app/services/export.py."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

from flask import abort, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import ModelView
from flask_appbuilder.baseviews import expose
from flask_appbuilder.models.sqla.filters import FilterEqualFunction
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext, lazy_gettext as _l
from markupsafe import Markup, escape

from app.extensions import appbuilder
from app.models import ExportLog
from app.services import export as exports
from app.views.lookup import PickersMixin
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CONTENT_TYPES = {"xlsx": XLSX_TYPE, "csv": "text/csv; charset=utf-8"}


def _send(path: Path, name: str, fmt: str, remove: bool = False):
    """A file as a download (never inline); ``remove``: read it now and delete it."""
    source = BytesIO(path.read_bytes()) if remove else str(path)
    if remove:
        path.unlink(missing_ok=True)
    resp = send_file(source, mimetype=CONTENT_TYPES[fmt], as_attachment=True, download_name=name,
                     max_age=0, conditional=False, etag=False)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


class ExportMixin:
    """On a CRM ModelView: 导出 Excel / 导出 CSV buttons above the list carrying its current
    filters and sort, and POST /<view>/export/<xlsx|csv> (permission can_export)."""

    export_name: str = ""  # the name for `flask crm export NAME`
    # column -> a function called once per export, giving the cell of a row: for a column the
    # list computes at a cost per row (a query, an HTML badge); the file does that work once
    # (app.services.export.labelled for badges)
    export_cells: dict = {}
    list_template = "crm/list_export.html"

    def render_template(self, template, **kwargs):
        if template == self.list_template:
            kwargs.update(export_view=self.__class__.__name__,
                          can_export=appbuilder.sm.has_access("can_export", self.class_permission_name))
        return super().render_template(template, **kwargs)

    @expose("/export/<fmt>", methods=["POST"])
    @has_access
    def export(self, fmt: str):
        try:
            started = exports.start_export(self, fmt, request.args, g.user)
        except exports.ExportRefused as exc:  # only from hand-made URLs: the list offers none of these
            flash(str(exc), "danger")
            return redirect(url_for(f"{self.__class__.__name__}.list"))
        if started.path is not None:
            return _send(started.path, started.log.file_name, started.log.format, remove=True)
        flash(gettext("The export of %(count)s rows runs in the background; download it from My Exports "
                      "when it is ready.", count=started.log.total), "info")
        return redirect(url_for("MyExportsView.list"))


def _status(log: ExportLog) -> Markup:
    labels = {"queued": _l("Queued"), "running": _l("Running"), "done": _l("Done"), "failed": _l("Failed"),
              "expired": _l("Expired")}
    text = escape(str(labels.get(log.status, log.status)))
    if log.status in ("queued", "running"):
        pct = int(100 * (log.rows or 0) / log.total) if log.total else 0
        return Markup('<span class="crm-export-pending">%s %s%% (%s / %s)</span>') % (
            text, pct, log.rows or 0, log.total or 0)
    return Markup("%s") % text


def _link(log: ExportLog) -> Markup:
    if exports.file_of(log) is None:
        return Markup("")
    return Markup('<a href="%s"><i class="fa fa-download"></i> %s</a>') % (
        url_for("MyExportsView.fetch", pk=log.id), log.file_name)


def _me():
    return g.user.id


class MyExportsView(LocalizedValuesMixin, ModelView):
    """我的导出: the user's own exports, newest first, with progress (the page reloads itself
    while one runs) and the download link of finished job files. Nobody else's, admins included."""

    route_base = "/myexports"
    datamodel = CrmSQLAInterface(ExportLog)
    base_filters = [["user_id", FilterEqualFunction, _me]]
    include_route_methods = {"list", "fetch"}
    base_permissions = ["can_list"]
    method_permission_name = {"fetch": "list"}
    list_template = "crm/my_exports.html"
    list_title = _l("My Exports")
    list_columns = ["created_at", "list_name", "format", "status_line", "rows", "expires_at", "download"]
    label_columns = {"created_at": _l("Time"), "list_name": _l("List"), "format": _l("Format"),
                     "status_line": _l("Status"), "rows": _l("Rows"), "expires_at": _l("Available until"),
                     "download": _l("Download")}
    base_order = ("id", "desc")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.formatters_columns = {**self.formatters_columns, "created_at": fmt_datetime,
                                   "expires_at": fmt_datetime}

    @expose("/fetch/<int:pk>")
    @has_access
    def fetch(self, pk: int):
        log = self.datamodel.get(pk, self._base_filters)  # someone else's export: None -> 404
        path = exports.file_of(log) if log is not None else None
        if path is None:
            abort(404)
        return _send(path, log.file_name, log.format)


# Columns computed for display (FAB lists read attributes of the row).
ExportLog.status_line = property(_status)
ExportLog.download = property(_link)


class ExportLogModelView(PickersMixin, LocalizedValuesMixin, ModelView):
    """导出记录 (admins, read only): every export by anyone, with its filter and row count."""

    datamodel = CrmSQLAInterface(ExportLog)
    list_title = show_title = _l("Export Log")
    base_permissions = ["can_list", "can_show"]
    list_columns = ["created_at", "user", "list_name", "format", "channel", "status", "total", "rows", "filter"]
    show_columns = list_columns + ["finished_at", "file_name", "size", "expires_at", "error"]
    search_columns = ["created_at", "user", "list_name", "format", "channel", "status"]
    base_order = ("id", "desc")
    label_columns = {"created_at": _l("Time"), "user": _l("User"), "list_name": _l("List"), "format": _l("Format"),
                     "channel": _l("Channel"), "status": _l("Status"), "total": _l("Matching rows"),
                     "rows": _l("Rows"), "filter": _l("Filter and sort"), "finished_at": _l("Finished"),
                     "file_name": _l("File Name"), "size": _l("Size"), "expires_at": _l("Available until"),
                     "error": _l("Error")}
    formatters_columns = {"created_at": fmt_datetime, "finished_at": fmt_datetime, "expires_at": fmt_datetime}
