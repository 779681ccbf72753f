"""Attachments on interaction records (互动记录) and service tickets (服务工单): files chosen on
the add forms are stored with the record, listed on its page (and the customer's timeline) with
size and uploader, downloaded byte-identical by users in scope and 404 for others; a refused
file (HTML or an .exe named .pdf, too big) refuses the whole save with its name and leaves no
record and no file; 上传附件 on the pages and the API add more; deleting the record removes them."""
from __future__ import annotations

import io
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from conftest import ADMIN_PASSWORD, USER_PASSWORD, as_system, csrf_token, login
from test_attachments import PDF, files_on_disk, png_bytes
from test_i18n import visible
from test_roles import jwt, new_customer, session_csrf

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode"
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"

_addr = iter(range(1, 60_000))


def fresh(app, username: str | None = None):
    n = next(_addr)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.241.{n // 250 % 250}.{n % 250 + 1}"
    if username:
        assert login(c, username, USER_PASSWORD).status_code == 302
    return c


def item_id(app, type_key: str, code: str) -> int:
    from app.extensions import db
    from app.models import DictionaryItem

    with app.app_context():
        return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one().id


def attachments(app, **owner) -> list[tuple]:
    from app.extensions import db
    from app.models import Attachment

    with app.app_context():
        return [(a.id, a.original_name, a.stored_name, a.size, a.customer_id, getattr(a.uploaded_by, "username", None))
                for a in db.session.query(Attachment).filter_by(**owner).order_by(Attachment.id)]


def add_interaction(client, customer_id: int, key_points: str, files: list[tuple[str, bytes]]):
    page = client.get(f"/interactionmodelview/add?_flt_0_customer={customer_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="attachment_files"' in html and "multiple" in html
    data = {"csrf_token": csrf_token(html), "customer": str(customer_id),
            "occurred_at": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "key_points": key_points,
            "attachment_files": [(io.BytesIO(d), n) for n, d in files]}
    return client.post("/interactionmodelview/add", data=data, content_type="multipart/form-data",
                       follow_redirects=True)


def add_ticket(app, client, customer_id: int, title: str, files: list[tuple[str, bytes]]):
    page = client.get("/ticketmodelview/add")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="attachment_files"' in html
    data = {"csrf_token": csrf_token(html), "customer": str(customer_id),
            "type": str(item_id(app, "ticket_type", "consult")), "title": title,
            "attachment_files": [(io.BytesIO(d), n) for n, d in files]}
    return client.post("/ticketmodelview/add", data=data, content_type="multipart/form-data", follow_redirects=True)


def record_id(app, model_name: str, **where) -> int | None:
    from app.extensions import db
    import app.models as models

    with app.app_context():
        row = db.session.query(getattr(models, model_name)).filter_by(**where).one_or_none()
        return row.id if row else None


def test_interaction_form_stores_files_shown_and_downloaded_in_scope_only(app, make_user):
    owner, stranger = make_user("sales_staff", "sales"), make_user("sales_staff", "sales")
    cid = new_customer(app, owner=owner)
    key = f"带附件的拜访{uuid.uuid4().hex[:6]}"
    png = png_bytes()
    c = fresh(app, owner)
    resp = add_interaction(c, cid, key, [("拜访纪要.pdf", PDF), ("现场照片.png", png)])
    assert resp.status_code == 200
    pk = record_id(app, "Interaction", key_points=key)
    assert pk is not None
    rows = attachments(app, interaction_id=pk)
    assert [(r[1], r[3], r[4], r[5]) for r in rows] == [("拜访纪要.pdf", len(PDF), cid, owner),
                                                         ("现场照片.png", len(png), cid, owner)]
    assert all(r[2] in files_on_disk(app) for r in rows)

    # the interaction's page and the customer's timeline list them with size, uploader and a link
    for url in (f"/interactionmodelview/show/{pk}", f"/customermodelview/show/{cid}"):
        html = c.get(url).get_data(as_text=True)
        text = " ".join(visible(html))
        assert "拜访纪要.pdf" in text and "现场照片.png" in text and f"{len(PDF)} B" in text, url
        assert f"/attachmentmodelview/file/{rows[0][0]}" in html and "上传附件" in text, url
    # the API shows them too
    shown = c.get(f"/api/v1/interaction/{pk}").get_json()["result"]["attachments"]
    assert [(a["name"], a["size"], a["uploaded_by"]) for a in shown] == [
        ("拜访纪要.pdf", len(PDF), owner), ("现场照片.png", len(png), owner)]

    dl = c.get(f"/attachmentmodelview/file/{rows[1][0]}")
    assert dl.status_code == 200 and dl.data == png
    assert dl.headers["Content-Disposition"].startswith("attachment;")

    # another salesperson (own customers only) gets 404, in the UI and the API
    other = fresh(app, stranger)
    resp = other.get(f"/attachmentmodelview/file/{rows[0][0]}")
    assert resp.status_code == 404 and resp.data != PDF
    assert other.get(f"/interactionmodelview/show/{pk}").status_code == 404
    api = fresh(app)
    resp = api.post(f"/api/v1/interaction/{pk}/attachments", headers=jwt(api, stranger, USER_PASSWORD),
                    data={"files": (io.BytesIO(PDF), "塞进去.pdf")}, content_type="multipart/form-data")
    assert resp.status_code == 404 and len(attachments(app, interaction_id=pk)) == 2


@pytest.mark.parametrize("name,data,reason", [
    ("报价.pdf", HTML, "文件内容不是 PDF 文件"),      # an HTML page renamed .pdf
    ("setup.pdf", EXE, "文件内容不是 PDF 文件"),      # a program renamed .pdf
    ("报价.html", HTML, "不接受 .html 类型的文件"),
    ("setup.exe", EXE, "不接受 .exe 类型的文件"),
])
def test_a_refused_file_refuses_the_whole_interaction(app, admin_client, name, data, reason):
    cid = new_customer(app)
    key = f"被拒的互动{uuid.uuid4().hex[:6]}"
    before = files_on_disk(app)
    resp = add_interaction(admin_client, cid, key, [("好文件.pdf", PDF), (name, data)])
    text = " ".join(visible(resp.get_data(as_text=True)))
    assert f"文件“{name}”未保存" in text and reason in text
    assert record_id(app, "Interaction", key_points=key) is None  # no record without its files
    assert attachments(app, customer_id=cid) == [] and files_on_disk(app) == before


def test_ticket_form_files_refusals_and_ticket_scope(app, admin_client, make_user, monkeypatch):
    from app.extensions import appbuilder, db
    from app.models import Ticket

    owner, collaborator, stranger = (make_user("sales_staff", "sales") for _ in range(3))
    cid = new_customer(app, owner=owner)
    word = uuid.uuid4().hex[:6]

    # a program named .pdf, then a file over the limit: no ticket, no number, no file
    before = files_on_disk(app)
    resp = add_ticket(app, admin_client, cid, f"{word} 拒绝", [("故障截图.png", png_bytes()), ("日志.pdf", EXE)])
    text = " ".join(visible(resp.get_data(as_text=True)))
    assert "文件“日志.pdf”未保存" in text and "文件内容不是 PDF 文件" in text
    monkeypatch.setitem(app.config, "CRM_ATTACHMENT_MAX_MB", 0.01)  # 10 KB
    resp = add_ticket(app, admin_client, cid, f"{word} 太大", [("大文件.pdf", PDF + b"0" * 20_000)])
    text = " ".join(visible(resp.get_data(as_text=True)))
    assert "文件“大文件.pdf”未保存" in text and "0.01 MB" in text
    with app.app_context():
        assert db.session.query(Ticket).filter(Ticket.title.like(f"{word}%")).count() == 0
    assert attachments(app, customer_id=cid) == [] and files_on_disk(app) == before
    monkeypatch.undo()

    resp = add_ticket(app, admin_client, cid, f"{word} 报修", [("保修卡.pdf", PDF)])
    assert resp.status_code == 200
    pk = record_id(app, "Ticket", title=f"{word} 报修")
    [(att_id, name, stored, size, att_cid, uploader)] = attachments(app, ticket_id=pk)
    assert (name, size, att_cid, uploader) == ("保修卡.pdf", len(PDF), cid, "admin")
    html = admin_client.get(f"/ticketmodelview/show/{pk}").get_data(as_text=True)
    assert 'id="ticket-attachments"' in html and "保修卡.pdf" in html and f"/attachmentmodelview/file/{att_id}" in html

    # a ticket's files follow the ticket: a collaborator downloads them; the customer's owner, who
    # may not open this ticket (sales staff see their own tickets), and a stranger get 404
    with as_system(app):
        ticket = db.session.get(Ticket, pk)
        ticket.collaborators.append(appbuilder.sm.find_user(username=collaborator))
        db.session.commit()
    for who, status in ((owner, 404), (collaborator, 200), (stranger, 404)):
        assert fresh(app, who).get(f"/ticketmodelview/show/{pk}").status_code == status, who
        resp = fresh(app, who).get(f"/attachmentmodelview/file/{att_id}")
        assert resp.status_code == status, who
        assert (resp.data == PDF) is (status == 200), who


def test_upload_on_the_pages_and_the_api(app, admin_client, make_user):
    service = make_user("service_staff", "service")  # may add interactions and tickets: may attach
    cid = new_customer(app)
    key = f"之后补附件{uuid.uuid4().hex[:6]}"
    add_interaction(admin_client, cid, key, [])
    ipk = record_id(app, "Interaction", key_points=key)
    add_ticket(app, admin_client, cid, key, [])
    tpk = record_id(app, "Ticket", title=key)
    assert attachments(app, interaction_id=ipk) == [] == attachments(app, ticket_id=tpk)

    # 上传附件 on the customer's timeline goes back to the timeline
    c = fresh(app, service)
    resp = c.post(f"/interactionmodelview/attach/{ipk}", data={
        "csrf_token": session_csrf(c), "next": f"/customermodelview/show/{cid}#Timeline",
        "files": [(io.BytesIO("会议记录".encode()), "记录.txt"), (io.BytesIO(PDF), "附表.pdf")]},
        content_type="multipart/form-data")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/customermodelview/show/{cid}#Timeline")
    assert [r[1] for r in attachments(app, interaction_id=ipk)] == ["记录.txt", "附表.pdf"]
    # a refused file on the ticket page: the message names it, nothing is stored
    before = files_on_disk(app)
    resp = admin_client.post(f"/ticketmodelview/attach/{tpk}", data={
        "csrf_token": session_csrf(admin_client),
        "files": [(io.BytesIO(PDF), "好的.pdf"), (io.BytesIO(HTML), "页面.pdf")]},
        content_type="multipart/form-data", follow_redirects=True)
    assert "文件“页面.pdf”未保存" in " ".join(visible(resp.get_data(as_text=True)))
    assert attachments(app, ticket_id=tpk) == [] and files_on_disk(app) == before

    # the API: multipart with the session cookie (X-CSRFToken) or a JWT
    resp = admin_client.post(f"/api/v1/ticket/{tpk}/attachments", headers={"X-CSRFToken": session_csrf(admin_client)},
                             data={"files": [(io.BytesIO(png_bytes()), "截图.png")]}, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert [a["name"] for a in resp.get_json()["attachments"]] == ["截图.png"]
    api = fresh(app)
    resp = api.post(f"/api/v1/ticket/{tpk}/attachments", headers=jwt(api, "admin", ADMIN_PASSWORD),
                    data={"files": (io.BytesIO(EXE), "驱动.pdf")}, content_type="multipart/form-data")
    assert resp.status_code == 422 and "驱动.pdf" in resp.get_json()["message"]
    shown = admin_client.get(f"/api/v1/ticket/{tpk}").get_json()["result"]["attachments"]
    assert [a["name"] for a in shown] == ["截图.png"]


def test_deleting_an_interaction_or_a_ticket_removes_its_files(app, admin_client):
    cid = new_customer(app)
    key = f"删除带附件{uuid.uuid4().hex[:6]}"
    add_interaction(admin_client, cid, key, [("纪要.pdf", PDF)])
    add_ticket(app, admin_client, cid, key, [("工单附件.pdf", PDF), ("说明.txt", "说明文字".encode())])
    ipk, tpk = record_id(app, "Interaction", key_points=key), record_id(app, "Ticket", title=key)
    folder = Path(app.config["CRM_ATTACHMENT_DIR"])
    i_files = [r[2] for r in attachments(app, interaction_id=ipk)]
    t_files = [r[2] for r in attachments(app, ticket_id=tpk)]
    assert len(i_files) == 1 and len(t_files) == 2 and all((folder / f).exists() for f in i_files + t_files)

    for view, pk, names in (("interactionmodelview", ipk, i_files), ("ticketmodelview", tpk, t_files)):
        resp = admin_client.post(f"/{view}/delete/{pk}", data={"csrf_token": session_csrf(admin_client)})
        assert resp.status_code == 302, view
        assert not any((folder / f).exists() for f in names), view
    assert attachments(app, customer_id=cid) == []


def test_merging_customers_keeps_the_files_of_moved_interactions(app, admin_client):
    """The merged customer is deleted: its interactions move with their files, which stay."""
    survivor, merged = new_customer(app), new_customer(app)
    key = f"合并带附件{uuid.uuid4().hex[:6]}"
    add_interaction(admin_client, merged, key, [("合同.pdf", PDF)])
    ipk = record_id(app, "Interaction", key_points=key)
    [(att_id, _, stored, *_)] = attachments(app, interaction_id=ipk)
    resp = admin_client.post("/api/v1/customer/merge", json={"survivor_id": survivor, "merged_id": merged},
                             headers={"X-CSRFToken": session_csrf(admin_client)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["moved"]["crm_attachment"] == 1
    assert [(r[0], r[4]) for r in attachments(app, interaction_id=ipk)] == [(att_id, survivor)]
    assert stored in files_on_disk(app)
    assert admin_client.get(f"/attachmentmodelview/file/{att_id}").data == PDF
