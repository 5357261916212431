"""The source fleet API's VM and customer paths (no trailing slash), with the portal's auth,
tenancy and error shape. The views declare; portal.fleet.actions decides and
portal.fleet.selectors reads.

Who may do what: members of a customer read its VMs, metrics and the customer; its owners
also put its VMs in and out of maintenance; operators read every VM and customer and set
maintenance on any; admins (staff) also create VMs and customers. Another customer's id is
a 404 on every path.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api.filters import MAX_ID
from portal.core.api.pagination import SourceListPagination
from portal.core.errors import NotFound, PortalError
from portal.core.tenancy import IsAdmin
from portal.fleet import selectors
from portal.fleet.actions import seed, vms
from portal.fleet.api import vm_serializers as s
from portal.fleet.choices import VMStatus

VM_ID = OpenApiParameter("vm_id", int, OpenApiParameter.PATH, description="The VM's id.")
CUSTOMER_ID = OpenApiParameter("customer_id", int, OpenApiParameter.PATH)
STATUS = OpenApiParameter(
    "status", str, enum=VMStatus.values, description="Only the VMs in this status."
)


def _status(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in VMStatus.values:
        raise PortalError(f"One of {', '.join(VMStatus.values)}.", field="status")
    return raw


def _id(raw: str | None, field: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_ID:
        raise PortalError(f"A whole number from 1 to {MAX_ID}.", field=field)
    return int(raw)


def _hours(raw: str | None) -> int:
    limit = settings.MONITORING_METRICS_MAX_HOURS
    if raw is None:
        return 24
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= limit:
        raise PortalError(f"A whole number of hours, 1-{limit}.", field="hours")
    return int(raw)


def _vm_body(request: Request, vm_id: int) -> dict[str, Any]:
    return s.VMSerializer(selectors.vm_for(request.user, vm_id)).data


class _VMPages(generics.GenericAPIView):
    serializer_class = s.VMSerializer
    pagination_class = SourceListPagination
    filter_backends: list[Any] = []  # ?status and ?customer_id are read by the view

    def page_of(self, rows: QuerySet) -> Response:
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.VMSerializer(page, many=True).data)


class VMListView(_VMPages):
    """The VMs you may see (admins and operators: all; others: their customers'), by id,
    as a JSON array (pages in the Link header); ?status=online|offline|maintenance|error
    and ?customer_id= narrow the list. POST creates a VM (admins): its inventory node
    (purpose fleet_host) and fleet profile."""

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        parameters=[STATUS, OpenApiParameter("customer_id", int, description="One customer's.")],
        responses={200: s.VMSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        rows = selectors.vm_rows(
            request.user,
            status=_status(query.get("status")),
            customer_id=_id(query.get("customer_id"), "customer_id"),
        )
        return self.page_of(rows)

    @extend_schema(request=s.VMCreateSerializer, responses={201: s.VMSerializer})
    def post(self, request: Request) -> Response:
        form = s.VMCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        vm = vms.do_create_vm(**form.validated_data, by=request.user)
        return Response(_vm_body(request, vm.pk), status=status.HTTP_201_CREATED)


class VMDetailView(APIView):
    """One VM: its status (derived), the version its heartbeat reported, sizes and last
    action. Another customer's VM is a 404."""

    @extend_schema(parameters=[VM_ID], responses={200: s.VMSerializer})
    def get(self, request: Request, vm_id: str) -> Response:
        return Response(_vm_body(request, int(vm_id)))


class VMStatusView(APIView):
    """Set a VM's status by hand: maintenance (flag it; its alerts are held) or online (end
    maintenance and clear a failed action's error). offline and error come from heartbeats
    and actions: a 400. Owners of the VM's customer, operators and admins."""

    @extend_schema(
        parameters=[VM_ID], request=s.VMStatusChangeSerializer, responses={200: s.VMSerializer}
    )
    def put(self, request: Request, vm_id: str) -> Response:
        vm = selectors.vm_for(request.user, int(vm_id))
        if not selectors.can_operate(request.user, vm):
            raise PermissionDenied(
                "Only an owner of this VM's customer, an operator or an admin may."
            )
        form = s.VMStatusChangeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        vms.do_set_status(vm, data["status"], reason=data.get("reason", ""))
        return Response(_vm_body(request, vm.pk))


class VMMetricsView(APIView):
    """A VM's metric history as the source's plain array, oldest first: its heartbeats'
    samples for up to 24 hours, 5-minute averages beyond (?hours=1-2160, default 24); the
    header X-Resolution says which (raw or 5m)."""

    @extend_schema(
        parameters=[
            VM_ID,
            OpenApiParameter("hours", int, description="How far back, 1-2160 (default 24)."),
        ],
        responses={200: s.VMMetricPointSerializer(many=True)},
    )
    def get(self, request: Request, vm_id: str) -> Response:
        hours = _hours(request.query_params.get("hours"))
        vm = selectors.vm_for(request.user, int(vm_id))
        history = selectors.vm_metrics(vm.pk, hours)
        points = s.VMMetricPointSerializer(history["metrics"], many=True).data
        return Response(points, headers={"X-Resolution": history["resolution"]})


class CustomerListView(generics.GenericAPIView):
    """The customers you may see (admins and operators: all; others: their own), by id,
    as a JSON array (pages in the Link header), with the source API's tier (the plan's; team
    is called pro). POST creates one (admins); its email must be unique."""

    serializer_class = s.FleetCustomerSerializer
    pagination_class = SourceListPagination
    filter_backends: list[Any] = []

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="fleet_customers_list", responses={200: s.FleetCustomerSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.customer_rows(request.user))
        return self.get_paginated_response(s.FleetCustomerSerializer(page, many=True).data)

    @extend_schema(
        operation_id="fleet_customers_create",
        request=s.FleetCustomerCreateSerializer,
        responses={201: s.FleetCustomerSerializer},
    )
    def post(self, request: Request) -> Response:
        form = s.FleetCustomerCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        customer = vms.do_create_customer(**form.validated_data)
        body = s.FleetCustomerSerializer(selectors.customer_for(request.user, customer.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class CustomerDetailView(APIView):
    """One customer, with its VM count. Another customer is a 404."""

    @extend_schema(
        operation_id="fleet_customers_retrieve",
        parameters=[CUSTOMER_ID],
        responses={200: s.FleetCustomerSerializer},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        customer = selectors.customer_for(request.user, int(customer_id), with_vm_count=True)
        return Response(s.FleetCustomerSerializer(customer).data)


class CustomerVMsView(_VMPages):
    """One customer's VMs, by id, as a JSON array (?status= narrows). Another customer is a 404."""

    @extend_schema(parameters=[CUSTOMER_ID, STATUS], responses={200: s.VMSerializer(many=True)})
    def get(self, request: Request, customer_id: str) -> Response:
        customer = selectors.customer_for(request.user, int(customer_id))
        rows = selectors.vm_rows(
            request.user,
            status=_status(request.query_params.get("status")),
            customer_id=customer.pk,
        )
        return self.page_of(rows)


class SeedTestDataView(APIView):
    """Development only (DEBUG on; otherwise a 404): make the fleet's sample data (a few
    customers of each tier, VMs with heartbeats and metric history, tier costs, an update),
    as `manage.py seed_fleet` does. Running it again adds nothing already there. Admins."""

    permission_classes = [IsAdmin]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if not settings.DEBUG:  # before authentication: the path does not exist
            raise NotFound("Not found.")
        super().initial(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request) -> Response:
        return Response(seed.do_seed_fleet())
