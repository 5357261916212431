"""The fleet's usage per hour: what the 30-day usage figures read instead of the rollups."""

from django.db import models


class FleetUsageHour(models.Model):
    """Every fleet VM's 5-minute rollups of one hour, summed up: per metric (cpu, memory,
    disk) the sum of the rollups' averages and a histogram of them in 1-point bins
    (``[count of 0 ≤ v < 1, 1 ≤ v < 2, …, 100]``), so any range of hours adds up to an
    average and a p95 without reading the rollups again (10k VMs x 30 days are 86 million
    rollups, 720 of these rows). Written by portal.fleet.actions.usage."""

    id = models.BigAutoField(primary_key=True)
    hour = models.DateTimeField(unique=True, help_text="Start of the hour (UTC).")
    vms = models.PositiveIntegerField(help_text="VMs with a rollup in the hour.")
    buckets = models.PositiveIntegerField(help_text="Rollups summed up (0: none that hour).")
    cpu_sum = models.FloatField(default=0)
    memory_sum = models.FloatField(default=0)
    disk_sum = models.FloatField(default=0)
    cpu_bins = models.JSONField(default=list)
    memory_bins = models.JSONField(default=list)
    disk_bins = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["hour"]
        verbose_name = "fleet usage hour"

    def __str__(self) -> str:
        return f"fleet usage {self.hour:%Y-%m-%d %H:00}"
