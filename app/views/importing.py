"""导入 / Import of customers, contacts, interactions and service tickets (the batch's kind): the wizard (choose
what to import, upload, map columns, check, confirm, report, undo) and the REST API. Both are
thin: the work is app.services.importer, which the CLI uses too.

One permission set, ``CustomerImport``: can_import (wizard and API) and can_undo (supervisors;
the service also checks that the undoer supervises the importer's department, or is an admin).
Each kind also needs the right to add its records (importer.may_import): the wizard offers only
the kinds the user may import, and the service refuses the others.
"""
from __future__ import annotations

import io
import json

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi
from flask_appbuilder.security.decorators import protect
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.extensions import db
from app.models.importing import ImportBatch, ImportTemplate
from app.security.scopes import visible_specs
from app.services import importer

PERMS = "CustomerImport"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _batch(pk: int) -> ImportBatch:
    batch = db.session.execute(select(ImportBatch).where(
        ImportBatch.id == pk, importer.batch_clause(g.user))).scalar_one_or_none()
    if batch is None:
        abort(404)
    return batch


def _options(form) -> dict:
    return {"mode": form.get("mode") or "all", "update_by": form.get("update_by") or None,
            "sheet": (form.get("sheet") or "").strip() or None}


def _kind(value: str | None) -> str:
    """The kind asked for, else the first one the user may import."""
    offered = importer.importable_kinds(g.user)
    return value if value in offered else next(iter(offered), "customers")


