"""Import from spreadsheets (导入): one service behind the wizard, the REST API and
``flask crm import customers|contacts|interactions|tickets``, so all give the same result and
the same report. What a file holds is its batch's kind (``KINDS``): customers here; contacts and
interactions in app/services/import_kinds.py, tickets in app/services/import_tickets.py. A kind
supplies its columns, its row checks, its writer and its undo; everything else below is shared.
Who may import a kind: ``may_import``.

A batch goes: stored upload (size and zip-bomb checks before parsing) -> read (.xlsx through
calamine, or openpyxl's streaming reader for huge sheets; .csv in UTF-8 / UTF-8 with BOM /
GB18030, detected) -> header row found -> columns mapped (Chinese or English labels and
synonyms of app/services/fields.py, or a saved template) -> rows streamed a chunk at a time:
validated, then (unless dry run, and in mode all only while no error was found) saved, all in
ONE transaction (bulk inserts, numbers allocated in blocks, set-based duplicate checks)
committed with the batch's final state, or rolled back when mode all found an error.

So a worker that dies mid-import leaves nothing visible, and running the batch again is safe:
its state is in the database, and a batch already done answers its stored report. Problems are
stored as (msgid, params) and rendered in the reader's language.
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import io
import itertools
import json
import os
import re
import threading
import time
import unicodedata
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import import_module
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO, Callable, Iterator

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import select, update

from app.extensions import db
from app.models import Contact, CrmUser, Customer, Department, DictionaryItem, FieldChange
from app.models.customer import contact_keys, customer_keys_many
from app.models.importing import ImportBatch, ImportItem, ImportTemplate
from app.security.masking import PERSON_KIND
from app.security.scopes import in_scope, policy_for, row_clause
from app.services import history
from app.services.actor import acting_as
from app.services.dedupe import (
    PLAIN_MOBILE, credit_code_reasons, display_name, existing_keys, normalise_credit_code, normalise_name,
    normalise_phone, validate_credit_code,
)
from app.services.fields import N_, FieldSpec, customer_fields
from app.services.numbering import next_numbers
from app.services.bulk import insert_columns, insert_rows, reserve_ids
from app.services.search_keys import write_tokens

MODES = ("all", "valid")
CREATE_ONLY = (None, "", "none")  # update_by values that mean: only create new records
IGNORE = "-"  # mapping value: the user chose to ignore this column
CHUNK = 2000
RUNNING = ("queued", "checking", "importing")
BEAT_SECONDS = 5  # a running batch touches its heartbeat file this often

# The primary contact's columns: not customer fields, but imported with the customer.
CONTACT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("contact_name", "text", "contact", N_("Contact"), synonyms=("联系人", "联系人姓名", "姓名", "contact name")),
    FieldSpec("contact_phone", "phone", "contact", N_("Phone"),
              synonyms=("联系方式", "手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "mobile", "tel", "telephone")),
    FieldSpec("contact_email", "email", "contact", N_("Email"), synonyms=("邮箱", "电子邮箱", "电子邮件", "e-mail", "mail")),
)
# Our own error workbooks add this column: re-uploading a corrected one must not trip over it.
MESSAGE_HEADERS = {N_("Errors"), "错误信息"}


class ImportRefused(Exception):
    """The file cannot be taken at all (too big, zip bomb, wrong type, unreadable, no header)."""

    def __init__(self, code: str, msgid: str, **params: Any):
        self.code, self.msgid, self.params = code, msgid, params
        super().__init__(render(self.as_error())["message"])

    def as_error(self) -> dict:
        return {"row": 0, "col": None, "column": "", "value": "", "code": self.code, "msgid": self.msgid,
                "params": self.params}


# -- files ----------------------------------------------------------------------------------------

def _limit(name: str, default: float) -> int:
    return int(float(current_app.config.get(name) or default) * 1024 * 1024)


def import_dir() -> Path:
    path = Path(current_app.config.get("CRM_IMPORT_DIR") or Path(current_app.instance_path) / "imports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_upload(stream: BinaryIO, file_name: str) -> tuple[Path, str]:
    """Copy an upload to CRM_IMPORT_DIR, refusing it (before any parsing) when it is bigger than
    CRM_IMPORT_MAX_MB, of another type, or an .xlsx that would unpack beyond
    CRM_IMPORT_MAX_UNZIPPED_MB (a zip bomb). Returns (path, sha256)."""
    ext = Path(file_name or "").suffix.lower()
    if ext not in (".xlsx", ".csv"):
        raise ImportRefused("bad_file", N_("Only .xlsx and .csv files can be imported (save an .xls file as .xlsx first)."))
    limit = _limit("CRM_IMPORT_MAX_MB", 50)
    path = import_dir() / f"{uuid.uuid4().hex}{ext}"
    digest, size = hashlib.sha256(), 0
    with open(path, "wb") as out:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise ImportRefused("too_large", N_("The file is larger than %(max)s MB: split it into smaller files."),
                                    max=limit // (1024 * 1024))
            digest.update(chunk)
            out.write(chunk)
    if ext == ".xlsx":
        try:
            _check_zip(path)
        except ImportRefused:
            path.unlink(missing_ok=True)
            raise
    return path, digest.hexdigest()


def _check_zip(path: Path) -> None:
    limit = _limit("CRM_IMPORT_MAX_UNZIPPED_MB", 500)
    try:
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile:
        raise ImportRefused("bad_file", N_("The file is not a valid .xlsx workbook.")) from None
    if unpacked > limit:
        raise ImportRefused("too_large", N_("The workbook would unpack to %(size)s MB, more than the %(max)s MB "
                                            "allowed: it is refused unread."),
                            size=unpacked // (1024 * 1024), max=limit // (1024 * 1024))


# -- reading --------------------------------------------------------------------------------------

@dataclass
class Sheet:
    """A sheet's header and its data rows, streamed: ``rows`` yields (sheet row number, cells) once,
    blank rows left out, each row at least as wide as the header. A value right of the header's
    last column widens ``headers`` (with blank headers) as it is read, so such a column is still
    reported, never dropped. ``estimate``: about how many data rows there are (progress bar)."""
    headers: list[str]
    header_row: int
    rows: Iterator[tuple[int, list[Any]]]
    date1904: bool = False
    name: str | None = None
    estimate: int = 0


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _csv_encoding(path: Path) -> str:
    """UTF-8 with or without BOM, else GB18030 (a superset of GBK and GB2312): the whole file is
    checked by incremental decoders (1 MB at a time, no text kept), before any row is read."""
    import codecs

    with open(path, "rb") as fh:
        bom = fh.read(3) == b"\xef\xbb\xbf"
        fh.seek(0)
        decoders = {enc: codecs.getincrementaldecoder(enc)() for enc in ("utf-8-sig", "gb18030")}
        while chunk := fh.read(1 << 20):
            for enc, dec in list(decoders.items()):
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    del decoders[enc]
            if not decoders:
                break
    for enc, dec in decoders.items():
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if enc == "utf-8-sig" or not bom:
            return enc
    raise ImportRefused("bad_file", N_("The CSV file is neither UTF-8 nor GBK/GB18030 text."))


def _read_csv(path: Path) -> tuple[Iterator[list[Any]], int]:
    """The rows, read as they are needed; and the rows' estimated count (by bytes)."""
    encoding = _csv_encoding(path)
    fh = open(path, encoding=encoding, newline="")
    head = fh.read(8192)
    try:
        dialect = csv.Sniffer().sniff(head, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    fh.seek(0)
    estimate = path.stat().st_size * head.count("\n") // max(1, len(head.encode(encoding)))

    def rows() -> Iterator[list[Any]]:
        with fh:
            yield from csv.reader(fh, dialect)

    return rows(), estimate


def _read_xlsx(path: Path, sheet: str | None) -> tuple[Iterator[list[Any]], bool, str, int]:
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception:  # noqa: BLE001  (calamine raises its own error types)
        raise ImportRefused("bad_file", N_("The file is not a valid .xlsx workbook.")) from None
    if sheet and sheet not in wb.sheet_names:
        raise ImportRefused("bad_sheet", N_("The workbook has no sheet '%(sheet)s' (sheets: %(names)s)."),
                            sheet=sheet, names=", ".join(wb.sheet_names))
    with zipfile.ZipFile(path) as zf:  # raw serial numbers in date columns need the workbook's epoch
        try:
            date1904 = bool(re.search(rb'date1904="(1|true)"', zf.read("xl/workbook.xml")))
        except KeyError:
            date1904 = False
        unpacked = sum(i.file_size for i in zf.infolist()
                       if i.filename.startswith("xl/worksheets/") or i.filename == "xl/sharedStrings.xml")
    if unpacked > _limit("CRM_IMPORT_CALAMINE_MAX_MB", 200):
        return _stream_xlsx(path, sheet, date1904)
    ws = wb.get_sheet_by_name(sheet) if sheet else wb.get_sheet_by_index(0)
    # iter_rows: one Python row at a time (never the whole grid as lists); its rows start at the
    # sheet's first row but its columns at the first used column, which the padding puts back
    pad = [""] * (ws.start[1] if ws.start else 0)
    rows = (pad + row for row in ws.iter_rows()) if pad else ws.iter_rows()
    return rows, date1904, ws.name, ws.end[0] + 1 if ws.end else 0


def _stream_xlsx(path: Path, sheet: str | None, date1904: bool) -> tuple[Iterator[Any], bool, str, int]:
    """A big workbook's rows through openpyxl's read-only reader, parsed from the zip as they
    are needed: calamine holds a whole sheet in memory (about 1 GB for 1,000,000 rows of 16
    columns). Values come out alike (dates as datetimes in the workbook's own epoch, numbers,
    text); text_of and the checks treat 5 and 5.0, None and "" the same."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    ws = wb[sheet] if sheet else wb.worksheets[0]
    estimate = ws.max_row or 0  # from the sheet's <dimension>, read before the rows
    ws.reset_dimensions()  # then rows as they are in the file, even where <dimension> is wrong

    def rows() -> Iterator[Any]:
        try:
            yield from ws.iter_rows(values_only=True)
        finally:
            wb.close()

    return rows(), date1904, ws.title, estimate


def read_sheet(path: Path | str, file_name: str, sheet: str | None = None, kind: str = "customers") -> Sheet:
    """The header (found among the first 10 non-blank rows) read now; the data rows as they stream."""
    path = Path(path)
    if Path(file_name).suffix.lower() == ".csv":
        (grid, estimate), date1904, name = _read_csv(path), False, None
    else:
        grid, date1904, name, estimate = _read_xlsx(path, sheet)
    numbered = ((i, row) for i, row in enumerate(grid, 1) if not all(_blank(v) for v in row))
    head = list(itertools.islice(numbered, 10))
    if not head:
        raise ImportRefused("no_header", N_("The file holds no data."))
    h = _header_index(head, kind)
    header_row, cells = head[h]
    width = len(cells)
    while width and _blank(cells[width - 1]):
        width -= 1  # trailing empty columns are ignored (unless a row has a value there)
    headers = [text_of(c) for c in cells[:width]]
    return Sheet(headers, header_row, _data_rows(itertools.chain(head[h + 1:], numbered), headers), date1904, name,
                 max(0, estimate - header_row))


def _data_rows(numbered: Iterator[tuple[int, list[Any]]], headers: list[str]) -> Iterator[tuple[int, list[Any]]]:
    for n, row in numbered:
        width = len(headers)
        if len(row) < width:
            row = list(row) + [None] * (width - len(row))
        elif len(row) > width:
            last = max((i for i in range(width, len(row)) if not _blank(row[i])), default=-1)
            headers.extend([""] * (last + 1 - width))
        yield n, row


def _header_index(numbered: list[tuple[int, list[Any]]], kind: str = "customers") -> int:
    """The header is the first of the first 10 non-blank rows that names the most known columns
    (titles or notes above it are skipped); with no known column at all, the first row."""
    known = _header_lookup(kind)
    best, best_hits = 0, 0
    for i, (_, row) in enumerate(numbered[:10]):
        hits = sum(1 for v in row if header_key(text_of(v)) in known)
        if hits > best_hits:
            best, best_hits = i, hits
    return best


def text_of(v: Any) -> str:
    """A cell as text: whole numbers without '.0' (long digit strings stay as written)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S") if (v.hour, v.minute, v.second) != (0, 0, 0) else v.strftime("%Y-%m-%d")
    if isinstance(v, date):
        return v.isoformat()
    return str(v).strip()


def col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# -- columns --------------------------------------------------------------------------------------

def importable_fields() -> list[FieldSpec]:
    """Customer fields a file may fill (the customer no. only as the key of updates), then the
    primary contact's columns."""
    return [s for s in customer_fields() if s.importable and (s.writable or s.key == "customer_no")] + list(CONTACT_FIELDS)


def header_key(text: str) -> str:
    """How headers are compared: NFKC, lower case, no spaces, no required marks (* 必填)."""
    s = unicodedata.normalize("NFKC", text or "").lower()
    s = re.sub(r"[\s*＊]|[(（]必填[)）]|[(（]required[)）]", "", s)
    return s


def _header_lookup(kind: str = "customers") -> dict[str, str]:
    lookup: dict[str, str] = {}
    for spec in KINDS[kind].fields():
        names = (*spec.labels(), spec.key, *spec.synonyms) if not spec.custom else (*spec.labels(), spec.key)
        for name in names:
            lookup.setdefault(header_key(name), spec.key)
    for h in MESSAGE_HEADERS:
        lookup[header_key(h)] = IGNORE
    return lookup


def auto_mapping(headers: list[str], kind: str = "customers") -> list[str | None]:
    """Field key per column (IGNORE for our own error column, None: unknown)."""
    lookup = _header_lookup(kind)
    return [lookup.get(header_key(h)) if h else None for h in headers]


def apply_mapping(headers: list[str], chosen: dict[str, str] | None, kind: str = "customers") -> list[str | None]:
    """The automatic mapping, corrected by ``chosen`` (header -> field key or IGNORE)."""
    mapping = auto_mapping(headers, kind)
    for i, h in enumerate(headers):
        if chosen and h in chosen:
            mapping[i] = chosen[h] or None
    return mapping


def template_mapping(name: str) -> dict[str, str]:
    tpl = db.session.execute(select(ImportTemplate).where(ImportTemplate.name == name)).scalar_one_or_none()
    if tpl is None:
        raise ImportRefused("bad_template", N_("There is no mapping template '%(name)s'."), name=name)
    return json.loads(tpl.mapping)


def save_template(name: str, headers: list[str], mapping: list[str | None], user) -> ImportTemplate:
    tpl = db.session.execute(select(ImportTemplate).where(ImportTemplate.name == name)).scalar_one_or_none()
    if tpl is None:
        tpl = ImportTemplate(name=name, created_by_id=user.id)
        db.session.add(tpl)
    tpl.mapping = json.dumps({h: m for h, m in zip(headers, mapping) if h and m}, ensure_ascii=False)
    db.session.commit()
    return tpl


# -- problems -------------------------------------------------------------------------------------

@dataclass
class Problem(Exception):
    code: str
    msgid: str
    params: dict = field(default_factory=dict)


def _err(row: int, col: int | None, header: str, value: Any, p: Problem) -> dict:
    return {"row": row, "col": col, "column": header, "value": text_of(value), "code": p.code, "msgid": p.msgid,
            "params": p.params}


def _both(fn, *args) -> dict:
    """A message computed now in both languages (for texts made by other modules)."""
    out = {}
    for loc in ("zh", "en"):
        with force_locale(loc):
            out[loc] = fn(*args)
    return out


def render(err: dict) -> dict:
    """A stored problem as the report shows it, in the reader's language."""
    from flask_babel import get_locale

    loc = "en" if str(get_locale() or "zh").startswith("en") else "zh"
    params = {k: (v.get(loc) if isinstance(v, dict) else v) for k, v in (err.get("params") or {}).items()}
    msgid = err["msgid"]
    return {"row": err["row"], "column": err["column"], "value": err["value"], "code": err["code"],
            "message": gettext(msgid, **params)}


# -- values ---------------------------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_SERIAL_RE = re.compile(r"^\d{1,6}(\.\d+)?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_MONEY_UNITS = (("亿元", 10 ** 8), ("亿", 10 ** 8), ("万元", 10 ** 4), ("万", 10 ** 4), ("千元", 1000), ("千", 1000),
                ("元", 1))
