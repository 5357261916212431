"""The floor of ``fleet_figures_ms`` (bench/fleet.py), a bench-only view (bench/urls.py).

Not in bench/floor.py: bench/wsgi.py imports that before Django is set up, and a DRF view
class reads the API settings (and imports the authentication classes) when it is defined.
"""

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
