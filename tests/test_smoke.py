"""The product starts, serves a Chinese login page and lets the admin in."""


def test_login_page_is_chinese(client):
    html = client.get("/login/").get_data(as_text=True)
    assert "用户名" in html and "登录" in html


def test_admin_sees_home_with_counts(admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    assert 'data-stat="customers"' in html
