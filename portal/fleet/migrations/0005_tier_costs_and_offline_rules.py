"""The three tiers' cost rows (cost 0 until an admin sets it; offline after 24 h), their
"VM offline (<tier>)" rules (portal/fleet/alerts.py), and monitoring's 5-minute "Node down"
rule scoped to every node but the fleet's VMs (a VM raises its tier's alert instead).
A rerun changes nothing; rules an admin changed keep their changes."""

from django.db import migrations

TIERS = {"starter": "Starter", "pro": "Pro", "enterprise": "Enterprise"}
DEFAULT_OFFLINE_HOURS = 24


def forwards(apps, schema_editor):
    TierCost = apps.get_model("fleet", "TierCost")
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for tier, label in TIERS.items():
        cost, _ = TierCost.objects.get_or_create(
            tier=tier, defaults={"offline_alert_hours": DEFAULT_OFFLINE_HOURS}
        )
        AlertRule.objects.get_or_create(
            name=f"VM offline ({label})",
            defaults={
                "metric": "down",
                "comparison": ">=",
                "threshold": 1.0,
                "for_seconds": cost.offline_alert_hours * 3600,
                "severity": "high",
                "alert_type": "vm_offline",
                "scope": f"fleet.tier.{tier}",
            },
        )
    AlertRule.objects.filter(name="Node down", scope="").update(scope="fleet.not_vm")


def backwards(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    AlertRule.objects.filter(name="Node down", scope="fleet.not_vm").update(scope="")


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0004_vm_operation"),
        ("monitoring", "0008_alertrule_scope_api_quota"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
