"""/api/clusters/…: the nodes' and old scripts' calls at fixed paths (no trailing slash, as
the old system had them), then the router's (with or without the trailing slash)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from portal.clusters.api import registration, views

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("clusters/runs", views.RunViewSet, basename="cluster-run")
router.register("clusters/nodes", views.ClusterNodeViewSet, basename="cluster-node")
router.register("clusters", views.ClusterViewSet, basename="cluster")

urlpatterns = [
    path("clusters/register", registration.RegisterView.as_view(), name="cluster-register"),
    path(
        "clusters/post-install", registration.PostInstallView.as_view(), name="cluster-post-install"
    ),
    path(
        "clusters/registered-nodes.json",
        registration.RegisteredNodesView.as_view(),
        name="cluster-registered-nodes",
    ),
    path("clusters/legacy", registration.LegacyTriggerView.as_view(), name="cluster-legacy"),
    path(
        "clusters/legacy/register",
        registration.LegacyRegisterView.as_view(),
        name="cluster-legacy-register",
    ),
    *router.urls,
]
