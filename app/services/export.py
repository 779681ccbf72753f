"""Exports (导出) of any CRM list to .xlsx or .csv, with the list's filters and sort and the
viewer's row scope, column scope and masking.

One code path for the three ways in: the list's 导出 buttons (small exports download at once,
big ones run as a job), the job, and ``flask crm export``. The list's own URL arguments
(``_flt_<n>_<column>``, ``_oc_<View>``/``_od_<View>``) are parsed into FAB's own Filters of the
list view, joined with the view's base filters (ROW_SCOPE), so an export holds exactly the rows
of the list the user was looking at, in its order. Rows stream from the database in batches
(yield_per: a server-side cursor on PostgreSQL) into xlsxwriter's constant-memory mode or the
csv module, so memory stays flat whatever the size.

What leaves: the columns the user may see (``scopes.visible``) and values masked by
``masking.mask_row``. Exports are masked for everybody, holders of "view full contact info"
included: an export is a list, and lists are masked for everybody (README, 脱敏); a file, once
downloaded, is copied and mailed beyond any log, so no full values are written into one and
there is no bulk reveal to log. Every export is written to crm_export_log (who, list, filter,
format, rows, status).
"""
from __future__ import annotations

import copy
import csv
import os
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, urlencode

from flask import current_app, g
from flask_babel import force_locale, gettext
from markupsafe import Markup
from sqlalchemy import select as sa_select, update
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.security import masking
from app.security.scopes import hidden_fields, visible
from app.services.fields import N_

FORMATS = ("xlsx", "csv")
BATCH = 1000
_WIDTH_SAMPLE = 1000  # rows looked at to size the xlsx columns
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportRefused(ValueError):
    """An export that cannot run as asked; ``str()`` says why, in the user's language."""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    get: Callable[[Any], Any] | None = None  # value of an item (CustomerExporter reads rows itself)


# ---------------------------------------------------------------------------------------------
# Which list, which rows, in which order

def export_views() -> dict[str, Any]:
    """Export name -> the registered list view (views opt in with ExportMixin.export_name)."""
    from app.extensions import appbuilder

    return {v.export_name: v for v in appbuilder.baseviews if getattr(v, "export_name", None)}


def view_for(name: str):
    views = export_views()
    if name not in views:
        raise ExportRefused(gettext("Unknown list \"%(name)s\". Lists that can be exported: %(names)s",
                                    name=name, names=", ".join(sorted(views))))
    return views[name]


def parse_args(args: Iterable[str] | str) -> MultiDict:
    """List URL arguments from a query string, a pasted list URL, or several ``k=v`` strings."""
    parts = [args] if isinstance(args, str) else list(args)
    pairs = []
    for part in parts:
        pairs += parse_qsl(part.split("?", 1)[1] if "?" in part else part, keep_blank_values=True)
    return MultiDict(pairs)


def _filters_and_order(view, args: MultiDict):
    """FAB's Filters of the list view set from ``args`` (as FAB's get_filter_args does for a
    list page), joined with the view's base filters, and the order. Refuses filters and sorts
    the list itself would refuse (unknown or hidden columns, pieces of masked values)."""
    getattr(view, "refresh_filters", lambda: None)()  # the customer list's admin-defined fields
    filters = copy.copy(view._filters)  # shares the column->filter tables, own active filters
    filters.clear_filters()
    searchable = filters.get_search_filters()
    hidden = hidden_fields()

    def label(column: str) -> str:  # a column as the list heads it
        return str(view.label_columns.get(column, column))

    for arg in args:
        m = re.fullmatch(r"_flt_(\d+)_(.+)", arg)
        if not m:
            continue
        index, column = int(m.group(1)), m.group(2)
        if column not in searchable or column.split(".")[0] in hidden or index >= len(searchable[column]):
            raise ExportRefused(gettext("The list cannot be filtered by \"%(column)s\".", column=label(column)))
        filters.add_filter_index(column, index, args.getlist(arg))
    probing = masking.probing_filter(getattr(view, "masked_model", None), filters)
    if probing:  # the list refuses it too: the file's rows would give masked digits away
        raise ExportRefused(gettext("\"%(column)s\" is masked: filter it only by the full value, or a phone by "
                                    "its last four digits.", column=label(probing)))
    name = view.__class__.__name__
    order_column, direction = args.get(f"_oc_{name}"), args.get(f"_od_{name}", "asc")
    if order_column:
        unsortable = hidden | masking.unsortable(getattr(view, "masked_model", None))
        if order_column not in (view.order_columns or []) or order_column.split(".")[0] in unsortable:
            raise ExportRefused(gettext("The list cannot be sorted by \"%(column)s\".",
                                        column=label(order_column)))
        if direction not in ("asc", "desc"):
            direction = "asc"
    else:
        order_column, direction = view.base_order or ("id", "asc")
    return filters.get_joined_filters(view._base_filters), order_column, direction


