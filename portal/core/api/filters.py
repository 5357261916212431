from typing import Any

import django_filters
from django import forms

MAX_ID = 2**63 - 1  # the largest id the database stores (a larger one is a 400, not a 500)


class IdFilter(django_filters.NumberFilter):
    """Filter by a foreign key's id without checking that the id exists.

    A ModelChoiceFilter answers 400 "Select a valid choice" for an unknown id and 200 for an
    id the caller cannot see, which tells a caller which ids exist; this one answers an empty
    page for both. Not a whole number in 1..2**63-1: 400.
    """

    field_class = forms.IntegerField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class CustomerIdFilter(IdFilter):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("field_name", "customer_id")
        super().__init__(**kwargs)


class NodeIdFilter(IdFilter):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("field_name", "node_id")
        super().__init__(**kwargs)
