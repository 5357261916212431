"""One rule for fields a caller may not write: refuse them with a 400 naming the field.

DRF silently ignores a read-only field in a request body, so ``PATCH {"plan": "enterprise"}``
answers 200 and the caller cannot tell that nothing changed (or, worse, a field declared
explicitly on the serializer is *not* covered by ``Meta.read_only_fields`` and is written).
Serializers that take writes use :class:`RefuseUnwritableFieldsMixin`: a field of the
resource that the caller may not write answers

    400 {"code": "read_only", "message": "plan: You may not change this field.", ...}

and nothing is stored. ``id``, ``created_at`` and ``updated_at`` are ignored (they come back
from a GET and are harmless to send back); keys that are no field of the resource are
ignored as DRF always does.
"""

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

if TYPE_CHECKING:  # mixed into serializers
    _SerializerBase = serializers.Serializer
else:
    _SerializerBase = object

IGNORED_FIELDS = frozenset({"id", "created_at", "updated_at"})
REFUSED_MESSAGE = "You may not change this field."
REFUSED_CODE = "read_only"


def refused_fields_of(
    representation: type[serializers.Serializer], *, writable: Iterable[str] = ()
) -> frozenset[str]:
    """The fields of ``representation`` (a serializer class with ``Meta.fields``) that a plain
    input serializer taking only ``writable`` must refuse."""
    fields: Iterable[str] = representation.Meta.fields  # type: ignore[attr-defined]
    return frozenset(fields) - frozenset(writable) - IGNORED_FIELDS


class RefuseUnwritableFieldsMixin(_SerializerBase):
    """Refuse (400, naming each) the resource's fields the caller may not write.

    ModelSerializers refuse their read-only fields; a plain ``Serializer`` that takes only
    some fields of a resource names the others in ``refused_fields`` (see
    :func:`refused_fields_of`).
    """

    refused_fields: frozenset[str] | None = None

    def get_refused_fields(self) -> frozenset[str]:
        if self.refused_fields is not None:
            return self.refused_fields
        return (
            frozenset(name for name, field in self.fields.items() if field.read_only)
            - IGNORED_FIELDS
        )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            refused = self.get_refused_fields()
            sent = sorted(key for key in data if key in refused)
            if sent:
                raise serializers.ValidationError(
                    {name: [ErrorDetail(REFUSED_MESSAGE, code=REFUSED_CODE)] for name in sent}
                )
        return super().to_internal_value(data)
