import pytest


@pytest.mark.django_db
def test_health_reports_database_and_broker(api):
    response = api.get("/api/health")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


@pytest.mark.django_db
def test_health_broker_down_is_503(api, monkeypatch):
    from portal.celery import app

    for key in ("broker_url", "broker_write_url"):
        monkeypatch.setitem(app.conf, key, "redis://127.0.0.1:1/0")  # nothing listens on 1
    response = api.get("/api/health")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False and broker["error"]
