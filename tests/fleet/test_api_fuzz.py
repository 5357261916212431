"""Property tests of the source API's write bodies past the first check: with a real customer
and the default credential in place, any JSON value in any field of POST /api/vms,
PUT /api/vms/{id}/status and POST /api/customers is a 201/200 or a 400 naming a field, never
a 5xx. (tests/test_api_fuzz.py fuzzes every operation from the schema, mostly with ids that
do not exist.)"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import CredentialFactory
from tests.fleet.api_helpers import customer, vm

pytestmark = pytest.mark.django_db

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def fleet_credential():
    """The default credential (made once: the examples share the test's transaction)."""
    return CredentialFactory(name="fleet")


def good_or_named(response, ok: int):
    assert response.status_code in (ok, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        errors = response.json()["errors"]
        assert errors and all(e["message"] for e in errors)


VM_FIELDS = ["hostname", "ip_address", "tier", "cpu_cores", "memory_gb", "disk_gb", "ssh_user"]


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(VM_FIELDS), JSON_VALUES, max_size=4),
    n=st.integers(min_value=0, max_value=10**6),
)
def test_any_vm_body_is_created_or_refused_naming_a_field(admin_api, fleet_credential, changes, n):
    owner = customer()
    body = {
        "hostname": f"fuzz-{n}",
        "ip_address": f"10.{n % 250}.{n // 250 % 250}.{n % 7 + 1}",
        "customer_id": owner.pk,
        **changes,
    }
    good_or_named(admin_api.post("/api/vms", body, format="json"), 201)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["status", "reason"]), JSON_VALUES, max_size=2))
def test_any_status_body_is_applied_or_refused_naming_a_field(admin_api, body):
    target = vm(customer(), liveness="up")
    good_or_named(admin_api.put(f"/api/vms/{target.pk}/status", body, format="json"), 200)


CUSTOMER_FIELDS = ["name", "email", "company", "tier", "billing_status", "monthly_fee"]


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(CUSTOMER_FIELDS), JSON_VALUES, max_size=3),
    n=st.integers(min_value=0, max_value=10**9),
)
def test_any_customer_body_is_created_or_refused_naming_a_field(admin_api, changes, n):
    body = {"name": "Fuzz", "email": f"fuzz{n}@example.com", **changes}
    good_or_named(admin_api.post("/api/customers", body, format="json"), 201)
