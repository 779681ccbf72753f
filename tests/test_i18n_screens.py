"""Every screen the admin can reach from the menu, in Chinese and in English.

The walk starts from the navbar itself (so a new menu entry is covered without touching this
file), then opens the first record's page, its edit form and the add form linked from each list.
A page fails on a server error; in English on Chinese words in the chrome (titles, labels,
buttons, filters, headings — everything but the cells and choices that show records, and the
user's own name); in Chinese on Flask-AppBuilder's English defaults ("Record Count", "Add
Filter", "Show Work Calendar" …).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from conftest import as_system, csrf_token

CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements whose text is a record's data (a company's customer names, dictionary entries typed
# by its admins, free text), not our chrome: table cells, choices, text areas, and whatever our
# templates mark with class="crm-data" (a timeline's notes, the keywords found in feedback): the
# latter is free text, so it is not even checked for names that have an English form.
DATA = {"td", "option", "textarea", "select", "script", "style"}
DATA_CLASS = "crm-data"
ATTRS = ("title", "placeholder", "aria-label", "data-original-title")
# Flask-AppBuilder's English chrome, as it shows when our catalog misses a string.
FAB_ENGLISH = {
    "Add Filter", "Record Count", "List", "Search", "Edit Record", "Show Record", "Add Record", "Actions",
    "Refresh", "Back", "Save", "Delete", "Edit", "Show", "Add", "No records found", "Page size", "Filter",
    "Sign In", "Username", "Password", "Language", "Logout", "Profile", "User info", "Reset Password",
    "Users", "Roles", "Role", "Security", "List Users", "List Roles", "Login Count", "Failed Login Count",
    "Active", "First Name", "Last Name", "Email", "Changed On", "Created On", "Last Login", "Groups",
    "Yes", "No", "Members", "Open Tickets", "Exclusive", "Detail", "Other", "Select All", "Chart",
    "Group by", "User Statistics", "Permission", "View/Menu", "Name", "Description", "Key",
}
# FAB's made-up titles: "List " / "Show " / "Add " / "Edit " + the model's class name.
FAB_TITLE = re.compile(r"^(List|Show|Add|Edit) [A-Z][a-z]+( [A-Z][a-z]+)*$")


class Chrome(HTMLParser):
    """The text a user reads on a page, minus the elements that show records' data; and links."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.data_depth = 0
        self.texts: list[str] = []
        self.labels: list[str] = []  # column headers and search filter names
        self.every: list[str] = []  # all the text, records' data included
        self.links: list[tuple[str, bool]] = []  # (href, inside a navbar dropdown)
        self.free: list[int] = []  # stack positions of class="crm-data" elements: free text, not names
        self.title = ""
        self._in_title = False

    def _attrs(self, attrs: dict) -> None:
        if not self.data_depth:
            self.texts += [attrs[k].strip() for k in ATTRS if (attrs.get(k) or "").strip()]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append((a["href"], any("dropdown-menu" in c for t, c in self.stack if t == "ul")))
        if tag in VOID:
            if tag == "input" and a.get("type") in ("submit", "button"):
                a = {**a, "title": a.get("value") or a.get("title")}
            self._attrs(a)
            return
        classes = (a.get("class") or "").split()
        data = tag in DATA or DATA_CLASS in classes
        if tag == "a" and "filter" in classes:
            tag = "a.filter"  # FAB's search menu: one entry per searchable column
        if DATA_CLASS in classes:
            self.free.append(len(self.stack))
        self.stack.append((tag, a.get("class") or "") if tag == "ul" else (tag, data))
        self.data_depth += data
        self._attrs(a)
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if tag == "a" and self.stack and self.stack[-1][0] == "a.filter":
            tag = "a.filter"
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                self.data_depth -= sum(1 for t, d in self.stack[i:] if d is True)
                del self.stack[i:]
                self.free = [f for f in self.free if f < i]
                break
        self._in_title = False

    def handle_data(self, data):
        text = " ".join(data.split())
        if self._in_title:
            self.title += text
        elif text and not self.data_depth:
            self.texts.append(text)
            if any(t == "th" or t == "a.filter" for t, _ in self.stack):
                self.labels.append(text)
        if text and not self.free and not any(t in ("script", "style") for t, _ in self.stack):
            self.every += [part.strip() for part in re.split(r"[、,]", text)]


def read(html: str) -> Chrome:
    chrome = Chrome()
    chrome.feed(html)
    return chrome


