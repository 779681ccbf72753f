"""The README's screenshots live in app/static/img/ and are served at /static/img/."""
from pathlib import Path

import pytest

IMG = Path(__file__).resolve().parents[2] / "app" / "static" / "img"


@pytest.mark.parametrize("name", ["screenshot-home.png", "screenshot-customers.png"])
def test_readme_screenshot_is_served(client, name):
    data = (IMG / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000
    resp = client.get(f"/static/img/{name}")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.get_data() == data
