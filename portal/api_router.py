"""Every app registers its API viewsets here: one router, one URL space under /api/."""

from rest_framework.routers import DefaultRouter

from portal.accounts.api.views import (
    CustomerViewSet,
    InvitationViewSet,
    MembershipViewSet,
    PlanViewSet,
)
from portal.jobs.api.views import JobViewSet
from portal.labs.api.views import LabSessionViewSet, LabViewSet
from portal.nodes.api.views import CredentialViewSet, NodeGroupViewSet, NodeViewSet
from portal.workspaces.api.views import WorkspaceViewSet

router = DefaultRouter(trailing_slash=True)
# The busiest first: Django tries a request's path against each route in this order (each
# viewset has several, twice with the format suffixes), and a launch came 40 routes in.
router.register("jobs", JobViewSet)
router.register("nodes", NodeViewSet)
router.register("workspaces", WorkspaceViewSet)
router.register("lab-sessions", LabSessionViewSet)
router.register("labs", LabViewSet)
router.register("plans", PlanViewSet)
router.register("customers", CustomerViewSet)
router.register("memberships", MembershipViewSet)
router.register("invitations", InvitationViewSet)
router.register("node-groups", NodeGroupViewSet)
router.register("credentials", CredentialViewSet)
