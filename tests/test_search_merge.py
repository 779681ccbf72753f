"""Search at scale (issue 3, point 12): each reading of the box (name piece, pinyin, contact name,
number) is read on its own in id order and merged; tags are joins on the tag index. The user sees
each customer once, newest first, the same rows whatever page size, and counts that say "N+"
when they stop at the cap."""
from __future__ import annotations


import pytest

from conftest import USER_PASSWORD, login


@pytest.fixture(scope="module")
def merged(app, make_user_module):
    """A salesperson's customers found by different readings of one text: the name (Chinese piece
    and pinyin initials), a contact's name, both at once; tagged in a pattern. Returns
    (username, {label: customer id}, word, initials)."""
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer
    from app.services import tagging
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    # a rare three-character piece (its first two characters common in these names, its last two rare)
    word = "鹳鹂" + "鸸"
    username = make_user_module("sales_staff", "sales")
    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        made = {}
        with as_system_user():
            for label, name, contact in [
                ("name", f"甲{word}科技公司", "王五"),          # the name only
                ("contact", "乙贸易公司", f"{word}先生"),        # a contact's name only
                ("both", f"丙{word}实业公司", f"{word}女士"),    # name and contact: found twice, shown once
                ("noise", "鹳鹂丁公司", "赵六"),                # the common first piece, not the word
            ] + [(f"filler{i}", f"鹳鹂填充{i}号公司", "") for i in range(6)] + \
                    [(f"many{i}", f"鹳鹂批量{i}号公司", "") for i in range(51)]:
                c = Customer(customer_no=next_number("customer"), name=name, owner_id=user.id,
                             department_id=user.department_id)
                db.session.add(c)
                db.session.flush()
                if contact:
                    db.session.add(Contact(customer=c, name=contact))
                made[label] = c.id
            db.session.commit()
            for label in ("name", "both", "noise"):
                tagging.add_tag(made[label], "消费能力-高", None)
            for label in ("name", "contact", "noise"):
                tagging.add_tag(made[label], "区域-华东", None)
        initials = db.session.get(Customer, made["name"]).name_initials[1:4]
    return username, made, word, initials


def _search(client, **params):
    resp = client.get("/api/v1/customer/search", query_string=params)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


@pytest.fixture(scope="module")
def staff(app, merged):  # one login for the module: logins are rate-limited
    client = app.test_client()
    assert login(client, merged[0], USER_PASSWORD).status_code == 302
    return client


def test_each_reading_merged_once_newest_first(staff, merged):
    _user, made, word, _initials = merged
    found = _search(staff, q=word)
    expected = sorted([made["name"], made["contact"], made["both"]], reverse=True)
    assert found["ids"] == expected, "each customer once, newest first"
    assert found["count"] == 3 and found["count_capped"] is False
    pages = [_search(staff, q=word, page_size=1, page=p)["ids"] for p in range(4)]
    assert pages == [[expected[0]], [expected[1]], [expected[2]], []], "pages of one are the same rows in order"


def test_pinyin_initials_found_by_their_rarest_piece(staff, merged):
    _user, made, _word, initials = merged
    found = _search(staff, q=initials)
    assert made["name"] in found["ids"] and made["both"] in found["ids"] and made["noise"] not in found["ids"]
    assert len(found["ids"]) == len(set(found["ids"])) and found["ids"] == sorted(found["ids"], reverse=True)


def test_tags_included_and_excluded_with_the_box(staff, merged):
    _user, made, word, _initials = merged
    both_tags = _search(staff, q="鹳鹂", tag=["消费能力-高", "区域-华东"])
    assert both_tags["ids"] == sorted([made["name"], made["noise"]], reverse=True)
    one_not_other = _search(staff, q=word, tag=["区域-华东"], notag=["消费能力-高"])
    assert one_not_other["ids"] == [made["contact"]]
    tags_only = _search(staff, tag=["消费能力-高", "区域-华东"])
    assert tags_only["ids"] == sorted([made["name"], made["noise"]], reverse=True)
    assert tags_only["count"] == 2, "the salesperson sees only the own customers carrying both tags"


def test_capped_search_says_n_plus_and_pages_on(app, staff, merged):
    _user, made, _word, _initials = merged
    fillers = sorted((v for k, v in made.items() if k.startswith("filler")), reverse=True)
    old = app.config["CRM_COUNT_CAP"]
    app.config["CRM_COUNT_CAP"] = 3
    try:
        first = _search(staff, q="鹳鹂填充", page_size=2)
        assert first["count"] == 3 and first["count_capped"] is True and first["ids"] == fillers[:2]
        last = _search(staff, q="鹳鹂填充", page_size=2, page=2)  # past the cap: the count is exact again
        assert last["count"] == 6 and last["count_capped"] is False and last["ids"] == fillers[4:6]
    finally:
        app.config["CRM_COUNT_CAP"] = old


def test_default_cap_reads_1000_plus():
    from app.services.paging import CappedCount

    assert str(CappedCount(1000)) == "1,000+" and CappedCount(1000) == 1001


def test_search_page_shows_its_page_at_once_and_asks_the_count_apart(app, staff, merged):
    """More matches than a page: the page says "25+ (counting…)" (25 rows, or the 50 or 100
    chosen) and links the next page at the same size; the count line it asks for says the exact
    count, or "N+" at the cap past the page."""
    page = staff.get("/customersearch/", query_string={"q": "鹳鹂批量"}).get_data(as_text=True)
    assert "25+" in page and 'data-count-url="/customersearch/count?' in page and "page=1" in page
    assert page.count('<a href="/customermodelview/show/') == 25
    page = staff.get("/customersearch/", query_string={"q": "鹳鹂批量", "page_size": 50}).get_data(as_text=True)
    assert "50+" in page and page.count('<a href="/customermodelview/show/') == 50
    assert "page=1&amp;page_size=50" in page, "the next page keeps the chosen size"
    odd = staff.get("/customersearch/", query_string={"q": "鹳鹂批量", "page_size": 7}).get_data(as_text=True)
    assert odd.count('<a href="/customermodelview/show/') == 25, "a size not offered is the default"
    line = staff.get("/customersearch/count", query_string={"q": "鹳鹂批量"}).get_json()
    assert line["count"] == 51 and line["count_capped"] is False and "51" in line["text"]
    old = app.config["CRM_COUNT_CAP"]
    app.config["CRM_COUNT_CAP"] = 20
    try:
        line = staff.get("/customersearch/count", query_string={"q": "鹳鹂批量"}).get_json()
        assert line["count"] == 20 and line["count_capped"] is True and "20+" in line["text"]
        second = staff.get("/customersearch/count", query_string={"q": "鹳鹂批量", "page": 1}).get_json()
        assert second["count"] == 45 and second["count_capped"] is True, "25 rows per page: cap 20 past row 25"
        last = staff.get("/customersearch/count", query_string={"q": "鹳鹂批量", "page": 1, "page_size": 50}).get_json()
        assert last["count"] == 51 and last["count_capped"] is False, "past the cap the count reaches the end"
    finally:
        app.config["CRM_COUNT_CAP"] = old
    few = staff.get("/customersearch/", query_string={"q": "鹳鹂填充"}).get_data(as_text=True)
    assert "data-count-url" not in few, "a page holding every match counts them itself"