def menu_urls(client) -> list[str]:
    """The navbar's entries as the logged-in user sees them (language and logout links aside)."""
    home = read(client.get("/", follow_redirects=True).get_data(as_text=True))
    urls = [href.split("?")[0] for href, in_menu in home.links
            if in_menu and href.startswith("/") and not href.startswith(("/lang/", "/logout"))]
    return list(dict.fromkeys(urls))


def screens(client) -> list[str]:
    """The menu pages plus, from each list, the first record's page, its edit form and the add form."""
    pages = menu_urls(client)
    assert len(pages) > 30, f"the admin's menu looks empty: {pages}"
    more = []
    for url in pages:
        resp = client.get(url)
        if resp.status_code != 200:
            continue
        links = [h.split("?")[0] for h, _ in read(resp.get_data(as_text=True)).links if h.startswith("/")]
        for part in ("/show/", "/edit/", "/add"):
            first = next((h for h in links if part in h and h.startswith(url.rsplit("/", 2)[0] + "/")), None)
            if first and first not in pages + more:
                more.append(first)
    return pages + more + ["/no-such-page/", "/users/userinfo/", "/resetmypassword/form"]


def user_names(app, parts: bool = False) -> set[str]:
    """Display names of every user (or their first and last names): a person's name is data in
    any language (the navbar's user menu, the users list)."""
    from app.extensions import appbuilder, db

    with app.app_context():
        users = db.session.query(appbuilder.sm.user_model).all()
        names = {n for u in users for n in (u.first_name, u.last_name)} if parts else {repr(u) for u in users}
    return names - {"", None}


# Pages that edit our bilingual names show the Chinese name next to the English one on purpose.
# A role's own show and edit pages keep its stored name; a feedback rule's name is its own (no
# English name), which for type rules reads like the dictionary's 投诉, 建议 ...
BOTH_NAMES = ("/departmentmodelview/", "/dictionarytypemodelview/", "/dictionaryitemmodelview/",
              "/tagdimensionmodelview/", "/tagmodelview/", "/teammodelview/", "/roles/show/", "/roles/edit/",
              "/feedbackrulemodelview/")


def bilingual_names(app) -> set[str]:
    """Chinese names of the things that also have an English one (departments, dictionaries and
    their items, tags, teams, seeded roles): English screens show those in English, cells included."""
    from app.extensions import db
    from app.models import Department, DictionaryItem, DictionaryType, RolePolicy, Tag, TagDimension, Team

    with app.app_context():
        names = {n for model in (Department, DictionaryItem, DictionaryType, Tag, TagDimension, Team)
                 for (n,) in db.session.query(model.name).filter(model.name_en.isnot(None), model.name_en != "")}
        names |= {p.role.name for p in db.session.query(RolePolicy) if p.name_en}
    return {n for n in names if CJK.search(n)}


def english_leftovers(chrome: Chrome, allowed: set[str], named: frozenset[str] = frozenset()) -> list[str]:
    found = [t for t in chrome.texts if CJK.search(t) and not any(name in t for name in allowed)]
    found += [f"[data] {t}" for t in chrome.every if t in named]
    if CJK.search(chrome.title):
        found.append(f"<title>{chrome.title}")
    return found


# Column headers and filter names that read the same in Chinese.
LATIN_LABELS = {"SLA", "API", "ID", "IP", "URL", "E-mail"}


def chinese_leftovers(chrome: Chrome) -> list[str]:
    found = [t for t in chrome.texts if t.rstrip(":：") in FAB_ENGLISH or FAB_TITLE.match(t)]
    # a column or filter FAB names after the model's attribute ("Policy", "Open Tickets")
    found += [f"[label] {t}" for t in chrome.labels if not CJK.search(t) and re.search(r"[A-Za-z]{2}", t)
              and t not in LATIN_LABELS]
    if not CJK.search(chrome.title):
        found.append(f"<title>{chrome.title}")
    return found


@pytest.fixture(scope="module")
def demo(app):
    """Demo data, plus what the demo lacks so that every list has a record page to walk whatever
    ran before: a service record, and a feedback whose text holds the rules' keywords."""
    import uuid

    from app.extensions import db
    from app.models import Customer, DictionaryItem, ServiceRecord
    from app.services import feedback
    from app.services.demo import load_demo

    with as_system(app):
        loaded = load_demo(6)
        customer = db.session.query(Customer).order_by(Customer.id.desc()).first()
        kind = db.session.query(DictionaryItem).filter_by(type_key="service_kind").first()
        db.session.add(ServiceRecord(service_no=f"S{uuid.uuid4().hex[:8]}", customer_id=customer.id, kind=kind,
                                     content="上门检修", progress="done"))
        db.session.commit()
        feedback.submit({"contact_name": "王先生", "phone": "13900001111",
                         "content": "我要投诉：电话一直打不通。另有建议，也想咨询价格。"}, "web")
        return loaded