_PLAIN_NUMBER = re.compile(r"^[-+]?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")


def serial_date(n: float, date1904: bool) -> date:
    """An Excel serial day number: 1900 system (with Lotus' phantom 1900-02-29) or 1904 system."""
    n = int(n)
    if date1904:
        return date(1904, 1, 1) + timedelta(days=n)
    if n < 1 or n > 2958465:
        raise ValueError(n)
    return date(1899, 12, 31) + timedelta(days=n) if n < 60 else date(1899, 12, 30) + timedelta(days=n)


def parse_date(v: Any, date1904: bool) -> date:
    bad = Problem("bad_date", N_("'%(value)s' is not a date (write it as 2024-05-01)."), {"value": text_of(v)})
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return serial_date(v, date1904)
        s = unicodedata.normalize("NFKC", text_of(v))
        m = _DATE_RE.match(s)
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
        if re.fullmatch(r"\d{8}", s):
            return date(int(s[:4]), int(s[4:6]), int(s[6:]))
        if _SERIAL_RE.match(s):
            return serial_date(float(s), date1904)
    except (ValueError, OverflowError):
        pass
    raise bad


_TIME_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*[ T]?\s*"
                      r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?$")


def parse_timestamp(v: Any, date1904: bool) -> datetime:
    """A date with or without its time of day (a date alone: midnight); Excel serials keep their
    fraction of a day as the time."""
    if isinstance(v, datetime):
        return v.replace(microsecond=0)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    s = unicodedata.normalize("NFKC", text_of(v))
    try:
        number = float(s) if isinstance(v, (int, float)) and not isinstance(v, bool) or _SERIAL_RE.match(s) else None
        if number is not None:
            day = serial_date(number, date1904)
            return datetime(day.year, day.month, day.day) + timedelta(seconds=round((number % 1) * 86400))
        m = _TIME_RE.match(s)
        if m:
            return datetime(*(int(x) for x in m.groups() if x is not None))
        day = parse_date(v, date1904)
        return datetime(day.year, day.month, day.day)
    except (ValueError, OverflowError, Problem):
        raise Problem("bad_datetime", N_("'%(value)s' is not a date or time (write it as 2024-05-01 14:30)."),
                      {"value": text_of(v)}) from None


_YES = {"是", "y", "yes", "true", "1", "√", "✓", "对", "主要"}
_NO = {"否", "n", "no", "false", "0", "×", "不是", "非"}


