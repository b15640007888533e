"""Every error is JSON {"error": ...}; store outages are 503 without connection details."""
from __future__ import annotations


def test_unknown_route_is_json_404(client):
    resp = client.get("/api/v2/nope")
    assert resp.status_code == 404
    assert resp.json() == {"error": "Not Found"}


def test_wrong_method_is_json_405(client, auth):
    resp = client.post("/api/v2/instances", headers=auth)
    assert resp.status_code == 405
    assert set(resp.json()) == {"error"}


def test_store_down_is_503(down_client):
    resp = down_client.get("/api/v2/instances", headers={"Authorization": "Bearer abc"})
    assert resp.status_code == 503
    assert resp.json()["error"].startswith("the store is unavailable")
    assert "s3cret" not in resp.text and "127.0.0.1" not in resp.text
