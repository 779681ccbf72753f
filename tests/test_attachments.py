"""Customer attachments (附件): upload on the customer page, download byte-identical as an
attachment, refusals (type, lying extension, size) with the reason shown and nothing stored,
delete removes the file, permissions follow the customer view."""
from __future__ import annotations

import io
import struct
import uuid
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import USER_PASSWORD, csrf_token, login
from test_i18n import visible

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


@pytest.fixture()
def customer(app):
    from app.extensions import db
    from app.models import Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=f"附件测试客户{uuid.uuid4().hex[:8]}")
        db.session.add(c)
        db.session.commit()
        return c.id


def stored(app, customer_id: int) -> list:
    from app.extensions import db
    from app.models import Attachment

    with app.app_context():
        return [(a.id, a.original_name, a.stored_name, a.size)
                for a in db.session.query(Attachment).filter_by(customer_id=customer_id).order_by(Attachment.id)]


def files_on_disk(app) -> set[str]:
    folder = Path(app.config["CRM_ATTACHMENT_DIR"])
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def upload(client, customer_id: int, name: str, data: bytes):
    url = f"/attachmentmodelview/add?_flt_0_customer={customer_id}"
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                  "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", follow_redirects=True)


@pytest.mark.parametrize("name,data,ctype", [
    ("合同扫描件 2024.pdf", PDF, "application/pdf"),
    ("营业执照.png", None, "image/png"),
])
def test_upload_and_download_back_byte_identical(app, admin_client, customer, name, data, ctype):
    data = data or png_bytes()
    page = admin_client.get(f"/customermodelview/show/{customer}").get_data(as_text=True)
    assert f"/attachmentmodelview/add?_flt_0_customer={customer}" in page  # the upload button on the 附件 tab
    resp = upload(admin_client, customer, name, data)
    assert resp.status_code == 200
    rows = stored(app, customer)
    assert [(r[1], r[3]) for r in rows] == [(name, len(data))]
    att_id, _, stored_name, _ = rows[0]
    assert name not in stored_name and stored_name in files_on_disk(app)
    assert (Path(app.config["CRM_ATTACHMENT_DIR"]) / stored_name).read_bytes() == data

    show = admin_client.get(f"/customermodelview/show/{customer}").get_data(as_text=True)
    assert name in " ".join(visible(show)) and f"/attachmentmodelview/file/{att_id}" in show

    dl = admin_client.get(f"/attachmentmodelview/file/{att_id}")
    assert dl.status_code == 200
    assert dl.data == data
    assert dl.headers["Content-Type"].startswith(ctype)
    assert dl.headers["X-Content-Type-Options"] == "nosniff"
    disposition = dl.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(name)}" in disposition


def test_refused_html_file(app, admin_client, customer):
    before = files_on_disk(app)
    resp = upload(admin_client, customer, "报价.html", b"<html><script>alert(1)</script></html>")
    text = " ".join(visible(resp.get_data(as_text=True)))
    assert "文件“报价.html”未保存" in text and "不接受 .html 类型的文件" in text
    assert stored(app, customer) == [] and files_on_disk(app) == before