def parse_boolean(v: Any) -> bool:
    s = header_key(text_of(v))
    if s in _YES:
        return True
    if s in _NO:
        return False
    raise Problem("bad_boolean", N_("'%(value)s' is not yes or no (write 是 or 否)."), {"value": text_of(v)})


def parse_decimal(v: Any, *, money: bool) -> Decimal:
    """1200.5, '1,200.50', '¥1,200.50', '12万', '1.5亿元' -> Decimal."""
    code = "bad_money" if money else "bad_number"
    bad = Problem(code, N_("'%(value)s' is not an amount (e.g. 1,200.50 or 12万).") if money
                  else N_("'%(value)s' is not a number."), {"value": text_of(v)})
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return Decimal(repr(v) if isinstance(v, float) else v)
    s = unicodedata.normalize("NFKC", text_of(v)).replace(" ", "")
    s = re.sub(r"^(¥|￥|RMB|CNY|人民币)", "", s, flags=re.I)
    factor = 1
    for unit, f in _MONEY_UNITS:
        if s.endswith(unit):
            s, factor = s[: -len(unit)], f
            break
    if not _PLAIN_NUMBER.match(s):
        raise bad
    try:
        return Decimal(s.replace(",", "")) * factor
    except InvalidOperation:
        raise bad from None


def check_phone(v: Any) -> str:
    s = text_of(v)
    key = normalise_phone(s)
    body = re.sub(r"(转|分机|ext\.?|x|#).*$", "", unicodedata.normalize("NFKC", s), flags=re.I)
    ok = bool(key) and not re.search(r"[^\d\s()+\-.]", body) and (
        _MOBILE_RE.match(key) or key.startswith("+") or (key.startswith("0") and 10 <= len(key) <= 12)
        or (not key.startswith(("0", "1")) and 7 <= len(key) <= 8))
    if not ok:
        raise Problem("bad_phone", N_("'%(value)s' is not a phone number (e.g. 13800138000 or 021-62345678)."),
                      {"value": s})
    return s


def check_email(v: Any) -> str:
    s = text_of(v)
    if not _EMAIL_RE.match(s):
        raise Problem("bad_email", N_("'%(value)s' is not an e-mail address."), {"value": s})
    return s


class Lookups:
    """Everything a row refers to by name, loaded once per batch: dictionaries, users, departments."""

    def __init__(self, specs: list[FieldSpec], table=None):
        self.table = Customer.__table__ if table is None else table  # text lengths: its columns
        self.items: dict[str, dict[str, DictionaryItem]] = {}
        self.names: dict[str, list[str]] = {}
        for spec in specs:
            if spec.dictionary and spec.dictionary not in self.items:
                rows = db.session.execute(select(DictionaryItem).where(
                    DictionaryItem.type_key == spec.dictionary, DictionaryItem.active.is_(True))).scalars().all()
                exact: dict[str, DictionaryItem] = {}
                for item in rows:
                    for name in (item.name, item.name_en, item.code):
                        if name:
                            exact.setdefault(header_key(name), item)
                self.items[spec.dictionary], self.names[spec.dictionary] = exact, [i.name for i in rows]
        self.users: dict[str, list[CrmUser]] = {}
        for user in db.session.execute(select(CrmUser).where(CrmUser.active.is_(True))).scalars():
            for name in {user.username.lower(), display_name(user), repr(user)}:
                self.users.setdefault(name, []).append(user)
        self.departments = {}
        for d in db.session.execute(select(Department)).scalars():
            for name in (d.name, d.name_en, d.key):
                if name:
                    self.departments.setdefault(header_key(name), d)

    def choice(self, spec: FieldSpec, header: str, v: Any) -> DictionaryItem:
        s = text_of(v)
        item = self.items[spec.dictionary].get(header_key(s))
        if item is not None:
            return item
        names = self.names[spec.dictionary]
        close = [n for n in names if s and s in n] or difflib.get_close_matches(s, names, n=1, cutoff=0.5)
        if close:
            raise Problem("unknown_choice", N_("'%(value)s' is not a value of %(column)s: did you mean %(suggestion)s?"),
                          {"value": s, "column": header, "suggestion": close[0]})
        raise Problem("unknown_choice", N_("'%(value)s' is not a value of %(column)s (see the template's list)."),
                      {"value": s, "column": header})

    def user(self, v: Any) -> CrmUser:
        s = text_of(v)
        found = self.users.get(s.lower()) or self.users.get(s) or []
        if len(found) != 1:
            raise Problem("unknown_owner", N_("No single active user is called '%(value)s' (use the user name)."),
                          {"value": s})
        return found[0]

    def department(self, v: Any) -> Department:
        d = self.departments.get(header_key(text_of(v)))
        if d is None:
            raise Problem("unknown_department", N_("There is no department '%(value)s'."), {"value": text_of(v)})
        return d


def _text_limit(spec: FieldSpec, table=None) -> int | None:
    col = (Customer.__table__ if table is None else table).c.get(spec.key)
    length = getattr(getattr(col, "type", None), "length", None) if col is not None else None
    return length or (100 if spec.key == "contact_name" else 200 if spec.key == "contact_email" else None)


_NUMBER_TYPES = ("money", "number", "integer")


def _number(t: str, value: Decimal, v: Any) -> Decimal | int:
    """A parsed amount or number checked and shaped for its field type."""
    if t == "integer":
        if value != value.to_integral_value() or abs(value) >= 2 ** 31:
            raise Problem("bad_number", N_("'%(value)s' is not a whole number."), {"value": text_of(v)})
        return int(value)
    if abs(value) >= 10 ** 14:
        raise Problem("bad_money", N_("'%(value)s' is too large."), {"value": text_of(v)})
    return value.quantize(Decimal("0.01")) if t == "money" else value


def parse_cell(spec: FieldSpec, header: str, v: Any, lookups: Lookups, date1904: bool) -> Any:
    t = spec.type
    if t in ("date", "datetime"):
        return parse_date(v, date1904)
    if t in _NUMBER_TYPES:
        return _number(t, parse_decimal(v, money=t == "money"), v)
    if t == "single_choice":
        return lookups.choice(spec, header, v)
    if t == "multi_choice":
        return [lookups.choice(spec, header, part).code for part in re.split(r"[,，、;；/]", text_of(v)) if part.strip()]
    if t == "phone":
        return check_phone(v)
    if t == "email":
        return check_email(v)
    if t == "user":
        return lookups.user(v)
    if t == "department":
        return lookups.department(v)
    if t == "timestamp":
        return parse_timestamp(v, date1904)
    if t == "boolean":
        return parse_boolean(v)
    s = text_of(v)
    limit = _text_limit(spec, lookups.table)
    if limit and len(s) > limit:
        raise Problem("too_long", N_("The text is %(n)s characters long; at most %(max)s fit."), {"n": len(s), "max": limit})
    return s


BLANK = object()  # parse_column: an empty cell
_SLOW = object()  # parse_column: a cell no fast path takes
# few distinct values: parsed once each
_BY_VALUE = ("single_choice", "multi_choice", "user", "department", "boolean")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]+)?")


def parse_column(spec: FieldSpec, header: str, values: list[Any], lookups: Lookups, date1904: bool) -> list[Any]:
    """parse_cell over one column of a chunk: per cell the parsed value, its Problem, or BLANK.
    The common spellings take column-wide fast paths (ISO dates converted by pandas at once,
    plain numbers, mobiles, e-mails and text by one regex or length test, dictionary names
    parsed once per distinct value); the rest, and so every bad cell, go through parse_cell,
    which makes every value and message the same as cell by cell."""
    t = spec.type
    out = [BLANK if _blank(v) else _SLOW for v in values]
    if t in _BY_VALUE:
        seen: dict[tuple[type, Any], Any] = {}
        for j, v in enumerate(values):
            if out[j] is _SLOW:
                key = (type(v), v)
                if key not in seen:
                    seen[key] = _parse_or_problem(spec, header, v, lookups, date1904)
                out[j] = seen[key]
        return out
    if t in ("date", "datetime"):
        iso = [j for j, v in enumerate(values)
               if out[j] is _SLOW and isinstance(v, str) and _ISO_DATE.fullmatch(v.strip())]
        if iso:
            import pandas as pd

            dates = pd.to_datetime(pd.Series([values[j].strip() for j in iso]), format="%Y-%m-%d", errors="coerce")
            for j, d in zip(iso, dates.tolist()):
                if d is not pd.NaT:
                    out[j] = d.date()
        for j, v in enumerate(values):
            if isinstance(v, datetime) and out[j] is _SLOW:
                out[j] = v.date()
    elif t in _NUMBER_TYPES:
        for j, v in enumerate(values):
            if out[j] is _SLOW:
                if isinstance(v, str) and _PLAIN_DECIMAL.fullmatch(s := v.strip()):
                    value = Decimal(s.replace(",", ""))
                elif isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf"):
                    value = Decimal(repr(v) if isinstance(v, float) else v)
                else:
                    continue
                try:
                    out[j] = _number(t, value, v)
                except Problem as p:
                    out[j] = p
    elif t in ("phone", "email"):
        fast = PLAIN_MOBILE if t == "phone" else _EMAIL_RE
        for j, v in enumerate(values):
            if out[j] is _SLOW and isinstance(v, str) and fast.fullmatch(s := v.strip()):
                out[j] = s
    elif t == "timestamp":
        for j, v in enumerate(values):
            if isinstance(v, datetime) and out[j] is _SLOW:
                out[j] = v.replace(microsecond=0)
    elif t in ("text", "long_text"):
        limit = _text_limit(spec, lookups.table)
        for j, v in enumerate(values):
            if out[j] is _SLOW and isinstance(v, str) and (not limit or len(s := v.strip()) <= limit):
                out[j] = s if limit else v.strip()
    return [_parse_or_problem(spec, header, v, lookups, date1904) if o is _SLOW else o for v, o in zip(values, out)]


