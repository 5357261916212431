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
router.register("plans", PlanViewSet)
router.register("customers", CustomerViewSet)
router.register("memberships", MembershipViewSet)
router.register("invitations", InvitationViewSet)
router.register("nodes", NodeViewSet)
router.register("node-groups", NodeGroupViewSet)
router.register("credentials", CredentialViewSet)
router.register("jobs", JobViewSet)
router.register("labs", LabViewSet)
router.register("lab-sessions", LabSessionViewSet)
router.register("workspaces", WorkspaceViewSet)
