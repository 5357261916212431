"""The heartbeat's floor: a minimal view doing the same two writes as the heartbeat.

``PUT /bench/floor/heartbeat/{id}`` parses the JSON body and does one UPDATE of the node's
liveness row and one INSERT of a sample, in one transaction, with no authentication, no
validation and no sequence check: what any view storing a heartbeat must at least do in the
same gunicorn, the same middleware and the same database. ``heartbeat_ratio`` is the real
heartbeat's rate over this one's.
"""

import json

from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from portal.monitoring.models import NodeLiveness, Sample


@csrf_exempt
def heartbeat_floor_view(request, node_id: int):
    body = json.loads(request.body)
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {NodeLiveness._meta.db_table} SET last_seen_at = %s, last_seq = %s "  # noqa: S608
            "WHERE node_id = %s",
            [at, body["seq"], node_id],
        )
        if cursor.rowcount != 1:
            return HttpResponse(status=404)
        cursor.execute(
            f"INSERT INTO {Sample._meta.db_table} "  # noqa: S608
            "(node_id, at, cpu_percent, memory_percent, disk_percent, disk_used_gb) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                node_id,
                at,
                body["cpu_percent"],
                body["memory_percent"],
                body["disk_percent"],
                body["disk_used_gb"],
            ],
        )
    return JsonResponse({"seq": body["seq"]})