def _query(view, args: MultiDict):
    filters, order_column, direction = _filters_and_order(view, args)
    base = db.session.query(view.datamodel.obj)
    return view.datamodel, base, filters, order_column, direction


def count_rows(view, args: MultiDict) -> int:
    datamodel, base, filters, _, _ = _query(view, args)
    return datamodel.query_count(base, filters)


# ---------------------------------------------------------------------------------------------
# Columns and values

def _cell(value: Any) -> Any:
    """A value as a spreadsheet cell: text, number, date/datetime or None."""
    if value is None or isinstance(value, (str, int, float, Decimal, date)) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, (list, tuple, set)):
        return "、".join(str(v) for v in value)
    return str(value)


def labelled(state: Callable[[Any], Any], label: Callable[[Any], Any]) -> Callable[[], Callable[[Any], str]]:
    """An ``export_cells`` entry for a badge column: the label of a row's ``state`` (a status
    code, an SLA state), each label made once per export instead of a badge per row."""
    def make() -> Callable[[Any], str]:
        made: dict = {}

        def cell(item) -> str:
            key = state(item)
            if key not in made:
                made[key] = str(label(key))
            return made[key]
        return cell
    return make


def _text(value: Any) -> Any:
    """HTML a list shows (a badge) as its text; anything else as it is."""
    return str(value.striptags()) if isinstance(value, Markup) else value


class Exporter:
    """A list view's columns (its list_columns the user may see, with its labels) and rows."""

    def __init__(self, view) -> None:
        self.view = view
        self.masked_model = getattr(view, "masked_model", None)
        self.columns = self._columns()

    def _columns(self) -> list[Column]:
        labels = self.view.label_columns
        return [Column(c, str(labels.get(c, c)), self._getter(c)) for c in visible(self.view.list_columns)]

    def _getter(self, column: str) -> Callable[[Any], Any]:
        """What the list shows in ``column``, as a cell: FAB's value (a method, such as a status
        badge, is called) through the list's own formatter for codes and names (a status code
        becomes its label, remembered per code: looked up once, not per row), a badge as its
        text without the HTML; dates, numbers and booleans stay typed (the writers format
        them). A view's ``export_cells`` replace this for columns costly per row (a query, a badge)."""
        make = (getattr(self.view, "export_cells", None) or {}).get(column)
        if make is not None:
            return make()
        fmt = (self.view.formatters_columns or {}).get(column)
        seen: dict = {}

        def get(item):
            value = getattr(item, column, None)
            if callable(value):
                value = value()
            if value is None or isinstance(value, (bool, int, float, Decimal, date)) or fmt is None:
                return _text(value)
            if isinstance(value, str):
                if value not in seen:
                    seen[value] = _text(fmt(value))
                return seen[value]
            return _text(fmt(value))
        return get

    @property
    def headers(self) -> list[str]:
        return [c.label for c in self.columns]

    def options(self, query):
        """Load the list's many-to-one relations with the rows (no query per row)."""
        dm = self.view.datamodel
        rels = [c.key for c in self.columns if dm.is_relation_many_to_one(c.key)]
        return query.options(*(joinedload(getattr(dm.obj, r)) for r in rels)) if rels else query

    def batches(self, query) -> Iterator[list[list]]:
        """Rows of ``query`` (the list's filtered, sorted query) in batches of BATCH, read by
        the session current when the first batch is asked for: a forked reader's own, never the
        parent's (whose connection the parent keeps using)."""
        query, batch = self.options(query).with_session(db.session()), []
        for item in query.yield_per(BATCH):
            batch.append(item)
            if len(batch) == BATCH:
                yield self.rows(batch)
                batch = []
        if batch:
            yield self.rows(batch)

    def row_dicts(self, items: list) -> list[dict]:
        rows = []
        for item in items:
            row = {c.key: c.get(item) for c in self.columns}
            if self.masked_model:
                masking.mask_row(self.masked_model, item, row, full=False)
            rows.append(row)
        return rows

    def rows(self, items: list) -> list[list]:
        keys = [c.key for c in self.columns]
        return [[_cell(row[k]) for k in keys] for row in self.row_dicts(items)]


