"""Big imports stream: the file is read, checked and saved a chunk at a time (here 4 rows, set by
CRM_IMPORT_CHUNK_ROWS) in one transaction. What a user must not notice: an error in a late chunk
still stops an all-or-nothing import with nothing saved; mode valid saves exactly the good rows;
a duplicate of a row in an earlier chunk (already saved in this transaction) is an in-file
duplicate, not an "existing customer"; a value right of the header found late still stops the
import; progress counts every row."""
from __future__ import annotations

import uuid

import pytest

from test_import import codes, count_prefix, csv_file, run_import, uniq, xlsx


@pytest.fixture()
def small_chunks(app, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_IMPORT_CHUNK_ROWS", 4)


def phones(n: int) -> list[str]:
    base = 16_600_000_000 + uuid.uuid4().int % 9_999 * 100_000  # a block no other test uses
    return [str(base + i) for i in range(n)]


def new_credit_code() -> str:
    """A valid unified social credit code no other test uses."""
    from app.services.dedupe import credit_check_char, org_code_check_char

    body = f"{uuid.uuid4().int % 10**8:08d}"
    first17 = "91440300" + body + org_code_check_char(body)
    return first17 + credit_check_char(first17)


def rows_with_late_error(prefix: str, n: int = 14):
    """n customers (rows 2..n+1): the e-mail of row n (the fourth chunk) is bad."""
    mobile = phones(n)
    rows = [["客户名称", "所属行业", "手机", "邮箱"]]
    rows += [[f"{prefix}{i:03d}", "制造业", mobile[i], f"c{i}@example.com"] for i in range(n)]
    rows[n - 1][3] = "坏邮箱"
    return rows


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_error_in_a_late_chunk_saves_nothing_in_mode_all(app, tmp_path, small_chunks, fmt):
    prefix = uniq("流式全")
    rows = rows_with_late_error(prefix)
    path = xlsx(tmp_path / "a.xlsx", rows) if fmt == "xlsx" else csv_file(tmp_path / "a.csv", rows, "gb18030")
    report = run_import(app, path)
    assert (report["status"], report["rows_total"], report["rows_valid"], report["rows_created"]) == ("rejected", 14, 13, 0)
    assert codes(report) == [(14, "邮箱", "bad_email")]
    assert count_prefix(app, prefix) == (0, 0)  # the first three chunks, saved meanwhile, are gone


def test_mode_valid_saves_exactly_the_good_rows_of_every_chunk(app, tmp_path, small_chunks):
    from app.extensions import db
    from app.models.importing import ImportBatch, ImportItem
    from app.services.importer import get_progress

    prefix = uniq("流式有效")
    report = run_import(app, xlsx(tmp_path / "v.xlsx", rows_with_late_error(prefix)), mode="valid")
    assert (report["status"], report["rows_total"], report["rows_valid"], report["rows_created"]) == ("done", 14, 13, 13)
    assert count_prefix(app, prefix) == (13, 13)
    with app.app_context():
        batch = db.session.get(ImportBatch, report["batch"])
        saved_rows = sorted(r for (r,) in db.session.query(ImportItem.row).filter_by(batch_id=batch.id))
        progress = get_progress(batch.id)
    assert saved_rows == [r for r in range(2, 16) if r != 14]
    assert (progress["read"], progress["validated"], progress["saved"]) == (14, 14, 13)


def test_duplicates_across_chunks_are_in_file_duplicates(app, tmp_path, small_chunks):
    """Rows 9 and 13 repeat rows 2 and 3 (chunk 1, already saved in this transaction when the
    later chunks are checked): reported as the same customer as that row of the file, never as
    an existing customer."""
    prefix, code = uniq("流式重复"), new_credit_code()
    mobile = phones(12)
    rows = [["客户名称", "统一社会信用代码", "手机"]]
    rows += [[f"{prefix}{i:03d}", None, mobile[i]] for i in range(12)]
    rows[2][1] = code  # row 3
    rows[8][0] = f" {prefix.upper()}000 "  # row 9: the name of row 2, in other case and spacing
    rows[12][1] = code  # row 13: the credit code of row 3
    path = xlsx(tmp_path / "d.xlsx", rows)
    with_db_copy = run_import(app, path, mode="valid")
    assert codes(with_db_copy) == [(9, "客户名称", "duplicate_in_file"), (13, "统一社会信用代码", "duplicate_in_file")]
    assert [e["message"] for e in with_db_copy["errors"]] == ["与本文件第 2 行是同一客户。", "与本文件第 3 行是同一客户。"]
    assert (with_db_copy["rows_created"], count_prefix(app, prefix)) == (10, (10, 10))


def test_a_value_right_of_the_header_in_a_late_chunk_stops_the_import(app, tmp_path, small_chunks):
    prefix = uniq("流式多列")
    mobile = phones(10)
    rows = [["客户名称", "手机"]] + [[f"{prefix}{i:03d}", mobile[i]] for i in range(10)]
    rows[9] = rows[9] + [None, "多出的值"]  # row 10, third chunk: a value in column D, which has no header
    report = run_import(app, xlsx(tmp_path / "w.xlsx", rows), mode="valid")
    assert (report["status"], report["rows_total"], report["rows_created"]) == ("rejected", 10, 0)
    assert [(e["row"], e["code"]) for e in report["errors"]] == [(1, "unknown_column"), (1, "unknown_column")]
    assert "D" in report["errors"][1]["message"]
    assert count_prefix(app, prefix) == (0, 0)


def test_dry_run_of_several_chunks_saves_nothing_and_counts_all(app, tmp_path, small_chunks):
    prefix = uniq("流式试")
    rows = rows_with_late_error(prefix)
    rows[13][3] = "ok@example.com"
    report = run_import(app, xlsx(tmp_path / "t.xlsx", rows), dry_run=True)
    assert (report["status"], report["rows_total"], report["rows_valid"], report["errors"]) == ("checked", 14, 14, [])
    assert count_prefix(app, prefix) == (0, 0)


@pytest.mark.parametrize("date1904", [False, True])
def test_big_workbooks_streamed_by_openpyxl_give_the_same_report(app, tmp_path, monkeypatch, date1904):
    """Workbooks whose sheets unpack beyond CRM_IMPORT_CALAMINE_MAX_MB are read by openpyxl's
    streaming reader: title rows, blank rows, date cells and serial numbers (1904 too), numbers
    as phones, leading zeros, formulas as text and bad cells come out as calamine reads them."""
    from datetime import date

    mobile = phones(3)
    rows = [["2024 客户名单"], [None], ["客户名称", "首次接触时间", "手机", "累计交易金额", "邮箱", "备注", None],
            [uniq("流式读"), date(2024, 5, 1), int(mobile[0]), 1200.5, "a@example.com", "007"],
            [None],
            [uniq("流式读"), 43951, mobile[1], "12万", "坏邮箱", "=1+1"],
            [uniq("流式读"), "2024-13-45", "1380000", "一千", None, 42],
            [None, date(2023, 1, 2), mobile[2], 5, None, None]]
    path = xlsx(tmp_path / "b.xlsx", rows, date1904=date1904)
    by_calamine = run_import(app, path, dry_run=True)
    monkeypatch.setitem(app.config, "CRM_IMPORT_CALAMINE_MAX_MB", 1e-6)
    streamed = run_import(app, path, dry_run=True)
    assert codes(streamed) == [(6, "邮箱", "bad_email"), (7, "首次接触时间", "bad_date"), (7, "手机", "bad_phone"),
                               (7, "累计交易金额", "bad_money"), (8, "客户名称", "required")]
    assert {**streamed, "batch": None} == {**by_calamine, "batch": None}
