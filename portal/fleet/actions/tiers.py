"""Tier costs and their alert rules: a tier's offline threshold is its "VM offline" rule's
``for``, so saving a tier cost (the admin) updates that rule in the same transaction."""

from __future__ import annotations

from django.db import transaction

from portal.fleet.alerts import tier_scope
from portal.fleet.choices import FleetTier
from portal.fleet.models import TierCost
from portal.monitoring.choices import DOWN, AlertType, Comparison, Severity
from portal.monitoring.models import AlertRule


def offline_rule_name(tier: str) -> str:
    return f"VM offline ({FleetTier(tier).label})"


def sync_offline_rules() -> list[AlertRule]:
    """Each tier's rule: down for more than its ``offline_alert_hours`` (a tier without a
    cost row: the model's default, 24 h). What admins may change on the rule itself
    (severity, enabled, keep firing) is kept."""
    hours = dict(TierCost.objects.values_list("tier", "offline_alert_hours"))
    default = TierCost._meta.get_field("offline_alert_hours").default
    rules = []
    with transaction.atomic():
        for tier in FleetTier.values:
            rule, _ = AlertRule.objects.get_or_create(
                name=offline_rule_name(tier),
                defaults={"severity": Severity.HIGH, "threshold": 1.0},
            )
            rule.metric, rule.comparison, rule.threshold = DOWN, Comparison.GE, 1.0
            rule.clear_threshold = None
            rule.alert_type, rule.scope = AlertType.VM_OFFLINE, tier_scope(tier)
            rule.for_seconds = int(hours.get(tier, default)) * 3600
            rule.save()
            rules.append(rule)
    return rules


def do_save_tier_cost(tier_cost: TierCost) -> TierCost:
    """Save a tier cost (validated by its form) and bring the offline rules in step."""
    with transaction.atomic():
        tier_cost.save()
        sync_offline_rules()
    return tier_cost