class CustomerExporter(Exporter):
    """Customers: every field of the catalogue (app/services/fields.py, built-in and
    admin-defined) the user may see, plus the primary contact's name, phone and e-mail."""

    CONTACT = (("contact_name", "name", N_("Primary Contact")), ("contact_phone", "phone", N_("Contact Phone")),
               ("contact_email", "email", N_("Contact Email")))

    def _columns(self) -> list[Column]:
        from app.services.fields import customer_fields

        cols = [Column(s.key, s.label) for s in customer_fields() if s.key in visible([s.key])]
        return cols + [Column(key, gettext(msgid)) for key, _, msgid in self.CONTACT]

    def batches(self, query) -> Iterator[list[list]]:
        """One streamed SELECT of the table columns the export needs (plain tuples through the
        Core result, no ORM rows; a server-side cursor on PostgreSQL), each column turned into
        its cell by a function made once: dictionary, owner and department names by foreign key,
        custom values from ``extra``, masking by ``masking.list_masker``; per batch, one query
        for the first contact of its customers (primary first)."""
        from operator import itemgetter
        from types import SimpleNamespace

        from sqlalchemy import inspect as sa_inspect

        from app.models import Contact, DictionaryItem
        from app.services.fields import customer_fields, display_text

        table = self.view.datamodel.obj.__table__
        mapper = sa_inspect(self.view.datamodel.obj)
        specs = {s.key: s for s in customer_fields()}
        wanted: list[str] = ["id", "kind_id"]  # table columns read, in SELECT order
        sources, fixes = [], []  # per output column: its SELECT position; (position, fix) to apply

        def position(column: str) -> int:
            if column not in wanted:
                wanted.append(column)
            return wanted.index(column)

        for i, col in enumerate(self.columns[:-len(self.CONTACT)]):
            spec, rel = specs[col.key], mapper.relationships.get(col.key)
            if spec.custom:
                sources.append(position("extra"))
                fixes.append((i, self._custom_cell(spec, display_text)))
            elif rel is not None:
                fk = next(iter(rel.local_columns)).key
                pk = rel.mapper.primary_key[0].key
                sources.append(position(fk))
                fixes.append((i, {getattr(o, pk): str(o) for o in db.session.query(rel.mapper.class_)}.get))
            else:
                sources.append(position(col.key))
        pick = itemgetter(*sources) if len(sources) > 1 else (lambda r: (r[sources[0]],))
        kinds = {i.id: SimpleNamespace(kind=SimpleNamespace(code=i.code)) for i in
                 db.session.query(DictionaryItem).filter(DictionaryItem.type_key == "customer_kind")}
        none = SimpleNamespace(kind=None)
        mask_customer = masking.list_masker("customer", [c.key for c in self.columns[:-len(self.CONTACT)]])
        contact_fields = [field for _, field, _ in self.CONTACT]
        mask_contact = masking.list_masker("contact", contact_fields)
        no_contact = [None] * len(self.CONTACT)
        contact_cols = [Contact.customer_id] + [getattr(Contact, f) for f in contact_fields]

        stmt = query.with_entities(*(table.c[c] for c in wanted)).statement
        result = db.session.connection().execute(stmt.execution_options(stream_results=True, yield_per=BATCH))
        for part in result.partitions(BATCH):
            first: dict[int, list] = {}
            for cid, *values in db.session.execute(
                    sa_select(*contact_cols).where(Contact.customer_id.in_([r[0] for r in part]))
                    .order_by(Contact.customer_id, Contact.is_primary.desc(), Contact.id)):
                if cid not in first:
                    mask_contact(values)
                    first[cid] = values
            rows = []
            for r in part:
                row = list(pick(r))
                for i, fix in fixes:
                    row[i] = fix(row[i])
                mask_customer(row, kinds.get(r[1], none))
                row += first.get(r[0], no_contact)
                rows.append(row)
            yield rows

    @staticmethod
    def _custom_cell(spec, display_text) -> Callable[[Any], str]:
        """An admin-defined field's cell from the ``extra`` dict: ``display_text`` of its value,
        remembered per value (a choice's names are looked up once, not per row)."""
        seen: dict = {}

        def cell(extra):
            value = (extra or {}).get(spec.key)
            key = tuple(value) if isinstance(value, list) else value
            if key not in seen:
                seen[key] = display_text(spec, value)
            return seen[key]
        return cell


