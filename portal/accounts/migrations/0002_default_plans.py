from django.db import migrations

from portal.accounts.choices import DEFAULT_PLANS


def create_default_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for tier, values in DEFAULT_PLANS.items():
        Plan.objects.get_or_create(tier=tier.value, defaults={"name": tier.label, **values})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_default_plans, migrations.RunPython.noop)]
