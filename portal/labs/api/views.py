from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.core.tenancy import CustomerScopedQuerysetMixin, IsAdmin, is_admin
from portal.labs import actions, selectors
from portal.labs.api import serializers
from portal.labs.api.filtersets import LabFilter, LabSessionFilter
from portal.labs.models import LabSession


class LabViewSet(viewsets.ModelViewSet):
    """Labs: admins only. Assigning a lab creates sessions and launches their provisioning."""

    queryset = selectors.labs_with_live_counts()
    serializer_class = serializers.LabSerializer
    permission_classes = [IsAdmin]
    filterset_class = LabFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def get_serializer_class(self):
        if self.action == "assign":
            return serializers.AssignSerializer
        return serializers.LabSerializer

    def perform_create(self, serializer):
        serializer.instance = actions.do_create_lab(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = actions.do_update_lab(
            serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.do_delete_lab(instance)

    @extend_schema(
        request=serializers.AssignSerializer,
        responses={
            201: serializers.AssignResponseSerializer,
            409: serializers.AssignResponseSerializer,
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def assign(self, request, pk=None):
        """Give each user a session; 201 unless every user failed (then 409)."""
        lab = self.get_object()
        form = serializers.AssignSerializer(
            data=request.data, context={"lab": lab, "request": request}
        )
        form.is_valid(raise_exception=True)
        data = form.validated_data
        outcomes = actions.do_assign_many(
            lab, data["users"], start=data["start"], expiry=data["expiry"], by=request.user
        )
        body, status_code = serializers.AssignResponseSerializer.answer(outcomes)
        return Response(body, status=status_code)


class LabSessionViewSet(CustomerScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Admins see every session; a user sees only their own (others' are 404)."""

    queryset = LabSession.objects.select_related("lab", "user", "assigned_by")
    serializer_class = serializers.LabSessionSerializer
    filterset_class = LabSessionFilter
    search_fields = ["namespace", "lab__name", "user__username"]
    ordering_fields = ["created_at", "access_expiry", "status"]

    def get_permissions(self):
        if self.action in ("retry", "end"):
            return [IsAdmin()]
        return super().get_permissions()  # extend: admins any way, a user once (below)

    def get_serializer_class(self):
        if self.action == "extend":
            return serializers.ExtendSerializer
        if is_admin(self.request.user):
            return serializers.LabSessionAdminSerializer
        return serializers.LabSessionSerializer

    def _answer(self, session):
        return Response(serializers.LabSessionAdminSerializer(session).data)

    @extend_schema(request=None, responses={200: serializers.LabSessionAdminSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def retry(self, request, pk=None):
        """Provision a failed session again (409 unless it is failed)."""
        return self._answer(actions.do_retry(self.get_object(), by=request.user))

    @extend_schema(
        request=serializers.ExtendSerializer, responses={200: serializers.LabSessionAdminSerializer}
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def extend(self, request, pk=None):
        """Move the expiry of a live session (409 if it is not live).

        Admins extend by `minutes`, to `until`, or by the lab's default duration. A user
        extends their own active session once, by the lab's `user_extend_minutes`, with an
        empty body (409 if the lab allows none or it was already extended)."""
        session = self.get_object()
        if not is_admin(request.user):
            serializers.refuse_admin_extend_options(request.data, session)
            session = actions.do_user_extend(session, request.user)
            return Response(serializers.LabSessionSerializer(session).data)
        options = serializers.ExtendSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        minutes = options.validated_data.get("minutes")
        return self._answer(
            actions.do_extend(
                session,
                until=options.validated_data.get("until"),
                duration=timedelta(minutes=minutes) if minutes else None,
                by=request.user,
            )
        )

    @extend_schema(request=None, responses={200: serializers.LabSessionAdminSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def end(self, request, pk=None):
        """Expire now: cancel provisioning, clean up on the server (409 if already ending)."""
        return self._answer(actions.do_end(self.get_object(), by=request.user))
