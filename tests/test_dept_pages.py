"""A supervisor's list read page by page: the department's customers (filed in it, or owned by one
of its members while filed elsewhere or nowhere) appear each exactly once, newest first, on
whichever page, whatever mix of the two kinds comes before it (the list reads the two kinds
apart and merges them: app/services/paging.py merged_page)."""
from __future__ import annotations

import re
import uuid

import pytest
from conftest import USER_PASSWORD, login
from test_dept_scope import _customer, _set_department

PSIZE = 3


def _new_department(app, users: list[str]) -> str:
    from app.extensions import appbuilder, db
    from app.models import Department

    key = "pg" + uuid.uuid4().hex[:8]
    with app.app_context():
        dept = Department(key=key, name=f"分页{key}", name_en=f"Paging {key}")
        db.session.add(dept)
        for username in users:
            appbuilder.sm.find_user(username=username).department = dept
        db.session.commit()
    return key


def _page(client, tag: str, page: int, size: int = PSIZE, name_filter: str | None = None) -> tuple[list[str], str]:
    html = client.get(f"/customermodelview/list/?_flt_2_name={name_filter or tag}&psize_CustomerModelView={size}"
                      f"&page_CustomerModelView={page}").get_data(as_text=True)
    return re.findall(rf"范围{tag}(\w+?)<", html), html


@pytest.fixture()
def department(app, make_user):
    """A department of its own: a supervisor and a member; an outsider elsewhere. Its customers,
    created in an order that interleaves the kinds: filed in the department (owned by anyone),
    owned by the member or the supervisor but filed in another department or in none. Returns the
    tag in the names, the expected names newest first, and the department key."""
    boss, member = make_user("sales_supervisor"), make_user("sales_staff")
    outsider = make_user("sales_staff", "service")
    key = _new_department(app, [boss, member])
    tag = uuid.uuid4().hex[:6]
    plan = [("a1", outsider, key), ("b1", member, "service"), ("a2", member, key), ("b2", member, None),
            ("x1", outsider, "service"), ("a3", None, key), ("b3", boss, "service"), ("b4", member, "service"),
            ("a4", outsider, key), ("x2", outsider, None), ("a5", member, key), ("b5", member, "sales"),
            ("a6", outsider, key), ("a7", outsider, key), ("b6", boss, None), ("a8", None, key)]
    expected = []
    for label, owner, dept in plan:
        _customer(app, f"范围{tag}{label}", owner, dept)
        if not label.startswith("x"):
            expected.insert(0, label)
    return {"boss": boss, "tag": tag, "expected": expected, "key": key}


def test_every_page_of_a_supervisors_list_in_order(app, client, department):
    tag, expected = department["tag"], department["expected"]
    login(client, department["boss"], USER_PASSWORD)
    whole, html = _page(client, tag, 0, size=100)
    assert whole == expected  # newest first, outsiders' customers filed elsewhere left out
    pages = [_page(client, tag, n)[0] for n in range(-(-len(expected) // PSIZE) + 1)]
    assert [name for p in pages for name in p] == expected
    assert all(len(p) == PSIZE for p in pages[:len(expected) // PSIZE]) and pages[-1] == []
    first, html = _page(client, tag, 0)
    assert first == expected[:PSIZE] and re.search(rf"\b{len(expected)}\b", html)  # the count line


def test_pages_follow_moves_and_filters(app, client, department):
    """A member's customer filed elsewhere, then filed into the department, then into none, keeps
    its place; name filters page over each kind the same way."""
    from app.extensions import db
    from app.models import Customer

    tag, expected = department["tag"], department["expected"]
    login(client, department["boss"], USER_PASSWORD)
    with app.app_context():
        b4 = db.session.query(Customer).filter_by(name=f"范围{tag}b4").one().id
    _set_department(app, b4, department["key"])  # now filed in the department: the same place
    assert [n for p in range(6) for n in _page(client, tag, p)[0]] == expected
    _set_department(app, b4, None)
    assert [n for p in range(6) for n in _page(client, tag, p)[0]] == expected
    # a name filter keeping the members' customers filed elsewhere, and one keeping a mix, paged by 2
    for part in ("b", "a"):
        got = [n for p in range(5) for n in _page(client, tag, p, size=2, name_filter=f"{tag}{part}")[0]]
        assert got == [n for n in expected if n.startswith(part)]


def test_supervisors_search_by_initials_and_name_pieces(app, client, department):
    """The one box (pinyin initials of 范围 + the letters of the tag, a name piece) finds the
    department's customers of both kinds, newest first, page by page, and no outsider's."""
    tag, expected = department["tag"], department["expected"]
    login(client, department["boss"], USER_PASSWORD)
    for q in (f"fw{tag}", f"围{tag}"):
        pages = []
        for page in range(4):
            resp = client.get("/api/v1/customer/search", query_string={"q": q, "page": page, "page_size": 5})
            assert resp.status_code == 200, resp.get_data(as_text=True)
            pages += [row["name"].replace(f"范围{tag}", "") for row in resp.get_json()["result"]]
        assert pages == expected, q