def test_every_menu_screen_in_both_languages(app, admin_client, demo):  # noqa: ARG001
    client = admin_client
    urls = screens(client)
    allowed = user_names(app) | {lang["name"] for lang in app.config["LANGUAGES"].values()}
    named = frozenset(bilingual_names(app) - user_names(app, parts=True))
    assert "销售部" in named and "销售部普通员工" in named
    problems: dict[str, list[str]] = {}
    try:
        for lang in ("zh", "en"):
            assert client.get(f"/lang/{lang}").status_code == 302
            for url in urls:
                resp = client.get(url)
                if resp.status_code >= 500 or resp.status_code in (301, 302) and "/login" in resp.location:
                    problems[f"{lang} {url}"] = [f"HTTP {resp.status_code}"]
                    continue
                chrome = read(resp.get_data(as_text=True))
                if lang == "en":
                    bad = english_leftovers(chrome, allowed, frozenset() if url.startswith(BOTH_NAMES) else named)
                else:
                    bad = chinese_leftovers(chrome)
                if bad:
                    problems[f"{lang} {url}"] = sorted(set(bad))
    finally:
        client.get("/lang/zh")
    assert not problems, "\n".join(f"{page}: {bad}" for page, bad in problems.items())


def test_saving_and_form_errors_speak_the_users_language(app, admin_client):
    """Flash after a save and a form's validation error, in English and in Chinese."""
    client = admin_client
    try:
        for lang, added, required in (("en", "Added Row", "This field is required."), ("zh", "记录已添加", "该字段是必填字段。")):
            client.get(f"/lang/{lang}")
            form = client.get("/departmentmodelview/add").get_data(as_text=True)
            resp = client.post("/departmentmodelview/add", data={"csrf_token": csrf_token(form), "key": "",
                                                                  "name": "", "active": "y"})
            html = resp.get_data(as_text=True)
            assert required in html, read(html).texts
            key = f"i18n_{lang}"
            resp = client.post("/departmentmodelview/add", data={"csrf_token": csrf_token(form), "key": key,
                                                                  "name": f"国际化{lang}", "name_en": f"I18n {lang}",
                                                                  "active": "y"}, follow_redirects=True)
            chrome = read(resp.get_data(as_text=True))
            assert added in " ".join(chrome.texts), chrome.texts
            bad = english_leftovers(chrome, user_names(app) | {"简体中文"}) if lang == "en" else chinese_leftovers(chrome)
            assert not bad, bad
    finally:
        client.get("/lang/zh")


def test_error_pages_in_english(app, admin_client, make_user):
    """An expired form (CSRF) and a refused page read in the user's language."""
    from conftest import USER_PASSWORD, login

    names = user_names(app) | {"简体中文"}
    admin_client.get("/lang/en")
    try:
        resp = admin_client.post("/departmentmodelview/add", data={"key": "x", "name": "x"})
        chrome = read(resp.get_data(as_text=True))
        assert resp.status_code == 400 and "Page expired" in " ".join(chrome.texts), chrome.texts
        assert not english_leftovers(chrome, names), chrome.texts
    finally:
        admin_client.get("/lang/zh")
    client = app.test_client()  # a second browser (admin_client is the `client` fixture)
    client.environ_base["REMOTE_ADDR"] = "10.253.0.7"
    login(client, make_user("sales_staff", "sales"), USER_PASSWORD)
    client.get("/lang/en")
    resp = client.get("/users/list/", follow_redirects=True)
    chrome = read(resp.get_data(as_text=True))
    assert "You do not have permission to do this." in chrome.texts, chrome.texts
    assert not english_leftovers(chrome, user_names(app) | {"简体中文"}), chrome.texts


def test_fab_public_role_is_named_in_the_users_language(admin_client):
    """FAB's role of visitors who are not signed in has no row of ours: its name is translated."""
    assert "公共（未登录的访客）" in admin_client.get("/roles/list/").get_data(as_text=True)
    try:
        admin_client.get("/lang/en")
        html = admin_client.get("/roles/list/").get_data(as_text=True)
        assert "公共" not in html and ">Public<" in html.replace("\n", "").replace(" ", "")
    finally:
        admin_client.get("/lang/zh")
