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


def test_dashboard_ranks_by_a_window_and_shows_it(client):
    """The page asks for a window (default the last hour) and says which one it shows."""
    html = client.get("/").text
    assert '<select id="window">' in html and '<option value="1h" selected>' in html
    assert 'id="window-shown"' in html and "% of time" in html
    js = client.get("/static/dashboard.js").text
    assert "window: win.value" in js and "r.time_share_pct" in js
    assert "rows[0].window_from" in js and "rows[0].window_to" in js
