"""The floor of ``fleet_figures_ms`` (bench/fleet.py), a bench-only view (bench/urls.py), and
which web process serves a connection.

Not in bench/floor.py: bench/wsgi.py imports that before Django is set up, and a DRF view
class reads the API settings (and imports the authentication classes) when it is defined.
"""

import os

from django.http import HttpRequest, JsonResponse
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class AuthenticatedFloorView(APIView):
    """``GET /bench/floor/authenticated``: the least an authenticated API read does in the
    same gunicorn (token authentication, DRF's view and JSON rendering, no query of its
    own)."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"user": request.user.pk})


def web_process_view(request: HttpRequest) -> JsonResponse:
    """``GET /bench/process``: which web process serves this connection (its pid), so the
    launch rounds can spread their keep-alive connections evenly (bench/launches.py)."""
    return JsonResponse({"pid": os.getpid()})
