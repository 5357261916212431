"""The catalogue under /api/installers/: read by any signed-in user; the checks change nothing.

The views declare; the catalogue, inputs and input_schema modules decide.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.response import Response

from portal.installers import catalogue
from portal.installers.api import serializers
from portal.installers.input_schema import input_schema as schema_of
from portal.installers.inputs import InputsInvalid, check_inputs, visibility
from portal.installers.manifest import Manifest

INSTALLER_ID = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="The installer's id (e.g. nginx)."
)
INPUTS_BODY = {
    "application/json": {
        "type": "object",
        "additionalProperties": True,
        "description": 'The inputs by name, e.g. {"server_name": "example.org"}.',
    }
}


@extend_schema_view(
    retrieve=extend_schema(parameters=[INSTALLER_ID]),
    input_schema=extend_schema(parameters=[INSTALLER_ID]),
    validate=extend_schema(parameters=[INSTALLER_ID]),
    visibility=extend_schema(parameters=[INSTALLER_ID]),
)
class InstallerViewSet(viewsets.ViewSet):
    """The application catalogue: installers from `installers/<id>/manifest.yml`, their inputs
    and the checks an install will make. An id not in the catalogue is 404."""

    lookup_field = "id"
    lookup_value_regex = "[^/]+"  # refused by the catalogue, not by the URL: one 404 for all

    @extend_schema(responses={200: serializers.InstallerSerializer(many=True)})
    def list(self, request):
        """Every installer in the catalogue, by id (not paginated: the catalogue is small)."""
        manifests = catalogue.all_manifests()
        return Response(serializers.InstallerSerializer(manifests, many=True).data)

    @extend_schema(responses={200: serializers.InstallerDetailSerializer})
    def retrieve(self, request, id: str):
        """One installer with its inputs and their rules."""
        return Response(serializers.InstallerDetailSerializer(catalogue.get(id)).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="schema")
    def input_schema(self, request, id: str):
        """The installer's inputs as a JSON Schema (draft 2020-12); `x-visible-if` holds each
        conditional input's expression (a hidden input is absent)."""
        return Response(schema_of(catalogue.get(id)))

    @extend_schema(request=INPUTS_BODY, responses={200: serializers.CheckedInputsSerializer})
    @action(detail=True, methods=["post"])
    def validate(self, request, id: str):
        """Check inputs as an install would, without installing: 200 with the cleaned
        non-secret values, or 400 naming each input and the rule it breaks."""
        manifest = catalogue.get(id)
        try:
            cleaned = check_inputs(manifest, _submitted(manifest, request.data))
        except InputsInvalid as exc:
            raise as_validation_error(exc) from None
        body = {
            "installer": manifest.id,
            "version": manifest.version,
            "sha256": manifest.sha256,
            "values": cleaned.values,
            "sensitive": [name for name in cleaned.secrets if name not in cleaned.generated],
            "generated": list(cleaned.generated),
            "visible": list(cleaned.visible),
            "hidden": list(cleaned.hidden),
        }
        return Response(serializers.CheckedInputsSerializer(body).data)

    @extend_schema(request=INPUTS_BODY, responses={200: serializers.VisibilitySerializer})
    @action(detail=True, methods=["post"])
    def visibility(self, request, id: str):
        """Which inputs a form shows for the values entered so far (the same evaluator as
        validate; bad values count as not given, so this never fails)."""
        manifest = catalogue.get(id)
        shown = visibility(manifest, _submitted(manifest, request.data))
        return Response(
            {
                "visible": [name for name, yes in shown.items() if yes],
                "hidden": [name for name, yes in shown.items() if not yes],
            }
        )


def as_validation_error(exc: InputsInvalid) -> ValidationError:
    """One error per input in the API's error body: field = the input, code = the rule."""
    return ValidationError(
        {
            name or "non_field_errors": [ErrorDetail(f"{error.rule}: {error.reason}", error.rule)]
            for name, error in exc.errors.items()
        }
    )


def _submitted(manifest: Manifest, data: Any) -> Any:
    """A form-encoded body as a plain dict: a multiselect's values as a list."""
    if not hasattr(data, "getlist"):
        return data
    kinds = {spec.name: spec.type for spec in manifest.inputs}
    return {
        key: data.getlist(key) if kinds.get(key) == "multiselect" else data.get(key)
        for key in data
        if key != "csrfmiddlewaretoken"
    }
