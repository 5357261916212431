"""What the OpenAPI schema takes its descriptions from.

drf-spectacular describes an operation with its view's docstring and falls back on the
docstrings of the view's base classes until it reaches a library class. The portal's own
shared bases (querysets narrowed per customer, refused fields, strict strings) document
code, not the API, so they stop that fallback too: a viewset or serializer is described by
its own docstring, written for API users, or not at all.
"""

from drf_spectacular.plumbing import get_lib_doc_excludes


def doc_excludes() -> list:
    from portal.core.api.fields import StrictStringsMixin
    from portal.core.api.writable import RefuseUnwritableFieldsMixin
    from portal.core.tenancy import CustomerScopedQuerysetMixin

    return [
        *get_lib_doc_excludes(),
        CustomerScopedQuerysetMixin,
        RefuseUnwritableFieldsMixin,
        StrictStringsMixin,
    ]