def exporter_for(view) -> Exporter:
    from app.models import Customer

    return CustomerExporter(view) if view.datamodel.obj is Customer else Exporter(view)


def _batches(view, args: MultiDict, exporter: Exporter) -> Iterator[list[list]]:
    datamodel, base, filters, order_column, direction = _query(view, args)
    return exporter.batches(datamodel.apply_all(base, filters, order_column, direction))


# ---------------------------------------------------------------------------------------------
# Writers

def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)  # CJK characters are two wide


def write_xlsx(path: str | Path, headers: list[str], batches: Iterable[list[list]],
               progress: Callable[[int], None] | None = None, sheet: str = "Sheet1") -> int:
    """Constant-memory xlsxwriter: text stays text (no formulas, URLs or numbers made of it),
    a frozen bold header row, an autofilter over the data and widths from the header and the
    first rows. Returns the number of data rows."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(re.sub(r"[\[\]:*?/\\]", " ", sheet)[:31] or "Sheet1")
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    date_fmt, dt_fmt = wb.add_format({"num_format": "yyyy-mm-dd"}), wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write_row(0, 0, headers, head)
    ws.freeze_panes(1, 0)
    widths = [_display_width(h) + 2 for h in headers]
    r = 0
    for batch in batches:
        for row in batch:
            r += 1
            for c, v in enumerate(row):
                if v is None:
                    continue
                t = type(v)
                if t is str:
                    ws.write_string(r, c, v)
                elif t is datetime:
                    ws.write_datetime(r, c, v, dt_fmt)
                elif t is date:
                    ws.write_datetime(r, c, v, date_fmt)
                else:
                    ws.write_number(r, c, float(v))
                if r <= _WIDTH_SAMPLE:
                    widths[c] = max(widths[c], _display_width(str(v)) + 2 if t is str else 18 if t is datetime else 12)
        if progress:
            progress(r)
    for c, w in enumerate(widths):
        ws.set_column(c, c, min(max(w, 8), 50))
    ws.autofilter(0, 0, max(r, 1), max(len(headers) - 1, 0))
    wb.close()
    return r


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_CSV_FORMULA_START) else value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_csv(path: str | Path, headers: list[str], batches: Iterable[list[list]],
              progress: Callable[[int], None] | None = None, sheet: str = "") -> int:  # noqa: ARG001
    """UTF-8 with BOM (Excel then reads Chinese right); a text cell starting with = + - @ tab or
    CR gets a leading ' so no spreadsheet runs it as a formula. Returns the number of data rows."""
    r = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([_csv_cell(h) for h in headers])
        for batch in batches:
            out.writerows([_csv_cell(v) for v in row] for row in batch)
            r += len(batch)
            if progress:
                progress(r)
    return r


WRITERS = {"xlsx": write_xlsx, "csv": write_csv}


def write_export(view, fmt: str, args: MultiDict, path: str | Path,
                 progress: Callable[[int], None] | None = None, total: int = 0) -> int:
    """Write the list ``view`` as the current user sees it, filtered and sorted by ``args``.
    ``total`` (the matching rows, when known) of CRM_EXPORT_FORK_ROWS or more: the rows are
    read and built in a forked process while this one writes (see ``_read_ahead``)."""
    if fmt not in FORMATS:
        raise ExportRefused(gettext("Unknown export format \"%(fmt)s\": use xlsx or csv.", fmt=fmt))
    exporter = exporter_for(view)
    batches = _batches(view, args, exporter)  # filters and sort checked here, rows read when iterated
    if total >= int(current_app.config.get("CRM_EXPORT_FORK_ROWS", 50_000)) and hasattr(os, "fork"):
        batches = _read_ahead(batches)
    return WRITERS[fmt](path, exporter.headers, batches, progress, sheet=list_title(view))