def test_refused_svg_file(app, admin_client, customer):
    resp = upload(admin_client, customer, "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert "不接受 .svg 类型的文件" in " ".join(visible(resp.get_data(as_text=True)))
    assert stored(app, customer) == []


def test_refused_lying_extension(app, admin_client, customer):
    before = files_on_disk(app)
    resp = upload(admin_client, customer, "合同.pdf", b"<!DOCTYPE html><html><body>not a pdf</body></html>")
    text = " ".join(visible(resp.get_data(as_text=True)))
    assert "文件“合同.pdf”未保存" in text and "文件内容不是 PDF 文件" in text
    # HTML posing as text is refused too
    resp = upload(admin_client, customer, "说明.txt", b"<html><script>alert(1)</script></html>")
    assert "文件内容不是 TXT 文件" in " ".join(visible(resp.get_data(as_text=True)))
    assert stored(app, customer) == [] and files_on_disk(app) == before


def test_refused_oversize_file(app, admin_client, customer, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_ATTACHMENT_MAX_MB", 0.01)  # 10 KB
    before = files_on_disk(app)
    resp = upload(admin_client, customer, "big.pdf", PDF + b"0" * 20_000)
    text = " ".join(visible(resp.get_data(as_text=True)))
    assert "文件“big.pdf”未保存" in text and "0.01 MB" in text
    assert stored(app, customer) == [] and files_on_disk(app) == before


def test_refusal_in_english(app, admin_client, customer):
    from app.extensions import appbuilder, db

    with app.app_context():
        appbuilder.sm.find_user(username="admin").locale = "en"
        db.session.commit()
    try:
        admin_client.get("/lang/en")
        resp = upload(admin_client, customer, "x.html", b"<html></html>")
        assert 'File "x.html" was not saved: files of type .html are not accepted' in \
            " ".join(visible(resp.get_data(as_text=True)))
    finally:
        with app.app_context():
            appbuilder.sm.find_user(username="admin").locale = None
            db.session.commit()


def test_delete_removes_the_file(app, admin_client, customer):
    upload(admin_client, customer, "删除我.txt", "纯文本内容".encode())
    [(att_id, _, stored_name, _)] = stored(app, customer)
    assert stored_name in files_on_disk(app)
    page = admin_client.get(f"/customermodelview/show/{customer}").get_data(as_text=True)
    resp = admin_client.post(f"/attachmentmodelview/delete/{att_id}", data={"csrf_token": csrf_token(page)},
                             follow_redirects=True)
    assert resp.status_code == 200
    assert stored(app, customer) == [] and stored_name not in files_on_disk(app)
    assert admin_client.get(f"/attachmentmodelview/file/{att_id}").status_code == 404


def test_permissions_follow_the_customer_view(app, admin_client, make_user, customer):
    upload(admin_client, customer, "报告.pdf", PDF)
    [(att_id, *_)] = stored(app, customer)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.251.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    login(client, make_user("service_staff", "service"), USER_PASSWORD)  # customers: list, show
    assert client.get(f"/attachmentmodelview/file/{att_id}").data == PDF
    page = client.get(f"/customermodelview/show/{customer}").get_data(as_text=True)
    assert "/attachmentmodelview/add" not in page and f"/attachmentmodelview/delete/{att_id}" not in page
    resp = client.post(f"/attachmentmodelview/delete/{att_id}", data={"csrf_token": csrf_token(
        client.get("/customermodelview/list/").get_data(as_text=True))})
    assert resp.status_code == 403
    assert len(stored(app, customer)) == 1
    anon = app.test_client()
    resp = anon.get(f"/attachmentmodelview/file/{att_id}")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/") and resp.data != PDF


def test_deleting_the_customer_removes_its_files(app, admin_client, customer):
    upload(admin_client, customer, "随客户删除.pdf", PDF)
    [(_, _, stored_name, _)] = stored(app, customer)
    page = admin_client.get(f"/customermodelview/show/{customer}").get_data(as_text=True)
    resp = admin_client.post(f"/customermodelview/delete/{customer}", data={"csrf_token": csrf_token(page)})
    assert resp.status_code == 302
    assert stored(app, customer) == [] and stored_name not in files_on_disk(app)


def test_attachments_follow_the_customer_row_scope(app, admin_client, make_user, customer):
    """A salesperson may not download, list or add attachments of a customer outside their own."""
    upload(admin_client, customer, "别人的合同.pdf", PDF)
    [(att_id, *_)] = stored(app, customer)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.252.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    login(client, make_user("sales_staff", "sales"), USER_PASSWORD)  # scope: own customers only
    resp = client.get(f"/attachmentmodelview/file/{att_id}")
    assert resp.status_code == 404 and resp.data != PDF
    before = files_on_disk(app)
    resp = upload(client, customer, "塞进去.pdf", PDF)
    assert len(stored(app, customer)) == 1 and files_on_disk(app) == before
