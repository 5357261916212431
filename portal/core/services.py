"""Small write helpers the apps' actions share."""

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import models

_M = TypeVar("_M", bound=models.Model)


def editable_fields(model: type[models.Model]) -> list[str]:
    """The columns forms and the API may set: concrete, editable, not the primary key (not
    ``created_at``/``updated_at``, nor fields a model marks ``editable=False``)."""
    return [
        field.name
        for field in model._meta.concrete_fields
        if field.editable and not field.primary_key
    ]


def model_update(
    instance: _M, data: Mapping[str, Any], fields: Iterable[str], *, also_save: Iterable[str] = ()
) -> tuple[_M, bool]:
    """Set those of ``fields`` that ``data`` gives and that differ from ``instance``, then
    ``full_clean()`` and ``save(update_fields=...)`` with only them (plus ``auto_now``
    fields such as ``updated_at``, and ``also_save``: fields the model's ``clean()`` or
    ``save()`` derives from the changed ones). Returns ``(instance, changed)``; when nothing
    differs nothing is validated or written.

    A key of ``data`` outside ``fields`` is a programming error (``ValueError``), never
    silently dropped. Invalid values raise ``ValidationError`` naming the field, and the
    instance keeps them (as after a failed ``full_clean()``): callers run this inside their
    transaction and discard the instance on error.
    """
    fields = list(fields)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{type(instance).__name__} cannot be updated here: {', '.join(unknown)}")
    opts = instance._meta
    changed = []
    for name in fields:
        if name not in data:
            continue
        field = opts.get_field(name)
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
            raise ValueError(f"{type(instance).__name__}.{name} is not a column")
        value = data[name]
        if field.is_relation:
            # Compare ids: no query for the current related object.
            new_id = value.pk if isinstance(value, models.Model) else value
            if getattr(instance, field.attname) == new_id:
                continue
        elif getattr(instance, field.attname) == value:
            continue
        setattr(instance, name, value)
        changed.append(name)
    if not changed:
        return instance, False
    instance.full_clean()
    automatic = [f.name for f in opts.concrete_fields if getattr(f, "auto_now", False)]
    update_fields = list(dict.fromkeys([*changed, *also_save, *automatic]))
    instance.save(update_fields=update_fields)
    return instance, True