_READ_AHEAD = 8  # batches queued between the reading process and the writer (bounds memory)
_inherited: list = []  # the parent's session in a forked reader: kept, never closed or collected


def _read_ahead(batches: Iterator[list[list]]) -> Iterator[list[list]]:
    """The same batches, produced by a forked process (database read, names, contacts, masking)
    while this one writes the file: on two cores the export takes about the longer of the two
    halves instead of their sum. A bounded queue keeps memory flat; the reader inherits the app
    context, the user (scope, masking) and the language, and opens its own database
    connections. An error or a killed reader fails the export; a failed writer stops the reader."""
    import multiprocessing
    import queue

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue(_READ_AHEAD)
    reader = ctx.Process(target=_produce, args=(batches, q, os.getpid()), daemon=True)
    reader.start()
    try:
        while True:
            try:
                batch = q.get(timeout=1)
            except queue.Empty:
                if not reader.is_alive():
                    raise RuntimeError(f"export reader stopped (exit code {reader.exitcode})") from None
                continue
            if batch is None:
                break
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        if reader.is_alive():
            reader.kill()
        reader.join()
        q.close()


def _produce(batches: Iterator[list[list]], q, parent: int) -> None:
    """In the forked reader: the parent's connections are left alone (its session is kept
    unclosed, the pool forgotten without closing), a new session reads. Stops when the writer
    is gone (a killed job leaves no reader behind)."""
    import queue

    _inherited.append(db.session())
    db.engine.dispose(close=False)
    db.session.registry.set(db.session.session_factory())

    def put(item) -> None:
        while True:
            try:
                return q.put(item, timeout=1)
            except queue.Full:
                if os.getppid() != parent:
                    os._exit(1)
    try:
        for batch in batches:
            put(batch)
        put(None)
    except BaseException as exc:  # noqa: BLE001 - reported to the writer, which fails the export
        put(RuntimeError(f"{type(exc).__name__}: {exc}"))
    q.close()
    q.join_thread()


# ---------------------------------------------------------------------------------------------
# Files, the log, the three ways in

