"""A service agent attaches files to a ticket in a real browser (上传附件 on the ticket page), sees
them listed with size and uploader, downloads one and gets the same bytes back; a program named
.pdf is refused with its name on the page."""
from __future__ import annotations

import uuid
from datetime import datetime

from conftest import USER_PASSWORD

from .test_browser import (  # noqa: F401  (fixtures used by name)
    assert_page_ok, browser, demo_data, log_in, new_page, pytestmark, shot,
)

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def _ticket(app, creator: str) -> int:
    from app.extensions import appbuilder, db
    from app.models import Customer, DictionaryItem, Ticket
    from app.services.actor import as_system_user
    from app.services.numbering import next_number
    from app.services.tickets import open_ticket

    with app.test_request_context("/"), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=f"工单附件浏览器客户{uuid.uuid4().hex[:6]}")
        db.session.add(c)
        db.session.flush()
        kind = db.session.query(DictionaryItem).filter_by(type_key="ticket_type", code="consult").one()
        t = Ticket(customer_id=c.id, type=kind, title="打印机卡纸，附照片")
        open_ticket(t)
        t.created_by_fk = appbuilder.sm.find_user(username=creator).id  # the agent's own ticket
        db.session.add(t)
        db.session.commit()
        return t.id


def test_attach_a_file_to_a_ticket_and_download_it(app, live_server, make_user, new_page, tmp_path):  # noqa: F811
    agent = make_user("service_staff", "service", username=f"attach_{uuid.uuid4().hex[:6]}")
    pk = _ticket(app, agent)
    good = tmp_path / "现场照片说明.pdf"
    good.write_bytes(PDF)
    bad = tmp_path / "驱动.pdf"
    bad.write_bytes(b"MZ\x90\x00" + b"\x00" * 100)

    page = new_page()
    log_in(page, live_server, agent, USER_PASSWORD)
    page.goto(f"{live_server}/ticketmodelview/show/{pk}")
    assert_page_ok(page)
    form = page.locator("#ticket-attach")
    form.locator("input[type=file]").set_input_files([str(good)])
    form.get_by_role("button", name="上传附件").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert "已上传 1 个附件：现场照片说明.pdf" in text
    row = page.locator("#ticket-attachments li", has_text="现场照片说明.pdf")
    assert row.count() == 1 and f"{len(PDF)} B" in row.inner_text()
    shot(page, "ticket-attachments")

    with page.expect_download() as info:
        row.get_by_role("link", name="现场照片说明.pdf").click()
    download = info.value
    assert download.suggested_filename == "现场照片说明.pdf"
    assert open(download.path(), "rb").read() == PDF

    form = page.locator("#ticket-attach")
    form.locator("input[type=file]").set_input_files([str(bad)])
    form.get_by_role("button", name="上传附件").click()
    page.wait_for_load_state("networkidle")
    text = assert_page_ok(page)
    assert "文件“驱动.pdf”未保存" in text and "文件内容不是 PDF 文件" in text
    assert page.locator("#ticket-attachments li").count() == 1


def test_record_an_interaction_with_files_and_see_them_on_the_timeline(app, live_server, make_user, new_page, tmp_path):  # noqa: F811
    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    sales = make_user("sales_staff", "sales", username=f"attach_{uuid.uuid4().hex[:6]}")
    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=f"互动附件浏览器客户{uuid.uuid4().hex[:6]}",
                     owner_id=appbuilder.sm.find_user(username=sales).id)
        db.session.add(c)
        db.session.commit()
        cid = c.id
    notes = tmp_path / "拜访纪要.txt"
    notes.write_text("客户希望下周报价", encoding="utf-8")

    page = new_page()
    log_in(page, live_server, sales, USER_PASSWORD)
    page.goto(f"{live_server}/interactionmodelview/add?_flt_0_customer={cid}")
    assert_page_ok(page)
    page.locator("textarea[name=key_points], input[name=key_points]").first.fill("上门拜访，带纪要")
    page.locator("input[name=attachment_files]").set_input_files([str(notes)])
    # the date picker's text box, set as a person's pick would leave it
    page.locator("input[name=occurred_at]").evaluate("(el, v) => { el.value = v; }",
                                                     datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    page.locator("form button[type=submit]").last.click()
    page.wait_for_load_state("networkidle")
    assert_page_ok(page)
    page.goto(f"{live_server}/customermodelview/show/{cid}#Timeline")
    page.get_by_role("link", name="时间线").click()
    item = page.locator(".crm-timeline-item", has_text="上门拜访，带纪要")
    assert item.locator(".crm-attachments li", has_text="拜访纪要.txt").count() == 1
    shot(page, "interaction-timeline-attachments")
    item.get_by_role("link", name="上门拜访，带纪要").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#interaction-attachments li", has_text="拜访纪要.txt").count() == 1
    shot(page, "interaction-attachments")