class ImportView(BaseView):
    route_base = "/import"
    default_view = "index"
    class_permission_name = PERMS
    method_permission_name = {n: "import" for n in (
        "index", "upload", "mapping", "batch", "run", "cancel", "errors", "template", "progress", "retry")} | {"undo": "undo"}

    @expose("/")
    @has_access
    def index(self):
        self.update_redirect()
        batches = db.session.execute(select(ImportBatch).where(importer.batch_clause(g.user))
                                     .order_by(ImportBatch.id.desc()).limit(100)).scalars().all()
        return self.render_template("crm/import_index.html", batches=batches, title=_l("Import Data"),
                                    kinds=importer.KINDS, offered=importer.importable_kinds(g.user),
                                    chosen=_kind(request.args.get("kind")))

    @expose("/upload", methods=["POST"])
    @has_access
    def upload(self):
        file = request.files.get("file")
        if file is None or not file.filename:
            flash(_("Choose a file to import."), "danger")
            return redirect(url_for("ImportView.index"))
        try:
            batch = importer.create_batch(file.stream, file.filename, g.user, kind=request.form.get("kind") or _kind(None),
                                          **_options(request.form))
            importer.batch_sheet(batch)  # unreadable files are refused here, with the reason
        except importer.ImportRefused as exc:
            flash(str(exc), "danger")
            return redirect(url_for("ImportView.index"))
        return redirect(url_for("ImportView.mapping", pk=batch.id))

    @expose("/<int:pk>/mapping", methods=["GET", "POST"])
    @has_access
    def mapping(self, pk: int):
        batch = _batch(pk)
        if batch.status not in ("uploaded", "checked", "rejected", "failed"):
            return redirect(url_for("ImportView.batch", pk=pk))
        sheet, mapping, samples, count = importer.preview(batch)
        if request.method == "POST":
            chosen = {h: request.form.get(f"map_{i}") or "" for i, h in enumerate(sheet.headers)}
            batch.mapping = json.dumps(chosen, ensure_ascii=False)
            opts = _options(request.form)
            try:
                batch.update_by = importer.update_key(batch.kind, opts["update_by"], g.user)
            except importer.ImportRefused as exc:
                db.session.rollback()
                flash(str(exc), "danger")
                return redirect(url_for("ImportView.mapping", pk=pk))
            batch.mode = opts["mode"]
            db.session.commit()
            name = (request.form.get("template_name") or "").strip()
            if name:
                importer.save_template(name, sheet.headers, [chosen[h] or None for h in sheet.headers], g.user)
                flash(_("Mapping saved as template %(name)s.", name=name), "success")
            self._launch(batch, dry_run=True)
            return redirect(url_for("ImportView.batch", pk=pk))
        template = request.args.get("template")
        if template:
            try:
                mapping = importer.apply_mapping(sheet.headers, importer.template_mapping(template), batch.kind)
            except importer.ImportRefused as exc:
                flash(str(exc), "danger")
        templates = db.session.execute(select(ImportTemplate.name).order_by(ImportTemplate.name)).scalars().all()
        return self.render_template("crm/import_mapping.html", batch=batch, sheet=sheet, mapping=mapping, count=count,
                                    samples=samples, fields=_fields(batch.kind), templates=templates,
                                    ignore=importer.IGNORE, kinds=importer.KINDS,
                                    may_update=importer.may_update(batch.kind, g.user), title=_l("Map Columns"))

    def _launch(self, batch: ImportBatch, dry_run: bool) -> None:
        try:
            importer.start(batch, dry_run)
        except Exception:  # in-process mode: the run failed; the batch says so
            db.session.rollback()
            flash(_("The import failed; nothing was saved."), "danger")

    @expose("/<int:pk>/")
    @has_access
    def batch(self, pk: int):
        self.update_redirect()
        batch = _batch(pk)
        return self.render_template("crm/import_batch.html", batch=batch, report=importer.report(batch),
                                    progress=importer.get_progress(batch.id), stale=importer.is_stale(batch),
                                    running=batch.status in importer.RUNNING, retryable=importer.retryable(batch),
                                    may_undo=importer.may_undo(batch, g.user), kinds=importer.KINDS,
                                    title=_l("Import Batch"))

    @expose("/<int:pk>/progress")
    @has_access
    def progress(self, pk: int):
        batch = _batch(pk)
        return {"status": batch.status, **importer.get_progress(batch.id), "stale": importer.is_stale(batch)}

    @expose("/<int:pk>/retry", methods=["POST"])
    @has_access
    def retry(self, pk: int):
        try:
            importer.retry(_batch(pk))
        except importer.ImportRefused as exc:
            flash(str(exc), "danger")
        except Exception:  # in-process mode: the run failed again; the batch says so
            db.session.rollback()
            flash(_("The import failed; nothing was saved."), "danger")
        return redirect(url_for("ImportView.batch", pk=pk))

    @expose("/<int:pk>/run", methods=["POST"])
    @has_access
    def run(self, pk: int):
        batch = _batch(pk)
        if batch.status == "checked":
            self._launch(batch, dry_run=False)
        return redirect(url_for("ImportView.batch", pk=pk))

    @expose("/<int:pk>/cancel", methods=["POST"])
    @has_access
    def cancel(self, pk: int):
        importer.request_cancel(_batch(pk))
        flash(_("Cancelling the import."), "warning")
        return redirect(url_for("ImportView.batch", pk=pk))

    @expose("/<int:pk>/undo", methods=["POST"])
    @has_access
    def undo(self, pk: int):
        batch = _batch(pk)
        if not importer.may_undo(batch, g.user):
            flash(_("Only the importer's supervisor or an admin can undo this import."), "danger")
        else:
            result = importer.undo_batch(batch, g.user)
            flash(_("Import undone: %(removed)s customers removed, %(restored)s restored.", **result)
                  if batch.kind == "customers" else
                  _("Import undone: %(removed)s records removed, %(restored)s restored.", **result), "success")
        return redirect(url_for("ImportView.batch", pk=pk))

    @expose("/<int:pk>/errors.xlsx")
    @has_access
    def errors(self, pk: int):
        batch = _batch(pk)
        if batch.file_purged_on:
            flash(_("The uploaded file has been deleted (kept %(days)s days); the problems are listed below.",
                    days=f"{current_app.config['CRM_IMPORT_KEEP_DAYS']:g}"), "warning")
            return redirect(url_for("ImportView.batch", pk=pk))
        name = batch.file_name.rsplit(".", 1)[0] + "-errors.xlsx"
        return send_file(io.BytesIO(importer.error_workbook(batch)), mimetype=XLSX, as_attachment=True,
                         download_name=name)

    @expose("/template.xlsx")
    @has_access
    def template(self):
        kind = _kind(request.args.get("kind"))
        name = _("%(what)s import template", what=_(importer.KINDS[kind].title))
        return send_file(io.BytesIO(importer.template_workbook(kind)), mimetype=XLSX, as_attachment=True,
                         download_name=name + ".xlsx")


