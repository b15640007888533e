"""GET /metrics: request counters by route template and status, and the store-up gauge."""
from __future__ import annotations


def test_counts_requests(client, auth, seeded):
    client.get("/health")
    client.get("/health")
    client.get("/api/v2/queries", params={"instance": seeded}, headers=auth)
    client.get("/api/v2/queries", params={"instance": "nope"}, headers=auth)
    client.get("/api/v2/queries")
    client.get("/no/such/page")
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(resp.text.splitlines())
    assert 'pganalytics_gateway_requests_total{method="GET",route="/health",status="200"} 2' in lines
    for status in (200, 404, 401):
        assert ('pganalytics_gateway_requests_total{method="GET",route="/api/v2/queries",'
                f'status="{status}"}} 1') in lines
    assert ('pganalytics_gateway_requests_total{method="GET",route="<unmatched>",'
            'status="404"} 1') in lines
    assert "pganalytics_gateway_store_up 1" in lines
    assert "# TYPE pganalytics_gateway_requests_total counter" in lines


def test_store_down_gauge(down_client):
    resp = down_client.get("/metrics")
    assert resp.status_code == 200
    assert "pganalytics_gateway_store_up 0" in resp.text.splitlines()
