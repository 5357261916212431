from portal.fleet.models.operations import VMOperation
from portal.fleet.models.updates import Rollout, RolloutTarget, Update
from portal.fleet.models.usage import FleetUsageHour
from portal.fleet.models.vms import VM, TierCost

__all__ = ["VM", "FleetUsageHour", "Rollout", "RolloutTarget", "TierCost", "Update", "VMOperation"]
