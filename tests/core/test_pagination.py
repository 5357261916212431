"""?page= errors name the parameter (issue #19: ?page=abc was a 404 "Invalid page.")."""

import pytest

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", " 2", ""])
def test_a_page_that_is_not_a_number_is_a_400_naming_page(admin_api, page):
    response = admin_api.get("/api/customers/", {"page": page})
    if page == "":  # no value: the first page, as without the parameter
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.json()
    body = response.json()
    assert (body["status"], body["errors"][0]["field"]) == (400, "page")
    assert body["errors"][0]["code"] == "invalid_page"
    assert body["message"].startswith("page: Not a page number")


def test_a_page_past_the_last_is_a_404_saying_which_is_the_last(admin_api):
    CustomerFactory.create_batch(3)
    response = admin_api.get("/api/customers/", {"page": 9, "page_size": 2})
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found" and body["errors"][0]["field"] == "page"
    assert body["message"] == "page: There is no page 9: the last page is 2."


def test_pages_and_last_still_work(admin_api):
    CustomerFactory.create_batch(3)
    second = admin_api.get("/api/customers/", {"page": 2, "page_size": 2}).json()
    last = admin_api.get("/api/customers/", {"page": "last", "page_size": 2}).json()
    assert len(second["results"]) == 1 and second == last
