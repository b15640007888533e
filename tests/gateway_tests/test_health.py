"""GET /health: 200 with store facts when reachable, 503 with one safe sentence when not."""
from __future__ import annotations


def test_health_ok(client, store_conn):
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    revision = store_conn.execute("SELECT version_num FROM public.alembic_version").fetchone()[0]
    assert body == {"status": "ok", "store": {
        "reachable": True, "schema_revision": revision,
        "server_version": store_conn.info.server_version}}
    assert isinstance(body["store"]["server_version"], int)


def test_health_needs_no_token(client):
    assert client.get("/health", headers={"Authorization": "Bearer nope"}).status_code == 200


def test_health_unavailable(down_client, down_dsn):
    resp = down_client.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert body["error"].startswith("the store is unreachable")
    assert "s3cret" not in resp.text and "nobody" not in resp.text
    assert down_dsn.split()[1] not in resp.text  # the port
