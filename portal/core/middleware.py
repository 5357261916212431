"""Request guards shared by every API endpoint."""

from django.http import JsonResponse

from portal.core.api.errors import error_body

NUL_MARKERS = (b"\x00", b"\\u0000")  # raw, or escaped in JSON


def _has_nul(request) -> str | None:
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name
    body = request.body if request.method in ("POST", "PUT", "PATCH") else b""
    markers = NUL_MARKERS
    if request.content_type == "application/x-www-form-urlencoded":
        markers = (*markers, b"%00")
    if any(marker in body for marker in markers):
        return None
    return ""


class RejectNulCharactersMiddleware:
    """NUL characters cannot be stored in PostgreSQL text and are never meaningful in this
    API: refuse them up front with a 400 instead of failing deep in a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            field = _has_nul(request)
            if field != "":
                message = "NUL characters (\\u0000) are not allowed."
                body = error_body(400, [(field, message, "null_characters_not_allowed")])
                return JsonResponse(body, status=400)
        return self.get_response(request)
