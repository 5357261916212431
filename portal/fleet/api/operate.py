"""``POST /api/vms/{vm_id}/restart`` and ``/rebuild`` (202 with the job), and
``GET /api/vms/{vm_id}/operations``: the VM's restarts and rebuilds, step by step.

Who: admins on any VM; a customer's owners (and operators) on the VMs they see; members see
them (the operations list) but may not act (403); a VM the user does not see is 404."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.errors import NotFound
from portal.core.tenancy import is_operator
from portal.fleet.actions import operate
from portal.fleet.choices import VMActionKind
from portal.fleet.models import VM, VMOperation


class OperationSerializer(serializers.ModelSerializer):
    vm_id = serializers.IntegerField(read_only=True)
    job_id = serializers.IntegerField(read_only=True, allow_null=True)
    agent_job_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = VMOperation
        fields = [
            "id",
            "vm_id",
            "kind",
            "status",
            "reason",
            "job_id",
            "agent_job_id",
            "booted_at",
            "created_at",
            "status_changed_at",
            "status_expires",
            "finished_at",
        ]
        read_only_fields = fields


class VMActionAcceptedSerializer(serializers.Serializer):
    message = serializers.CharField()
    vm_id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=VMActionKind.choices)
    job = serializers.IntegerField(help_text="The job doing it (GET /api/jobs/{id}/).")
    job_url = serializers.CharField()
    operation = OperationSerializer()


def visible_vm(user, vm_id: int) -> VM:
    vm = VM.objects.visible_to(user).select_related("node", "customer").filter(pk=vm_id).first()
    if vm is None:
        raise NotFound(f"No VM {vm_id}.", field="vm_id")
    return vm


def check_may_operate(user, vm: VM) -> None:
    if is_operator(user) or VM.objects.changeable_by(user).filter(pk=vm.pk).exists():
        return
    raise PermissionDenied(
        "Only an owner of this VM's customer, an operator or an admin may do this."
    )


class _VMActionView(APIView):
    permission_classes = [IsAuthenticated]
    kind: str = ""

    def launch(self, vm: VM, user):
        raise NotImplementedError

    def post(self, request, vm_id: int):
        vm = visible_vm(request.user, vm_id)
        check_may_operate(request.user, vm)
        job = self.launch(vm, request.user)
        operation = VMOperation.objects.get(job=job)
        body = {
            "message": f"{self.kind.capitalize()} of VM {vm_id} started",
            "vm_id": vm.pk,
            "action": self.kind,
            "job": job.pk,
            "job_url": reverse("api:job-detail", args=[job.pk]),
            "operation": OperationSerializer(operation).data,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class RestartView(_VMActionView):
    """Restart the VM: reboot, then wait for its heartbeat from the new boot (202; 409 `busy`
    while another action runs on it)."""

    kind = VMActionKind.RESTART

    @extend_schema(
        request=None, responses={202: VMActionAcceptedSerializer}, operation_id="vm_restart"
    )
    def post(self, request, vm_id: int):
        return super().post(request, vm_id)

    def launch(self, vm, user):
        return operate.restart_vm(vm, by=user)


class RebuildView(_VMActionView):
    """Rebuild the VM: re-image through its power driver, agent installed again, heartbeat
    awaited; same VM id, customer and address (202; 409 `busy`, 409 `no_power_driver`)."""

    kind = VMActionKind.REBUILD

    @extend_schema(
        request=None, responses={202: VMActionAcceptedSerializer}, operation_id="vm_rebuild"
    )
    def post(self, request, vm_id: int):
        return super().post(request, vm_id)

    def launch(self, vm, user):
        return operate.rebuild_vm(vm, by=user)


class OperationListView(APIView):
    """The VM's restarts and rebuilds, latest first (at most 50), with their current step."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: OperationSerializer(many=True)}, operation_id="vm_operations_list"
    )
    def get(self, request, vm_id: int):
        vm = visible_vm(request.user, vm_id)
        rows = VMOperation.objects.filter(vm=vm).order_by("-created_at", "-id")[:50]
        return Response(OperationSerializer(rows, many=True).data)


__all__ = ["OperationListView", "RebuildView", "RestartView"]
