"""The floor of ``launch_ratio`` (bench/launches.py), a bench-only view (bench/urls.py).

``POST /bench/floor/launch``: the least a launch must do in the same gunicorn, behind the
same token authentication and DRF view: one INSERT of a Job row (autocommit) and one publish
of the same Celery task to the queue the body names. No validation, no node rows, no
signature, no ``dispatched`` mark: what the portal's launch adds to this is what the ratio
prices. In a module of its own (not bench/floor.py): a DRF view class reads the API settings
when it is defined, and bench/wsgi.py imports bench/floor.py before Django is set up.
"""

from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class LaunchFloorView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request):
        from portal.jobs.models import Job
        from portal.jobs.tasks import run_job

        job = Job.objects.create(
            playbook=request.data["playbook"],
            queue=request.data["queue"],
            timeout=60,
            idle_timeout=60,
            action="jobs.adhoc",
        )
        run_job.apply_async(args=[job.pk, ""], queue=job.queue)
        return Response({"id": job.pk}, status=status.HTTP_201_CREATED)
