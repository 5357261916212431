"""POST /api/auth/token/: DRF's token view, described for API users."""

from rest_framework.authtoken.views import ObtainAuthToken


class ObtainTokenView(ObtainAuthToken):
    """Your API token for a username and password (the same token every time). Send it as
    `Authorization: Token <key>`."""
