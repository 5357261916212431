"""Domain errors raised by actions; the API and the CLI turn them into clear 4xx/exit codes."""


class PortalError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class Conflict(PortalError):
    """The request is valid but clashes with the current state (409)."""

    status_code = 409
    code = "conflict"


class NotFound(PortalError):
    status_code = 404
    code = "not_found"
