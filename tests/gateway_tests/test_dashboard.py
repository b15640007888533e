"""GET / serves the static dashboard page and its assets, under a strict CSP."""
from __future__ import annotations


def test_index_is_html(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<title>pganalytics</title>" in resp.text
    assert "default-src 'self'" in resp.headers["content-security-policy"]


def test_assets(client):
    js = client.get("/static/dashboard.js")
    assert js.status_code == 200 and "sessionStorage" in js.text
    assert "innerHTML" not in js.text  # data is inserted as text only
    assert client.get("/static/dashboard.css").status_code == 200