def _parse_or_problem(spec: FieldSpec, header: str, v: Any, lookups: Lookups, date1904: bool) -> Any:
    try:
        return parse_cell(spec, header, v, lookups, date1904)
    except Problem as p:
        return p


# -- validation -----------------------------------------------------------------------------------

@dataclass
class Row:
    row: int
    cells: list[Any]
    values: dict[str, Any] = field(default_factory=dict)  # field key -> parsed value
    target_id: int | None = None  # update: the existing record (a customer, or a contact)
    errors: list[dict] = field(default_factory=list)
    name_key: str | None = None  # normalise_name(name), once the duplicate check computed it


def mapping_problems(sheet: Sheet, mapping: list[str | None], user, update_by: str | None = None,
                     kind: str = "customers") -> list[dict]:
    """Unknown, duplicated and hidden columns, and a required column missing: file-level errors."""
    out = []
    the_kind = KINDS[kind]
    specs = {s.key: s for s in the_kind.fields()}
    hidden = policy_for(user).hidden if the_kind.column_scope else set()
    seen: dict[str, int] = {}
    for i, (h, key) in enumerate(zip(sheet.headers, mapping)):
        header = h or f"({col_letter(i)})"
        if key == IGNORE:
            continue
        if key is None or key not in specs:
            out.append(_err(sheet.header_row, i, header, h, Problem(
                "unknown_column", the_kind.unknown_column, {"letter": col_letter(i), "column": header})))
        elif key in seen:
            out.append(_err(sheet.header_row, i, header, h, Problem(
                "duplicate_column", N_("Columns %(first)s and %(second)s both fill %(field)s: keep one."),
                {"first": col_letter(seen[key]), "second": col_letter(i), "field": _both(lambda: specs[key].label)})))
        elif key in hidden:
            out.append(_err(sheet.header_row, i, header, h, Problem(
                "hidden_column", N_("Column '%(column)s' is a field your role may not see or fill."), {"column": header})))
        else:
            seen[key] = i
    for spec in specs.values():
        if (spec.key == update_by or spec.required and not update_by) and spec.key not in seen:
            out.append(_err(sheet.header_row, None, "", "", Problem(
                "missing_column", N_("The file has no column for the required field %(field)s."),
                {"field": _both(lambda: spec.label)})))
    if the_kind.one_of and not any(k in seen for k in the_kind.one_of):
        out.append(_err(sheet.header_row, None, "", "", Problem(
            "missing_column", N_("The file has no column for the required field %(field)s."),
            {"field": _both(lambda: " / ".join(specs[k].label for k in the_kind.one_of))})))
    return out


class Checker:
    """Parses and checks rows a chunk at a time (nothing is written), keeping across chunks only
    what the checks across rows need: the lookups, and per duplicate key (normalised name, credit
    code, phone) the row number of its first row in the file. Each Row carries its own errors.
    ``batch_id``: customers this batch already saved (earlier chunks, same transaction) are not
    "existing" ones: a row repeating them is a duplicate inside the file."""

    def __init__(self, sheet: Sheet, mapping: list[str | None], user, update_by: str | None,
                 batch_id: int | None = None, kind: str = "customers"):
        self.kind = KINDS[kind]
        specs = {s.key: s for s in self.kind.fields()}
        self.headers, self.date1904, self.user, self.update_by, self.batch_id = (
            sheet.headers, sheet.date1904, user, update_by, batch_id)
        self.cols = [(i, specs[k]) for i, k in enumerate(mapping) if k in specs]
        self.col_of = {spec.key: (i, sheet.headers[i]) for i, spec in self.cols}
        self.lookups = Lookups([s for _, s in self.cols], self.kind.table)
        self.first: dict[str, dict[str, int]] = {"name": {}, "credit_code": {}, "phone": {}}
        self.seen: dict[str, dict] = {}  # the kinds' own cross-chunk state (first rows of keys)

    def check(self, part: list[tuple[int, list[Any]]]) -> list[Row]:
        rows = [Row(row_no, cells) for row_no, cells in part]
        for i, spec in self.cols:  # column by column through the chunk
            header, key, required = self.headers[i], spec.key, spec.required and self.update_by is None
            column = [r.cells[i] for r in rows]
            for r, v, parsed in zip(rows, column, parse_column(spec, header, column, self.lookups, self.date1904)):
                if parsed is BLANK:
                    if required:
                        r.errors.append(_err(r.row, i, header, v, Problem(
                            "required", N_("%(column)s is required."), {"column": header})))
                elif isinstance(parsed, Problem):
                    r.errors.append(_err(r.row, i, header, v, parsed))
                else:
                    r.values[key] = parsed
        self.kind.check(self, rows)
        return rows

    def saved_here(self, ids: set[int]) -> set[int]:
        """Which of these customers this batch created (rare: only keys found again are asked)."""
        if not ids or self.batch_id is None:
            return set()
        return set(db.session.execute(select(ImportItem.customer_id).where(
            ImportItem.batch_id == self.batch_id, ImportItem.action == "create",
            ImportItem.customer_id.in_(ids))).scalars())


def chunks(rows: Iterator[tuple[int, list[Any]]], size: int | None = None) -> Iterator[list[tuple[int, list[Any]]]]:
    """A sheet's streamed rows in lists of ``size`` (CRM_IMPORT_CHUNK_ROWS, default CHUNK)."""
    size = size or int(current_app.config.get("CRM_IMPORT_CHUNK_ROWS") or CHUNK)
    while part := list(itertools.islice(rows, size)):
        yield part


def _is_person(r: Row) -> bool:
    kind = r.values.get("kind")
    return getattr(kind, "code", None) == PERSON_KIND


def _check_credit_codes(rows: list[Row], col_of) -> None:
    if "credit_code" not in col_of:
        return
    i, header = col_of["credit_code"]
    coded = [r for r in rows if r.values.get("credit_code")]
    normal = [normalise_credit_code(r.values["credit_code"]) for r in coded]
    checked = [(r, code) for r, code in zip(coded, normal) if not _is_person(r)]
    for (r, _), reason in zip(checked, credit_code_reasons([code for _, code in checked])):
        if reason:
            code = r.values["credit_code"]
            r.errors.append(_err(r.row, i, header, code, Problem(
                "bad_credit_code", N_("Invalid credit code: %(reason)s"), {"reason": _both(validate_credit_code, code)})))
    for r, code in zip(coded, normal):
        r.values["credit_code"] = code


def _match_targets(rows: list[Row], col_of, user, update_by: str | None, saved_here) -> None:
    """With update-by: rows whose customer no. / credit code exists update that customer (which
    must lie in the importer's row scope); other rows are created (also those matching only a
    customer created by this batch: ``saved_here`` tells them)."""
    if not update_by:
        return
    i, header = col_of[update_by]
    column = getattr(Customer, update_by)
    keys = sorted({r.values[update_by] for r in rows if r.values.get(update_by)})
    found: dict[str, tuple[int, bool]] = {}
    scope = row_clause(Customer, policy_for(user))
    for start in range(0, len(keys), 5000):
        chunk = keys[start:start + 5000]
        for key, cid, visible in db.session.execute(
                select(column, Customer.id, scope).where(column.in_(chunk))):
            found[key] = (cid, bool(visible))
    ours = saved_here({cid for cid, _ in found.values()})
    found = {k: v for k, v in found.items() if v[0] not in ours}
    for r in rows:
        key = r.values.get(update_by)
        if key in found:
            cid, visible = found[key]
            if not visible:
                r.errors.append(_err(r.row, i, header, key, Problem(
                    "out_of_scope", N_("Customer %(value)s is outside the records you may manage."), {"value": key})))
            r.target_id = cid
        elif update_by == "customer_no" and key:
            r.errors.append(_err(r.row, i, header, key, Problem(
                "not_found", N_("There is no customer %(value)s to update."), {"value": key})))
        elif not r.values.get("name") and not any(e["code"] == "required" for e in r.errors):
            ni, nh = col_of.get("name", (None, ""))
            r.errors.append(_err(r.row, ni, nh, "", Problem("required", N_("%(column)s is required."), {"column": nh})))


def _check_scope(rows: list[Row], col_of, user) -> None:
    """A new customer must land in the importer's row scope (owner / department)."""
    policy = policy_for(user)
    if policy.scope == "all":
        return
    i, header = col_of.get("owner", col_of.get("department", (None, "")))
    for r in rows:
        if r.target_id is not None and not ("owner" in r.values or "department" in r.values):
            continue  # an update that leaves the owner alone: its target was checked already
        owner = r.values.get("owner") or (user if not getattr(user, "is_system", False) else None)
        dept = r.values.get("department") or getattr(owner, "department", None)
        probe = SimpleNamespace(owner=owner, owner_id=getattr(owner, "id", None), department=dept,
                                department_id=getattr(dept, "id", None))
        if not in_scope(probe, user):
            r.errors.append(_err(r.row, i, header, getattr(owner, "username", ""), Problem(
                "out_of_scope", N_("You may only import customers you (or your department) own."), {})))


