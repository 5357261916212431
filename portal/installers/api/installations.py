"""/api/installations/: installers of the catalogue on nodes, and every change to them.

The views declare; portal.installers.actions decides (checks, rows and the job in one
transaction) and portal.installers.selectors says who sees what.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.errors import PortalError
from portal.installers import actions, selectors
from portal.installers.actions import Launched
from portal.installers.api import installation_serializers as serializers
from portal.installers.api.filtersets import InstallationFilter
from portal.installers.api.views import as_validation_error
from portal.installers.inputs import InputsInvalid
from portal.installers.models import Installation
from portal.nodes.models import Node

READ_ACTIONS = ("list", "retrieve")


class MayActOnInstallations(permissions.IsAuthenticated):
    """Everyone signed in reads what they may see; operators and admins install and act.
    Acting on an installation one cannot see is a 404 (the lookup runs first)."""

    message = "Only operators and admins may install or change installations."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        return getattr(view, "action", None) != "create" or selectors.may_act(request.user)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return request.method in permissions.SAFE_METHODS or selectors.may_act(request.user)


RUN_AGAIN = extend_schema(
    request=serializers.RunAgainSerializer, responses={202: serializers.LaunchedSerializer}
)


@extend_schema_view(
    reinstall=RUN_AGAIN,
    upgrade=RUN_AGAIN,
    retry=RUN_AGAIN,
    uninstall=extend_schema(request=None, responses={202: serializers.LaunchedSerializer}),
)
class InstallationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Installations: one installer of the catalogue on one node, with its status, its
    history and its jobs. Operators and admins see all and act on any node; a customer sees
    the installations of their customers, read-only (nodes have no owner yet, so customers
    cannot install). Every change runs as a job."""

    serializer_class = serializers.InstallationSerializer
    permission_classes = [MayActOnInstallations]
    filterset_class = InstallationFilter
    search_fields = ["installer_id", "node__name", "reason"]
    ordering_fields = ["created_at", "updated_at", "status", "installer_id"]

    def get_queryset(self) -> QuerySet[Installation]:
        rows = selectors.installations_for(self.request.user)
        return selectors.with_history(rows) if self.action not in ("list", "create") else rows

    def get_serializer_class(self) -> type[Any]:
        if self.action == "retrieve":
            return serializers.InstallationDetailSerializer
        return serializers.InstallationSerializer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Installations you may see, newest first; filter by node, installer or status."""
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: serializers.InstallationDetailSerializer})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One installation with its history (every status change, who asked, which job)
        and its jobs, newest first."""
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        request=serializers.InstallSerializer, responses={202: serializers.LaunchedSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Install an installer on one or several nodes in one job (operators and admins).
        A bad input is a 400 naming the input and the rule, an installer not in the catalogue
        a 404, both before anything is written. Generated passwords are in this response
        only: they are never stored in clear and cannot be read again."""
        form = serializers.InstallSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        nodes = _nodes(data["nodes"])
        with _inputs_as_400():
            launched = actions.do_install(
                nodes,
                data["installer"],
                data["inputs"],
                by=request.user,
                keep_on_failure=data["keep_on_failure"],
            )
        return _accepted(launched)

    @action(detail=True, methods=["post"], filter_backends=[])
    def reinstall(self, request: Request, pk: str | None = None) -> Response:
        """Run the installed version's install script again with the stored inputs (and
        those given here). 409 unless installed, or when the catalogue's entry changed."""
        return self._again(request, actions.do_reinstall)

    @action(detail=True, methods=["post"], filter_backends=[])
    def upgrade(self, request: Request, pk: str | None = None) -> Response:
        """Install the catalogue's current version over the installed one. 409 unless
        installed, or when it already runs the catalogue's version."""
        return self._again(request, actions.do_upgrade)

    @action(detail=True, methods=["post"], filter_backends=[])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """An operator's retry of a failed install (failed or needs an operator), with the
        catalogue's current entry. 409 from any other status."""
        return self._again(request, actions.do_retry)

    @action(detail=True, methods=["post"], filter_backends=[])
    def uninstall(self, request: Request, pk: str | None = None) -> Response:
        """Run the installer's uninstall script. 409 when it has none, or unless installed,
        failed or waiting for an operator."""
        return _accepted(actions.do_uninstall(self.get_object(), by=request.user))

    def _again(self, request: Request, do: Any) -> Response:
        installation = self.get_object()
        form = serializers.RunAgainSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with _inputs_as_400():
            launched = do(installation, form.validated_data["inputs"], by=request.user)
        return _accepted(launched)


def _nodes(ids: list[int]) -> list[Node]:
    """The nodes by id, in the order given; an unknown id is a 400 naming it. Only
    operators get here, and they see every node."""
    found = Node.objects.in_bulk(ids)
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        raise PortalError(f"No node {', '.join(missing[:10])}.", field="nodes")
    return [found[pk] for pk in ids]


@contextmanager
def _inputs_as_400() -> Iterator[None]:
    """InputsInvalid as the API's 400: one error per input, its code the rule."""
    try:
        yield
    except InputsInvalid as exc:
        raise as_validation_error(exc) from None


def _accepted(launched: Launched) -> Response:
    body = {
        "job": launched.job.pk,
        "installations": launched.installations,
        "generated": launched.generated,
    }
    response = Response(serializers.LaunchedSerializer(body).data, status=status.HTTP_202_ACCEPTED)
    response["Cache-Control"] = "no-store"  # generated passwords: shown once, kept nowhere
    return response