def export_dir() -> Path:
    path = Path(current_app.config.get("CRM_EXPORT_DIR") or os.path.join(current_app.instance_path, "exports"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def list_title(view) -> str:
    return str(view.list_title or view.export_name)


def _download_name(view, fmt: str) -> str:
    return f"{list_title(view)}-{datetime.now():%Y%m%d-%H%M%S}.{fmt}"


def _new_log(view, fmt: str, args: MultiDict, user, channel: str):
    from app.models import ExportLog

    log = ExportLog(user_id=getattr(user, "id", None), list_name=view.export_name, format=fmt, channel=channel,
                    filter=urlencode(list(args.items(multi=True))), status="running",
                    file_name=_download_name(view, fmt))
    db.session.add(log)
    db.session.commit()
    return log


def _finish(log, rows: int, path: Path | None = None) -> None:
    log.status, log.rows, log.finished_at = "done", rows, datetime.utcnow()
    if path is not None:
        log.size = path.stat().st_size
    db.session.commit()


def _fail(log, exc: BaseException) -> None:
    db.session.rollback()
    log.status, log.error, log.finished_at = "failed", str(exc)[:4000], datetime.utcnow()
    db.session.commit()


@dataclass
class Started:
    log: Any
    path: Path | None = None  # set when the file is ready to download now


def start_export(view, fmt: str, args: MultiDict, user) -> Started:
    """From the list's buttons: up to CRM_EXPORT_SYNC_ROWS rows are written now (the caller
    sends the file and deletes it); more become a job whose file waits on 我的导出."""
    if fmt not in FORMATS:
        raise ExportRefused(gettext("Unknown export format \"%(fmt)s\": use xlsx or csv.", fmt=fmt))
    total = count_rows(view, args)  # refuses bad filters before anything is logged
    if total <= int(current_app.config.get("CRM_EXPORT_SYNC_ROWS", 5000)):
        log = _new_log(view, fmt, args, user, "direct")
        log.total = total
        path = export_dir() / f"direct-{secrets.token_hex(16)}.{fmt}"
        try:
            _finish(log, write_export(view, fmt, args, path), path)
        except Exception as exc:
            path.unlink(missing_ok=True)
            _fail(log, exc)
            raise
        return Started(log, path)
    from app.jobs import enqueue

    log = _new_log(view, fmt, args, user, "job")
    log.status, log.total = "queued", total
    db.session.commit()
    enqueue("app.services.export:run_export_job", log.id, run_key=f"export-{log.id}", queue="reports")
    db.session.refresh(log)
    return Started(log)


def _user_locale(user) -> str:
    return getattr(user, "locale", None) or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh")


def _act_as(user) -> None:
    """Scope and masking follow ``g.user``: a job or the command line acts as the requester."""
    g.user = user
    g.pop("_crm_policies", None)
    g.pop("_crm_full_contact", None)


def _progress_writer(log_id: int) -> Callable[[int], None]:
    """Progress goes through its own short transaction: the export's read stays open."""
    from app.models import ExportLog

    def report(rows: int) -> None:
        with db.engine.begin() as conn:
            conn.execute(update(ExportLog).where(ExportLog.id == log_id).values(rows=rows))
    return report


def run_export_job(export_id: int) -> dict:
    """The job (queue "reports"): write the file as the requester would see the list."""
    from app.models import CrmUser, ExportLog

    log = db.session.get(ExportLog, export_id)
    if log is None or log.status == "done":
        return {"skipped": True}
    user = db.session.get(CrmUser, log.user_id) if log.user_id else None
    if user is None or not user.active:
        _fail(log, ExportRefused("requester missing or disabled"))
        return {"export": export_id, "status": "failed"}
    _act_as(user)
    log.status, log.rows, log.error = "running", 0, None
    log.stored_name = log.stored_name or f"{secrets.token_hex(16)}.{log.format}"
    db.session.commit()
    path = export_dir() / log.stored_name
    try:
        with force_locale(_user_locale(user)):
            view = view_for(log.list_name)
            rows = write_export(view, log.format, parse_args(log.filter), path, _progress_writer(log.id), log.total or 0)
    except Exception as exc:
        path.unlink(missing_ok=True)
        _fail(log, exc)
        raise
    log.expires_at = datetime.utcnow() + timedelta(days=float(current_app.config.get("CRM_EXPORT_KEEP_DAYS", 7)))
    _finish(log, rows, path)
    return {"export": export_id, "rows": rows}


def export_to_file(list_name: str, path: str | Path, user, args: MultiDict) -> Any:
    """``flask crm export``: the same export written to ``path``, as ``user`` (scope, hidden
    columns, masking and language), logged with channel "cli"."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExportRefused(gettext("Unknown export format \"%(fmt)s\": use xlsx or csv.", fmt=fmt))
    _act_as(user)
    with force_locale(_user_locale(user)):
        view = view_for(list_name)
        total = count_rows(view, args)  # refuses bad filters before anything is logged
        log = _new_log(view, fmt, args, user, "cli")
        log.total = total
        try:
            _finish(log, write_export(view, fmt, args, path, total=log.total), Path(path))
        except Exception as exc:
            _fail(log, exc)
            raise
    return log


def file_of(log) -> Path | None:
    """The finished job file of an export, if it is still there."""
    if log.status != "done" or not log.stored_name:
        return None
    path = export_dir() / log.stored_name
    return path if path.is_file() else None


def purge_expired() -> int:
    """Periodic job: delete job files past their expiry; their log rows stay, marked expired."""
    from app.models import ExportLog

    now, n = datetime.utcnow(), 0
    for log in db.session.query(ExportLog).filter(ExportLog.status == "done", ExportLog.expires_at < now):
        if log.stored_name:
            (export_dir() / log.stored_name).unlink(missing_ok=True)
        log.status = "expired"
        n += 1
    db.session.commit()
    return n
