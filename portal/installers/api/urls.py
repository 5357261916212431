"""The catalogue's and the installations' API paths under /api/: with or without the
trailing slash (``/api/installers/{id}/schema`` as the issue names it, and the router's
usual form)."""

from rest_framework.routers import SimpleRouter

from portal.installers.api.installations import InstallationViewSet
from portal.installers.api.views import InstallerViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # DRF puts this string into every route's regex
router.register("installers", InstallerViewSet, basename="installer")
router.register("installations", InstallationViewSet, basename="installation")

urlpatterns = router.urls
