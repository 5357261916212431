"""``GET /api/metrics/fleet``: the fleet figures (portal/fleet/figures.py) as JSON."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.errors import PortalError
from portal.fleet.figures import fleet_figures


class FleetFiguresView(APIView):
    """VMs by status, tier and version; revenue, cost and margin (per customer too); usage
    now and over 30 days; overdue customers with running VMs. Operators and admins: the
    whole fleet; customers: their own VMs and bill only (no cost or margin)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "series",
                str,
                enum=["hourly"],
                description="hourly: also the 30 days' hourly averages (last_30_days.hourly).",
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
        operation_id="fleet_figures",
    )
    def get(self, request):
        series = request.query_params.get("series")
        if series not in (None, "", "hourly"):
            raise PortalError("Empty, or hourly.", field="series")
        return Response(fleet_figures(request.user, hourly=series == "hourly"))
