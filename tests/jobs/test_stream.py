import pytest
from django.utils import timezone

from portal.jobs.models import Job, JobEvent
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_scratch(user_api, admin_api):
    job = Job.objects.create(playbook="echo.yml", queue="default", timeout=10, idle_timeout=10,
                             customer=CustomerFactory(), status="successful")
    JobEvent.objects.create(job=job, counter=1, event="x", created=timezone.now())
    r = user_api(UserFactory()).get(f"/api/jobs/{job.pk}/stream/")
    print(r.status_code, r.headers, r.content)
    r = user_api(UserFactory()).get(f"/api/jobs/{job.pk}/stream/", HTTP_ACCEPT="application/json")
    print(r.status_code, r.headers, r.content)
    r = admin_api.get(f"/api/jobs/{job.pk}/events/?after=%C2%B2")
    print(r.status_code, r.content[:300])
    r = admin_api.get(f"/api/jobs/{job.pk}/events/?after=99999999999999999999999")
    print(r.status_code, r.content[:300])
    r = admin_api.get(f"/api/jobs/{job.pk}/stream/", HTTP_LAST_EVENT_ID="99999999999999999999999")
    print(r.status_code, b"".join(x.encode() if isinstance(x, str) else x for x in r.streaming_content))
