"""Four of jobs_job's fifteen indexes go: each duplicated another one, and every INSERT and
status move wrote them all. ``status`` and its LIKE index (``(status, created_at)`` serves
every lookup by status), ``target_type_id`` (``(target_type_id, target_id)`` leads with it),
and the LIKE index beside ``action`` (no query matches a pattern on it; its plain index stays,
under its old name, now declared in Meta).

Only the indexes are dropped: Django's own operations for ``target_type``'s ``db_index``
would also drop and re-add its foreign key, which checks every row of the history again.
"""

import django.db.models.deletion
from django.db import migrations, models

DROPPED = [
    "jobs_job_status_383f1641",
    "jobs_job_status_383f1641_like",  # PostgreSQL only, as every *_like index
    "jobs_job_target_type_id_7adaa561",
    "jobs_job_action_cd934825_like",
]


def drop_indexes(apps, schema_editor):
    for name in DROPPED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_indexes(apps, schema_editor):
    table = schema_editor.quote_name("jobs_job")
    columns = {
        "jobs_job_status_383f1641": '("status")',
        "jobs_job_target_type_id_7adaa561": '("target_type_id")',
    }
    if schema_editor.connection.vendor == "postgresql":
        columns["jobs_job_status_383f1641_like"] = '("status" varchar_pattern_ops)'
        columns["jobs_job_action_cd934825_like"] = '("action" varchar_pattern_ops)'
    for name, column in columns.items():
        schema_editor.execute(f"CREATE INDEX {schema_editor.quote_name(name)} ON {table} {column}")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0004_history_flat"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="action",
                    field=models.CharField(max_length=100),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("dispatched", "Dispatched"),
                            ("running", "Running"),
                            ("successful", "Successful"),
                            ("failed", "Failed"),
                            ("error", "Error"),
                            ("canceled", "Canceled"),
                            ("timeout", "Timed out"),
                            ("lost", "Lost"),
                            ("refused", "Refused"),
                        ],
                        default="pending",
                        max_length=20,
                    ),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="target_type",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="contenttypes.contenttype",
                    ),
                ),
                migrations.AddIndex(
                    model_name="job",
                    index=models.Index(fields=["action"], name="jobs_job_action_cd934825"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