def _check_duplicates(rows: list[Row], col_of, first: dict[str, dict[str, int]], saved_here) -> None:
    """One customer, one file: the keys of app/services/dedupe.py, inside the file (a later row
    repeating an earlier one: ``first`` holds each key's first row number, across chunks) and
    against stored customers (one IN query per chunk of keys; not those this batch created)."""
    keyed: list[tuple[Row, str, str, int | None, str]] = []  # (row, kind, key, col, header)
    for r in rows:
        if r.values.get("name") and not _is_person(r):
            r.name_key = normalise_name(r.values["name"])
            keyed.append((r, "name", r.name_key, *col_of["name"]))
        if r.values.get("credit_code"):
            keyed.append((r, "credit_code", r.values["credit_code"], *col_of["credit_code"]))
        if r.values.get("contact_phone"):
            keyed.append((r, "phone", normalise_phone(r.values["contact_phone"]), *col_of["contact_phone"]))
    for r, kind, key, i, header in keyed:
        if not key:
            continue
        earlier = first[kind].setdefault(key, r.row)
        if earlier != r.row:
            r.errors.append(_err(r.row, i, header, r.cells[i], Problem(
                "duplicate_in_file", N_("Same customer as row %(row)s of this file."), {"row": earlier})))
    stored = existing_keys([k for _, kind, k, _, _ in keyed if kind == "name"],
                           [k for _, kind, k, _, _ in keyed if kind == "credit_code"],
                           [k for _, kind, k, _, _ in keyed if kind == "phone"])
    ours = saved_here({cid for hits in stored.values() for found in hits.values() for cid, _, _ in found})
    for r, kind, key, i, header in keyed:
        for cid, no, name in stored[kind].get(key, []):
            if cid != r.target_id and cid not in ours:
                r.errors.append(_err(r.row, i, header, r.cells[i], Problem(
                    "duplicate_existing", N_("Duplicate of existing customer %(no)s %(name)s"), {"no": no, "name": name})))
                break


def _customer_checks(checker: Checker, rows: list[Row]) -> None:
    _check_credit_codes(rows, checker.col_of)
    _match_targets(rows, checker.col_of, checker.user, checker.update_by, checker.saved_here)
    _check_scope(rows, checker.col_of, checker.user)
    _check_duplicates(rows, checker.col_of, checker.first, checker.saved_here)


# -- saving ---------------------------------------------------------------------------------------

class Cancelled(Exception):
    pass


_DICT_ATTR = {"single_choice": "_id", "user": "_id", "department": "_id"}
_CONTACT_KEYS = frozenset(s.key for s in CONTACT_FIELDS)
_CONTACT_COLUMNS = ("customer_id", "name", "phone", "phone_key", "phone_last4", "email", "is_primary", "created_on",
                    "changed_on", "created_by_fk", "changed_by_fk")
_HISTORY_COLUMNS = ("changeset", "action", "entity", "entity_id", "record_label", "customer_no", "customer_id", "field",
                    "new_value", "changed_by_id", "changed_on")


def _extra_value(v: Any) -> Any:
    """A parsed custom-field value as Customer.extra keeps it."""
    return v.isoformat() if isinstance(v, date) else str(v) if isinstance(v, Decimal) else getattr(v, "code", v)


