import pytest


@pytest.mark.django_db
def test_openapi_schema_and_docs(admin_client):
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/customers/" in text and "/api/nodes/" in text
    assert admin_client.get("/api/docs/").status_code == 200
