"""Every screen is Chinese by default and English on request, through our Flask-Babel catalogs.

The catalogs live in app/translations (`flask --app run crm i18n extract` / `... compile`).
"""
from __future__ import annotations

import contextlib
import gettext
import io
import os
import re
from html.parser import HTMLParser

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from conftest import ROOT, USER_PASSWORD, login

TRANSLATIONS = ROOT / "app" / "translations"
PAGES = ["/", "/customermodelview/list/"]
# Menu labels: msgid -> what Chinese users must see.
MENU = {
    "Customers": "客户管理", "Customer Files": "客户档案", "Contacts": "联系人",
    "Interactions": "互动记录", "Settings": "系统设置", "Departments": "部门",
    "Dictionaries": "数据字典", "Dictionary Items": "字典项", "System Status": "系统状态",
}


class _Text(HTMLParser):
    """The text a user reads: no tags, scripts or styles; one string per text node."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):  # noqa: ARG002
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def visible(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.parts


def page(client, path: str) -> list[str]:
    resp = client.get(path)
    assert resp.status_code == 200, f"{path} -> {resp.status_code}"
    return visible(resp.get_data(as_text=True))


def assert_chinese(client) -> None:
    for path in PAGES:
        texts = page(client, path)
        missing = [zh for zh in MENU.values() if zh not in texts]
        english = [en for en in MENU if en in texts]
        assert not missing, f"{path}: Chinese menu labels missing: {missing}"
        assert not english, f"{path}: English menu labels shown in Chinese: {english}"


def assert_english(client) -> None:
    for path in PAGES:
        texts = page(client, path)
        missing = [en for en in MENU if en not in texts]
        chinese = [zh for zh in MENU.values() if zh in texts]
        assert not missing, f"{path}: English menu labels missing: {missing}"
        assert not chinese, f"{path}: Chinese menu labels shown in English: {chinese}"


def switch(client, lang: str) -> None:
    resp = client.get(f"/lang/{lang}")
    assert resp.status_code == 302, resp.status_code


# --- the catalogs -------------------------------------------------------------------------


def _ids(catalog) -> dict[str, object]:
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}


def test_every_message_in_the_source_is_translated_to_chinese(tmp_path):
    """Extract from app/ and templates/ now, with the project's babel.cfg, and check zh."""
    pot = tmp_path / "messages.pot"
    with contextlib.chdir(ROOT):
        CommandLineInterface().run([
            "pybabel", "-q", "extract", "-F", "app/translations/babel.cfg", "-k", "_l",
            "-k", "lazy_gettext", "-o", str(pot), "app", "templates",
        ])
    with open(pot, "rb") as fh:
        source = _ids(read_po(fh))
    assert len(source) > 100, "extraction found almost nothing: is babel.cfg right?"
    with open(TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        zh = _ids(read_po(fh))
    missing = sorted(set(source) - set(zh))
    untranslated = sorted(i for i in source if i in zh and (not zh[i].string or zh[i].fuzzy))
    assert not missing, f"msgids missing from the zh catalog (run `flask --app run crm i18n extract`): {missing}"
    assert not untranslated, f"msgids without a Chinese translation in the zh catalog: {untranslated}"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_committed_mo_files_match_the_po_files(lang):
    folder = TRANSLATIONS / lang / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as fh:
        catalog = read_po(fh, locale=lang)
    fresh = io.BytesIO()
    write_mo(fresh, catalog)
    fresh.seek(0)
    assert (folder / "messages.mo").exists(), f"{lang}: messages.mo is not there"
    with open(folder / "messages.mo", "rb") as fh:
        committed = gettext.GNUTranslations(fh)._catalog
    assert committed == gettext.GNUTranslations(fresh)._catalog, (
        f"{lang}: messages.mo is stale; run `flask --app run crm i18n compile`")


# --- what users see -----------------------------------------------------------------------


def test_login_page_is_chinese_by_default(client):
    texts = page(client, "/login/")
    assert "用户名:" in texts or "用户名" in " ".join(texts)
    assert not any(re.search(r"\b(Username|Password|Sign In)\b", t) for t in texts), texts


def test_admin_sees_chinese_menus_by_default(admin_client):
    assert_chinese(admin_client)
    texts = page(admin_client, "/customermodelview/list/")
    for label in ("客户编号", "客户名称", "所属行业", "负责人", "最近联系时间"):
        assert label in texts, f"column {label} missing from the customer list"


def test_switching_to_english_and_back(admin_client):
    try:
        switch(admin_client, "en")
        assert_english(admin_client)
        texts = page(admin_client, "/customermodelview/list/")
        assert "Customer No." in texts and "Customer Name" in texts
    finally:
        switch(admin_client, "zh")
    assert_chinese(admin_client)


def test_user_pages_are_chinese(admin_client):
    """FAB's own screens with our labels: the users list and the user's own page."""
    for path in ("/users/list/", "/users/userinfo/"):
        texts = page(admin_client, path)
        assert "部门" in texts, f"{path}: 部门 missing"
        leftovers = [t for t in texts if t in ("Department", "First Name", "Last Name", "Username",
                                                "Email", "Roles", "Language", "Login Count")]
        assert not leftovers, f"{path}: English labels in Chinese: {leftovers}"


def test_language_choice_is_kept_per_user(app, client, make_user):
    username = make_user("sales_staff", "sales")
    resp = login(client, username, USER_PASSWORD)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    assert_chinese_for_staff(client)
    switch(client, "en")
    assert_english_for_staff(client)
    client.get("/logout/")

    # A new browser: nothing in its cookies says "English"; the account does.
    again = _new_client(app)
    assert "用户名" in " ".join(page(again, "/login/")), "the login page should still be Chinese"
    resp = login(again, username, USER_PASSWORD)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    assert_english_for_staff(again)

    # And back: choosing Chinese is remembered the same way.
    switch(again, "zh")
    again.get("/logout/")
    third = _new_client(app)
    login(third, username, USER_PASSWORD)
    assert_chinese_for_staff(third)


def _new_client(app):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.254.{os.getpid() % 250}.{id(c) % 250 + 1}"
    return c


STAFF_MENU = {k: MENU[k] for k in ("Customers", "Customer Files", "Contacts", "Interactions")}


def assert_chinese_for_staff(client) -> None:
    texts = page(client, "/customermodelview/list/")
    assert all(zh in texts for zh in STAFF_MENU.values()), texts
    assert not any(en in texts for en in STAFF_MENU), texts


def assert_english_for_staff(client) -> None:
    texts = page(client, "/customermodelview/list/")
    assert all(en in texts for en in STAFF_MENU), texts
    assert not any(zh in texts for zh in STAFF_MENU.values()), texts