def _columns(values: dict[str, Any], specs: dict[str, FieldSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parsed values -> (table column values, custom values for Customer.extra)."""
    cols, extra = {}, {}
    for key, v in values.items():
        spec = specs.get(key)
        if spec is None or key in _CONTACT_KEYS:
            continue
        if spec.custom:
            extra[key] = _extra_value(v)
        elif spec.type in _DICT_ATTR:
            cols[f"{key}_id"] = v.id
        else:
            cols[key] = v
    return cols, extra


def _create(rows: list[Row], batch: ImportBatch, user, specs, progress, cancelled) -> int:
    """Bulk inserts, column by column: each chunk's customer columns are lists built from the
    parsed values (no dict per row), zipped into the rows only by the driver call."""
    table, ctable = Customer.__table__, Contact.__table__
    now = datetime.utcnow()
    owner_default = None if getattr(user, "is_system", False) else user
    present: set[str] = set()
    for r in rows:
        present.update(r.values)
    fields = [specs[k] for k in specs if k in present and k not in _CONTACT_KEYS]
    changeset, label = None, f"{batch.file_name} (#{batch.id})"
    saved = 0
    for start in range(0, len(rows), CHUNK):
        if cancelled():
            raise Cancelled()
        part = rows[start:start + CHUNK]
        n = len(part)
        data: dict[str, list] = {c.key: [None] * n for c in table.c}
        extra: list[dict] = [{} for _ in part]
        for spec in fields:
            values = [r.values.get(spec.key) for r in part]
            if spec.custom:
                for e, r, v in zip(extra, part, values):
                    if spec.key in r.values:
                        e[spec.key] = _extra_value(v)
            elif spec.type in _DICT_ATTR:
                data[f"{spec.key}_id"] = [getattr(v, "id", None) for v in values]
            else:
                data[spec.key] = values
        owners = [r.values.get("owner") or owner_default for r in part]
        data["owner_id"] = [getattr(o, "id", None) for o in owners]
        data["department_id"] = [r.values["department"].id if "department" in r.values else
                                 getattr(o, "department_id", None) or getattr(user, "department_id", None)
                                 for r, o in zip(part, owners)]
        if "extra" in data:
            data["extra"] = [e or None for e in extra]
        data.update(customer_keys_many(data["name"], data["credit_code"], [_is_person(r) for r in part],
                                       [r.name_key for r in part]))
        data["customer_no"] = next_numbers("customer", [
            SimpleNamespace(industry=None, region=None, industry_id=i, region_id=g)
            for i, g in zip(data["industry_id"], data["region_id"])])
        data["archived"] = [False] * n
        data["created_on"] = data["changed_on"] = [now] * n
        data["created_by_fk"] = data["changed_by_fk"] = [user.id] * n
        conn = db.session.connection()
        ids = data["id"] = reserve_ids(conn, table, n)
        insert_columns(conn, table, data)
        write_tokens(conn, zip(ids, data["name"], data["name_initials"]),
                     fresh=True)  # search tokens, as the model listeners write them for single saves
        insert_rows(conn, ctable, _CONTACT_COLUMNS, [
            (cid, r.values.get("contact_name") or name, r.values.get("contact_phone"),
             *contact_keys(r.values.get("contact_phone")).values(), r.values.get("contact_email"), True, now, now,
             user.id, user.id)
            for r, cid, name in zip(part, ids, data["name"])
            if any(r.values.get(k) for k in ("contact_name", "contact_phone", "contact_email"))])
        insert_rows(conn, ImportItem.__table__, ("batch_id", "customer_id", "customer_no", "row", "action"),
                    [(batch.id, cid, no, r.row, "create") for r, cid, no in zip(part, ids, data["customer_no"])])
        changeset = history.changeset_id(db.session)
        insert_rows(conn, FieldChange.__table__, _HISTORY_COLUMNS, [
            (changeset, "create", "customer", cid, f"{no} {name}"[:200], no, cid, "imported", label, user.id, now)
            for cid, no, name in zip(ids, data["customer_no"], data["name"])])
        saved += n
        progress(saved=saved)
    return saved


def _save_customers(rows: list[Row], batch: ImportBatch, user, specs, progress, cancelled,
                    offset: int) -> tuple[int, int]:
    """A chunk's valid rows: new customers in bulk, updates through the ORM. (created, updated)"""
    creates = [r for r in rows if r.target_id is None]
    updates = [r for r in rows if r.target_id is not None]
    created = _create(creates, batch, user, specs, lambda saved: progress(saved=offset + saved), cancelled)
    return created, _update(updates, batch, specs, progress, cancelled, offset + created)


def _snapshot(obj, names: list[str]) -> dict:
    out = {}
    for name in names:
        v = getattr(obj, name)
        out[name] = v.isoformat() if isinstance(v, (date, datetime)) else str(v) if isinstance(v, Decimal) else v
    return out


def _update(rows: list[Row], batch: ImportBatch, specs, progress, cancelled, offset: int) -> int:
    """Updates go through the ORM (field history records each change); blank cells keep values."""
    for n, r in enumerate(rows, 1):
        if n % 500 == 0 and cancelled():
            raise Cancelled()
        c = db.session.get(Customer, r.target_id)
        cols, extra = _columns(r.values, specs)
        cols.pop("customer_no", None)
        before = {"fields": _snapshot(c, list(cols))}
        for k, v in cols.items():
            setattr(c, k, v)
        if extra and hasattr(c, "extra"):
            before["extra"] = dict(c.extra or {})
            c.extra = {**(c.extra or {}), **extra}
        contact_values = {k[8:]: r.values[k] for k in ("contact_name", "contact_phone", "contact_email") if k in r.values}
        if contact_values:
            primary = next((x for x in c.contacts if x.is_primary), None) or (c.contacts[0] if c.contacts else None)
            before["contact"] = _snapshot(primary, ["id", "name", "phone", "email"]) if primary else None
            if primary is None:
                primary = Contact(customer=c, name=contact_values.get("name") or c.name, is_primary=True)
                db.session.add(primary)
            for k, v in contact_values.items():
                setattr(primary, k, v)
        db.session.flush()
        db.session.add(ImportItem(batch_id=batch.id, customer_id=c.id, customer_no=c.customer_no, row=r.row,
                                  action="update", before=json.dumps(before, ensure_ascii=False)))
        if n % CHUNK == 0:
            progress(saved=offset + n)
    return len(rows)


# -- progress and cancelling (outside the import's transaction, so others see them at once) -------

_LOCAL: dict[int, dict] = {}


def _store():
    if current_app.config.get("REDIS_URL"):
        from app.jobs.queue import get_redis

        return get_redis()
    return None


def set_progress(batch_id: int, **values: Any) -> None:
    r = _store()
    if r is None:
        _LOCAL.setdefault(batch_id, {}).update(values)
    else:
        r.hset(f"crm:import:{batch_id}", mapping={k: json.dumps(v) for k, v in values.items()})
        r.expire(f"crm:import:{batch_id}", 7 * 86400)


def get_progress(batch_id: int) -> dict:
    r = _store()
    if r is None:
        return dict(_LOCAL.get(batch_id, {}))
    return {k.decode(): json.loads(v) for k, v in r.hgetall(f"crm:import:{batch_id}").items()}


def request_cancel(batch: ImportBatch) -> None:
    """Ask a running import to stop (it checks between chunks); a waiting one is cancelled now."""
    set_progress(batch.id, cancel=True)
    if batch.status in ("uploaded", "queued", "checked"):
        batch.status, batch.finished_on = "cancelled", datetime.utcnow()
    batch.cancel_requested = True
    db.session.commit()


# -- batches --------------------------------------------------------------------------------------

def create_batch(stream: BinaryIO, file_name: str, user, *, sheet: str | None = None, mode: str = "all",
                 update_by: str | None = None, dry_run: bool = False,
                 mapping: dict[str, str] | None = None, template: str | None = None,
                 kind: str = "customers") -> ImportBatch:
    """Store the upload (refused before parsing when too big) and record the batch."""
    if kind not in KINDS:
        raise ImportRefused("bad_option", N_("Unknown import '%(value)s': use %(kinds)s."), value=kind,
                            kinds=", ".join(KINDS))
    if not may_import(kind, user):
        raise ImportRefused("not_allowed", N_("Your role may not import %(what)s."),
                            what=_both(lambda: gettext(KINDS[kind].sheet_title)))
    key = update_key(kind, update_by, user)
    if mode not in MODES:
        raise ImportRefused("bad_option", N_("Unknown mode '%(value)s': use all or valid."), value=mode)
    chosen = dict(template_mapping(template)) if template else {}
    chosen.update(mapping or {})
    path, digest = store_upload(stream, file_name)
    batch = ImportBatch(created_by_id=user.id, file_name=os.path.basename(file_name)[:255], file_hash=digest,
                        file_path=str(path), sheet=sheet or None, mode=mode, update_by=key,
                        dry_run=dry_run, status="uploaded", kind=kind,
                        mapping=json.dumps(chosen, ensure_ascii=False) if chosen else None)
    db.session.add(batch)
    db.session.commit()
    return batch


def batch_sheet(batch: ImportBatch) -> tuple[Sheet, list[str | None]]:
    """The batch's sheet (rows still to stream) and its mapping for the header as read so far."""
    sheet = read_sheet(batch.file_path, batch.file_name, batch.sheet, batch.kind)
    return sheet, apply_mapping(sheet.headers, json.loads(batch.mapping) if batch.mapping else None, batch.kind)


def preview(batch: ImportBatch, samples: int = 3) -> tuple[Sheet, list[str | None], list[list[str]], int]:
    """What the wizard's mapping page shows: the sheet with every column (the whole file streamed
    through once, one row at a time), the mapping, the first rows as text and the data rows' count."""
    sheet, _ = batch_sheet(batch)
    first = [[text_of(c) for c in cells] for _, cells in itertools.islice(sheet.rows, samples)]
    count = len(first) + sum(1 for _ in sheet.rows)
    return sheet, apply_mapping(sheet.headers, json.loads(batch.mapping) if batch.mapping else None, batch.kind), \
        first, count


def run_batch(batch_id: int, dry_run: bool | None = None) -> dict:
    """Check (and unless dry run, save) one batch; the job function (takes an id, safe twice).
    Returns the machine-readable report."""
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        raise LookupError(f"import batch {batch_id} does not exist")
    if batch.status in ("done", "undone", "cancelled"):
        return report(batch)
    if dry_run is not None:
        batch.dry_run = dry_run
    user = batch.created_by
    batch.status, batch.started_on = "checking", datetime.utcnow()
    db.session.commit()
    set_progress(batch.id, phase="reading", read=0, validated=0, saved=0, total=0, cancel=False)
    with _heartbeat(batch):
        return _run(batch, user)


def _run(batch: ImportBatch, user) -> dict:
    """One pass over the streamed file, a chunk at a time: read, check, and (unless dry run) save
    the chunk's valid rows at once, all inside the run's single transaction, committed only at the
    end with the batch's final state. In mode all, the first error stops the saving (the checks go
    on, for the report) and the end rolls back what was saved; a dry run saves nothing. So memory
    holds one chunk, the keys of the duplicate check and the errors, whatever the file's size."""
    batch_id = batch.id

    def progress(**kw):
        set_progress(batch.id, **kw)

    def cancelled() -> bool:
        return bool(get_progress(batch.id).get("cancel"))

    with acting_as(user):
        try:
            try:
                sheet, mapping = batch_sheet(batch)
            except ImportRefused as exc:
                return _finish(batch, "rejected", [exc.as_error()], 0, 0, 0, 0)
            progress(phase="validating", total=sheet.estimate)
            width = len(sheet.headers)
            kind = KINDS[batch.kind]
            file_errors = mapping_problems(sheet, mapping, user, batch.update_by, batch.kind)
            checker = Checker(sheet, mapping, user, batch.update_by, batch.id, batch.kind)
            specs = {s.key: s for s in kind.fields()}
            saving, claimed = not batch.dry_run, False
            errors: list[dict] = []
            total = valid = created = updated = 0
            for part in chunks(sheet.rows):
                if cancelled():
                    raise Cancelled()
                total += len(part)
                if len(sheet.headers) > width and not file_errors:  # a value right of the header
                    width = len(sheet.headers)
                    mapping = apply_mapping(sheet.headers, json.loads(batch.mapping) if batch.mapping else None,
                                            batch.kind)
                    file_errors = mapping_problems(sheet, mapping, user, batch.update_by, batch.kind)
                if file_errors:  # nothing is checked or saved; the rows are only counted
                    progress(read=total, total=max(total, sheet.estimate))
                    continue
                rows = checker.check(part)
                good = [r for r in rows if not r.errors]
                errors.extend(e for r in rows for e in r.errors)
                valid += len(good)
                progress(read=total, validated=total, total=max(total, sheet.estimate))
                saving = saving and not (errors and batch.mode == "all")
                if not (saving and good):
                    continue
                if not claimed:
                    # Claim the batch inside the saving transaction: a second run of the same
                    # batch (a retried job) waits for this one and then finds it done.
                    claimed = bool(db.session.execute(update(ImportBatch).where(
                        ImportBatch.id == batch.id, ImportBatch.status.notin_(("done", "undone", "cancelled")))
                        .values(status="importing")).rowcount)
                    if not claimed:
                        db.session.rollback()
                        return report(db.session.get(ImportBatch, batch_id))
                    progress(phase="saving")
                new, changed = kind.save(good, batch, user, specs, progress, cancelled, created + updated)
                created, updated = created + new, updated + changed
                progress(saved=created + updated)
            if cancelled():
                raise Cancelled()
            if file_errors:
                db.session.rollback()
                return _finish(db.session.get(ImportBatch, batch_id), "rejected", file_errors, total, 0, 0, 0)
            if (errors and batch.mode == "all") or batch.dry_run:
                db.session.rollback()  # what earlier chunks saved goes; the report stays
                status = "checked" if batch.dry_run else "rejected"
                return _finish(db.session.get(ImportBatch, batch_id), status, errors, total, valid, 0, 0)
            if not claimed and db.session.get(ImportBatch, batch_id).status in ("done", "undone", "cancelled"):
                return report(db.session.get(ImportBatch, batch_id))
            return _finish(batch, "done", errors, total, valid, created, updated)
        except Cancelled:
            db.session.rollback()
            batch = db.session.get(ImportBatch, batch_id)
            return _finish(batch, "cancelled", [], batch.rows_total, 0, 0, 0)
        except Exception:
            db.session.rollback()  # nothing of this run remains; a finished run is never undone
            db.session.execute(update(ImportBatch).where(
                ImportBatch.id == batch_id, ImportBatch.status.notin_(("done", "undone"))).values(status="failed"))
            db.session.commit()
            raise


def _finish(batch: ImportBatch, status: str, errors: list[dict], total: int, valid: int, created: int,
            updated: int) -> dict:
    batch.status, batch.finished_on = status, datetime.utcnow()
    batch.rows_total, batch.rows_valid, batch.rows_created, batch.rows_updated = total, valid, created, updated
    saved_or_savable = created + updated if status == "done" else valid if status == "checked" else 0
    batch.rows_rejected = total - saved_or_savable
    batch.report = json.dumps({"errors": errors}, ensure_ascii=False, default=str)
    db.session.commit()
    set_progress(batch.id, phase=status, saved=created + updated)
    return report(batch)


def report(batch: ImportBatch) -> dict:
    """The machine-readable report (CLI --json, API), messages in the reader's language."""
    stored = json.loads(batch.report) if batch.report else {"errors": []}
    return {"batch": batch.id, "kind": batch.kind, "status": batch.status, "file_name": batch.file_name,
            "mode": batch.mode, "update_by": batch.update_by, "dry_run": batch.dry_run, "rows_total": batch.rows_total,
            "rows_valid": batch.rows_valid, "rows_created": batch.rows_created, "rows_updated": batch.rows_updated,
            "rows_rejected": batch.rows_rejected, "errors": [render(e) for e in stored["errors"]]}


def import_file(path: Path | str, user, file_name: str | None = None, **options: Any) -> dict:
    """Import one file now, in this process (CLI, synchronous API): create the batch and run it."""
    with open(path, "rb") as fh:
        try:
            batch = create_batch(fh, file_name or os.path.basename(str(path)), user, **options)
        except ImportRefused as exc:
            return {"batch": None, "status": "rejected", "rows_total": 0, "rows_valid": 0, "rows_created": 0,
                    "rows_updated": 0, "rows_rejected": 0, "errors": [render(exc.as_error())]}
    return run_batch(batch.id)


def batch_clause(user):
    """Which batches a user sees: like customers, by row scope (own, department's, all)."""
    from sqlalchemy import false, or_, true

    policy = policy_for(user)
    if policy.scope == "all":
        return true()
    if policy.user_id is None:
        return false()
    own = ImportBatch.created_by_id == policy.user_id
    if policy.scope == "department" and policy.department_id is not None:
        return or_(own, ImportBatch.created_by_id.in_(
            select(CrmUser.id).where(CrmUser.department_id == policy.department_id)))
    return own


def start(batch: ImportBatch, dry_run: bool, queue: str = "default") -> str:
    """Run a batch as a job: on RQ with REDIS_URL (the page follows its progress), else now."""
    from app.jobs import enqueue, job_id_for

    func, run_key = "app.services.importer:run_batch", f"import-{batch.id}-{uuid.uuid4().hex[:8]}"
    batch.status, batch.cancel_requested, batch.job_id = "queued", False, job_id_for(func, run_key)
    batch.started_on = datetime.utcnow()
    db.session.commit()
    set_progress(batch.id, phase="queued", read=0, validated=0, saved=0, total=0, cancel=False)
    return enqueue(func, batch.id, dry_run, run_key=run_key, queue=queue)


# -- a worker that died: detection, retry; uploads' retention -------------------------------------

def _beat_path(batch: ImportBatch) -> Path:
    return Path(f"{batch.file_path}.beat")


@contextmanager
def _heartbeat(batch: ImportBatch) -> Iterator[None]:
    """While a run lives, a thread touches ``<upload>.beat`` every BEAT_SECONDS: beside the upload
    (which every worker reads), so any process can tell a live run from a dead one."""
    path, stop = _beat_path(batch), threading.Event()

    def beat() -> None:
        while True:
            try:
                path.touch()
            except OSError:
                pass
            if stop.wait(BEAT_SECONDS):
                return

    thread = threading.Thread(target=beat, name=f"import-{batch.id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


def _rq_status(batch: ImportBatch) -> str | None:
    """The RQ job's status ('missing' when Redis no longer knows it); None without RQ."""
    if not batch.job_id or not current_app.config.get("REDIS_URL"):
        return None
    from rq.job import Job

    from app.jobs.queue import get_redis

    try:
        return str(Job.fetch(batch.job_id, connection=get_redis()).get_status(refresh=True).value)
    except Exception:  # noqa: BLE001  (NoSuchJobError, or a job Redis dropped)
        return "missing"


def is_stale(batch: ImportBatch) -> bool:
    """A batch that says it runs but whose worker is gone: its RQ job failed, was stopped or is
    lost, or (once started) its heartbeat has been silent for CRM_IMPORT_STALE_SECONDS. Its
    transaction died with it, so nothing of that run is saved and it may be run again."""
    if batch.status not in RUNNING:
        return False
    if _rq_status(batch) in ("failed", "stopped", "canceled", "missing"):
        return True
    if batch.status == "queued":
        return False  # waiting for a worker
    try:
        last = _beat_path(batch).stat().st_mtime
    except OSError:
        began = batch.started_on or batch.created_on
        last = (began - datetime(1970, 1, 1)).total_seconds()
    return time.time() - last > float(current_app.config.get("CRM_IMPORT_STALE_SECONDS") or 60)


def retryable(batch: ImportBatch) -> bool:
    return batch.file_purged_on is None and (batch.status == "failed" or is_stale(batch))


def retry(batch: ImportBatch, *, now: bool = False) -> dict | str:
    """Run a failed batch, or one whose worker died, again with the same file, mapping and
    options: as a job (returns its id), or ``now`` in this process (returns the report)."""
    if not retryable(batch):
        raise ImportRefused("not_retryable", N_("Only a failed import, or one whose worker stopped, can be run again."))
    if not now:
        return start(batch, batch.dry_run)
    batch.job_id = None
    db.session.commit()
    return run_batch(batch.id)


def purge_uploads(days: float | None = None) -> int:
    """Delete stored uploads CRM_IMPORT_KEEP_DAYS days after their batch ended (the batch, its
    report and its undo stay; only the error workbook needs the file), and files no batch owns.
    A batch still waiting for its file is closed: cancelled, or failed if its worker died."""
    keep = float(current_app.config.get("CRM_IMPORT_KEEP_DAYS") or 30) if days is None else days
    cutoff = datetime.utcnow() - timedelta(days=keep)
    removed = 0
    batches = db.session.execute(select(ImportBatch).where(
        ImportBatch.file_purged_on.is_(None),
        (ImportBatch.finished_on < cutoff) | (ImportBatch.finished_on.is_(None) & (ImportBatch.created_on < cutoff))
    )).scalars().all()
    for batch in batches:
        if batch.status in RUNNING:
            if not is_stale(batch):
                continue
            batch.status, batch.finished_on = "failed", datetime.utcnow()
        elif batch.status in ("uploaded", "checked"):
            batch.status, batch.finished_on = "cancelled", datetime.utcnow()
        for path in (Path(batch.file_path), _beat_path(batch)):
            if path.exists():
                path.unlink()
                removed += path.suffix != ".beat"
        batch.file_purged_on = datetime.utcnow()
    db.session.commit()
    owned = set(db.session.execute(select(ImportBatch.file_path)).scalars())
    for path in import_dir().iterdir():
        if path.is_file() and str(path) not in owned and not path.name.endswith(".beat") \
                and path.stat().st_mtime < time.time() - keep * 86400:
            path.unlink()
            removed += 1
    return removed


# -- undo -----------------------------------------------------------------------------------------

def may_undo(batch: ImportBatch, user) -> bool:
    """An admin, or a supervisor (holder of can_undo) of the importer's department."""
    from app.extensions import appbuilder

    if batch.status != "done" or user is None:
        return False
    if any(r.name == current_app.config["AUTH_ROLE_ADMIN"] for r in user.roles):
        return True
    return (appbuilder.sm.has_access("can_undo", "CustomerImport")
            and user.department_id is not None and user.department_id == batch.created_by.department_id)


def undo_batch(batch: ImportBatch, user) -> dict:
    """Remove the records the batch created and restore the ones it updated (the kind's undo),
    all in one transaction, recorded in field history."""
    items = db.session.execute(select(ImportItem).where(ImportItem.batch_id == batch.id)
                               .order_by(ImportItem.id.desc())).scalars().all()
    removed, restored = KINDS[batch.kind].undo(batch, items, user)
    batch.status, batch.undone_by_id, batch.undone_on = "undone", user.id, datetime.utcnow()
    db.session.commit()
    return {"batch": batch.id, "status": batch.status, "removed": removed, "restored": restored}


def _undo_customers(batch: ImportBatch, items: list[ImportItem], user) -> tuple[int, int]:  # noqa: ARG001
    """Through the ORM, so field history records every change."""
    removed = restored = 0
    for item in items:
        customer = db.session.get(Customer, item.customer_id)
        if customer is None or customer.customer_no != item.customer_no:
            continue  # already deleted or merged away
        if item.action == "create":
            db.session.delete(customer)
            removed += 1
            continue
        before = json.loads(item.before or "{}")
        for k, v in before.get("fields", {}).items():
            col = Customer.__table__.c[k]
            py = col.type.python_type if hasattr(col.type, "python_type") else None
            if v is not None and py is date:
                v = date.fromisoformat(v)
            elif v is not None and py is datetime:
                v = datetime.fromisoformat(v)
            elif v is not None and py is Decimal:
                v = Decimal(v)
            setattr(customer, k, v)
        if "extra" in before and hasattr(customer, "extra"):
            customer.extra = before["extra"]
        if "contact" in before:
            old = before["contact"]
            primary = next((x for x in customer.contacts if x.is_primary), None)
            if old is None and primary is not None:
                db.session.delete(primary)
            elif old is not None:
                contact = db.session.get(Contact, old["id"])
                if contact is not None:
                    contact.name, contact.phone, contact.email = old["name"], old["phone"], old["email"]
        restored += 1
    return removed, restored


# -- workbooks ------------------------------------------------------------------------------------

def _workbook(buf: io.BytesIO):
    import xlsxwriter

    # never a formula, never a number guessed from text: cells are written exactly as typed
    return xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
                                     "strings_to_urls": False})


def error_workbook(batch: ImportBatch) -> bytes:
    """A copy of the upload: the rows not saved, bad cells highlighted (with a comment), and a
    message column; fix it and upload it again."""
    sheet, _ = batch_sheet(batch)
    rows = list(sheet.rows)  # read whole first: a value right of the header adds a column
    errors = json.loads(batch.report or "{}").get("errors", [])
    by_row: dict[int, list[dict]] = {}
    for e in errors:
        by_row.setdefault(e["row"], []).append(e)
    saved_some = batch.status == "done" and batch.mode == "valid"
    buf = io.BytesIO()
    wb = _workbook(buf)
    ws = wb.add_worksheet((sheet.name or "Sheet1")[:31])
    bad, head = wb.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006"}), wb.add_format({"bold": True})
    dfmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    message_col = len(sheet.headers)
    for c, h in enumerate(sheet.headers):
        ws.write_string(0, c, h, bad if any(e["col"] == c for e in by_row.get(sheet.header_row, [])) else head)
    ws.write_string(0, message_col, gettext("Errors"), head)
    out = 1
    for row_no, cells in rows:
        row_errors = by_row.get(row_no, [])
        if saved_some and not row_errors:
            continue
        bad_cols = {e["col"]: render(e)["message"] for e in row_errors if e["col"] is not None}
        for c, v in enumerate(cells):
            fmt = bad if c in bad_cols else None
            if isinstance(v, bool):
                ws.write_boolean(out, c, v, fmt)
            elif isinstance(v, (int, float)):
                ws.write_number(out, c, v, fmt)
            elif isinstance(v, (datetime, date)):
                ws.write_datetime(out, c, v if isinstance(v, datetime) else datetime(v.year, v.month, v.day),
                                  fmt or dfmt)
            elif not _blank(v) or fmt:
                ws.write_string(out, c, text_of(v), fmt)
            if c in bad_cols:
                ws.write_comment(out, c, bad_cols[c])
        ws.write_string(out, message_col, "；".join(
            f"{e['column']}: {render(e)['message']}" if e["column"] else render(e)["message"] for e in row_errors))
        out += 1
    file_level = [e for e in by_row.get(sheet.header_row, []) + by_row.get(0, [])]
    if file_level:
        ws.write_string(0, message_col, gettext("Errors") + ": " + "；".join(render(e)["message"] for e in file_level), bad)
    wb.close()
    return buf.getvalue()


def template_workbook(kind: str = "customers") -> bytes:
    """An empty import template from the current field definitions: a notes row, the header row,
    dropdown lists for dictionary fields (from a hidden sheet), text format for codes and phones.
    Without the fields hidden from the current user (column scope)."""
    from app.security.scopes import visible_specs

    the_kind = KINDS[kind]
    specs = visible_specs(the_kind.fields()) if the_kind.column_scope else the_kind.fields()
    lookups = Lookups(specs)
    buf = io.BytesIO()
    wb = _workbook(buf)
    ws = wb.add_worksheet(gettext(the_kind.sheet_title)[:31])
    lists = wb.add_worksheet("lists")
    lists.hide()
    text, head = wb.add_format({"num_format": "@"}), wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
    note = wb.add_format({"italic": True, "font_color": "#666666", "text_wrap": True})
    notes = {"date": N_("Date, e.g. 2024-05-01"), "datetime": N_("Date, e.g. 2024-05-01"),
             "money": N_("Amount, e.g. 1,200.50 or 12万"), "number": N_("Number"), "integer": N_("Whole number"),
             "single_choice": N_("Choose from the list"), "multi_choice": N_("Values from the list, separated by 、"),
             "phone": N_("Phone, e.g. 13800138000"), "email": N_("E-mail"), "user": N_("User name or full name"),
             "department": N_("Department name"), "text": N_("Text"), "long_text": N_("Text"),
             "timestamp": N_("Date and time, e.g. 2024-05-01 14:30"), "boolean": N_("Yes or no: 是 / 否")}
    list_col, own_lists = 0, the_kind.template_lists()
    for c, spec in enumerate(specs):
        hint = gettext(notes.get(spec.type, N_("Text")))
        if spec.key == "credit_code":
            hint = gettext(N_("18-character unified social credit code (or ID no. for individuals)"))
        elif spec.key in the_kind.one_of:
            hint = gettext(N_("Customer no., or the customer's name when no other customer has it"))
        ws.write_string(0, c, (gettext("Required") + " · " if spec.required else "") + hint, note)
        ws.write_string(1, c, spec.label + (" *" if spec.required else ""), head)
        ws.set_column(c, c, 18, text if spec.type in ("text", "phone", "long_text") else None)
        if spec.dictionary or spec.key in own_lists:
            names = lookups.names.get(spec.dictionary, []) if spec.dictionary else own_lists[spec.key]
            for i, name in enumerate(names):
                lists.write_string(i, list_col, name)
            if names:
                ref = f"=lists!${col_letter(list_col)}$1:${col_letter(list_col)}${len(names)}"
                ws.data_validation(2, c, 10001, c, {"validate": "list", "source": ref,
                                                    "error_type": "warning" if spec.type == "multi_choice" else "stop"})
            list_col += 1
        elif spec.type == "boolean":
            ws.data_validation(2, c, 10001, c, {"validate": "list", "source": ["是", "否"]})
    ws.set_row(0, 45)
    ws.freeze_panes(2, 0)
    wb.close()
    return buf.getvalue()



# -- kinds ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UpdateKey:
    """One way a kind's rows find the records they update: the option naming it (CLI --update-by,
    the API's and the wizard's update_by; the field key is taken too), the column whose value
    matches a stored record (stored as the batch's update_by), and the wizard's text (msgid)."""
    option: str
    field: str
    label: str


@dataclass(frozen=True)
class ImportKind:
    """What one kind of file imports: its columns, its checks across rows (after the column-wise
    parsing: ``check(checker, rows)`` appends to each row's errors), its writer (``save(rows,
    batch, user, specs, progress, cancelled, offset) -> (created, updated)``, in the run's
    transaction) and its undo (``undo(batch, items, user) -> (removed, restored)``)."""
    key: str
    title: str  # msgid: what the wizard offers
    sheet_title: str  # msgid: the template's sheet
    fields: Callable[[], list[FieldSpec]]
    check: Callable[..., None]
    save: Callable[..., tuple[int, int]]
    undo: Callable[..., tuple[int, int]]
    unknown_column: str  # msgid, with %(letter)s and %(column)s
    table: Any = None  # whose column lengths limit text cells (None: the customer table)
    one_of: tuple[str, ...] = ()  # at least one of these columns is required (the customer reference)
    column_scope: bool = False  # the role's hidden customer fields apply to its columns
    add_view: str = "CustomerModelView"  # importing adds records: who may add them on this view
    needs: tuple[tuple[str, str], ...] = ()  # further permissions (a file sets what only they may)
    # the template's dropdowns for columns that are not dictionary fields: field key -> the names
    # a cell may hold, in the current language (ticket states, teams)
    template_lists: Callable[[], dict[str, list[str]]] = dict
    # how existing records may be updated (update_by): none, or the kind's own keys
    update_keys: tuple[UpdateKey, ...] = ()
    existing: tuple[str, str] = (N_("Existing customers"), N_("only create new customers"))  # msgids: the wizard's

    @property
    def updates(self) -> bool:
        return bool(self.update_keys)


KINDS: dict[str, ImportKind] = {
    "customers": ImportKind("customers", N_("Customer"), N_("Customer Files"), importable_fields, _customer_checks,
                            _save_customers, _undo_customers,
                            N_("Column %(letter)s '%(column)s' matches no customer field: map it or ignore it."),
                            column_scope=True, update_keys=(
                                UpdateKey("no", "customer_no", N_("update, matched by customer no.")),
                                UpdateKey("credit_code", "credit_code", N_("update, matched by credit code")))),
}

import_module("app.services.import_kinds")  # registers contacts and interactions in KINDS
import_module("app.services.import_tickets")  # and tickets


def may_import(kind: str, user) -> bool:
    """Whoever may open the import (can_import) and add the kind's records (can_add on its list
    view, and the kind's further permissions); the system user (CLI without --user) may."""
    from app.extensions import appbuilder

    the_kind = KINDS.get(kind)
    if the_kind is None or user is None:
        return False
    if getattr(user, "is_system", False):
        return True
    sm = appbuilder.sm
    return all(sm._has_view_access(user, perm, view) for perm, view in (
        ("can_import", "CustomerImport"), ("can_add", the_kind.add_view), *the_kind.needs))


def may_update(kind: str, user) -> bool:
    """Update mode: whoever may import the kind and also edit its records (can_edit on its view)."""
    from app.extensions import appbuilder

    the_kind = KINDS.get(kind)
    if not (the_kind and the_kind.updates and may_import(kind, user)):
        return False
    return getattr(user, "is_system", False) or appbuilder.sm._has_view_access(user, "can_edit", the_kind.add_view)


def update_key(kind: str, option: str | None, user) -> str | None:
    """The batch's update key (the matching column) for an update_by option, None to only create;
    refused when the kind has no such key or the user may not update its records."""
    if option in CREATE_ONLY:
        return None
    the_kind = KINDS[kind]
    what = _both(lambda: gettext(the_kind.sheet_title))
    if not the_kind.updates:
        raise ImportRefused("bad_option", N_("An import cannot update %(what)s: it only adds them."), what=what)
    key = next((k.field for k in the_kind.update_keys if option in (k.option, k.field)), None)
    if key is None:
        raise ImportRefused("bad_option", N_("Unknown update key '%(value)s': use %(keys)s."), value=option,
                            keys=" / ".join(k.option for k in the_kind.update_keys))
    if not may_update(kind, user):
        raise ImportRefused("not_allowed", N_("Your role may not edit %(what)s, so an import may not update them."),
                            what=what)
    return key


def importable_kinds(user) -> dict[str, ImportKind]:
    """The kinds the wizard offers this user."""
    return {key: kind for key, kind in KINDS.items() if may_import(key, user)}