def _fields(kind: str) -> list:
    specs = importer.KINDS[kind].fields()
    return visible_specs(specs) if importer.KINDS[kind].column_scope else specs


class ImportApi(BaseApi):
    """POST /api/v1/import/customers, /contacts, /interactions, /tickets (multipart: file, mode, update_by, dry_run, sheet, mapping as
    JSON {header: field}, template, async; update_by: no / credit_code for customers, mobile for contacts) -> the report (or 202 + batch id with async=1);
    GET /api/v1/import/batches/<id> (with ``stale`` and ``retryable``), POST .../cancel, POST .../undo,
    POST .../retry (a failed batch or one whose worker died: 202 + the new job)."""

    resource_name = "import"
    allow_browser_login = True
    class_permission_name = PERMS
    method_permission_name = {"customers": "import", "contacts": "import", "interactions": "import", "tickets": "import",
                              "get_batch": "import", "cancel": "import", "undo": "undo", "retry": "import"}

    @expose("/customers", methods=["POST"])
    @protect()
    def customers(self):
        return self._import("customers")

    @expose("/contacts", methods=["POST"])
    @protect()
    def contacts(self):
        return self._import("contacts")

    @expose("/interactions", methods=["POST"])
    @protect()
    def interactions(self):
        return self._import("interactions")

    @expose("/tickets", methods=["POST"])
    @protect()
    def tickets(self):
        return self._import("tickets")

    def _import(self, kind: str):
        file = request.files.get("file")
        if file is None or not file.filename:
            return self.response_400(message=_("Choose a file to import."))
        flag = lambda name: (request.form.get(name) or "").lower() in ("1", "true", "yes", "on")  # noqa: E731
        try:
            mapping = json.loads(request.form.get("mapping") or "{}")
            batch = importer.create_batch(file.stream, file.filename, g.user, dry_run=flag("dry_run"),
                                          mapping=mapping, template=request.form.get("template") or None,
                                          kind=kind, **_options(request.form))
        except importer.ImportRefused as exc:
            return self.response(403 if exc.code == "not_allowed" else 422, **{"batch": None, "status": "rejected", "errors": [importer.render(exc.as_error())]})
        except ValueError:
            return self.response_400(message=_("mapping must be a JSON object {header: field}."))
        if flag("async"):
            importer.start(batch, batch.dry_run)
            return self.response(202, batch=batch.id, status=db.session.get(ImportBatch, batch.id).status)
        return self.response(200, **importer.run_batch(batch.id))

    @expose("/batches/<int:pk>", methods=["GET"])
    @protect()
    def get_batch(self, pk: int):
        batch = _batch(pk)
        return self.response(200, **importer.report(batch), progress=importer.get_progress(batch.id),
                             stale=importer.is_stale(batch), retryable=importer.retryable(batch))

    @expose("/batches/<int:pk>/retry", methods=["POST"])
    @protect()
    def retry(self, pk: int):
        batch = _batch(pk)
        try:
            job = importer.retry(batch)
        except importer.ImportRefused as exc:
            return self.response(409, message=str(exc))
        return self.response(202, batch=batch.id, job=job, status=db.session.get(ImportBatch, pk).status)

    @expose("/batches/<int:pk>/cancel", methods=["POST"])
    @protect()
    def cancel(self, pk: int):
        batch = _batch(pk)
        importer.request_cancel(batch)
        return self.response(200, batch=batch.id, status=batch.status)

    @expose("/batches/<int:pk>/undo", methods=["POST"])
    @protect()
    def undo(self, pk: int):
        batch = _batch(pk)
        if not importer.may_undo(batch, g.user):
            return self.response(403, message=_("Only the importer's supervisor or an admin can undo this import."))
        return self.response(200, **importer.undo_batch(batch, g.user))
