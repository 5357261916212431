"""The heartbeat's floor: a minimal handler doing the same two writes as the heartbeat.

``PUT /bench/floor/heartbeat/{id}`` parses the JSON body and does one UPDATE of the node's
liveness row and one INSERT of a sample, in one transaction, with no authentication, no
validation and no sequence check: what any handler storing a heartbeat must at least do in
the same gunicorn, the same dispatch and the same database. The product's heartbeat is
answered by the WSGI fast path in front of Django (portal/monitoring/heartbeat_wsgi.py), so
the floor is served by that same fast path (bench/wsgi.py: ``floor_answer`` in place of the
heartbeat's ``answer``); the Django view below is the same floor behind Django's
middleware, reached only when the fast path stands aside. ``heartbeat_ratio`` is the real
heartbeat's rate over the floor's.
"""

import json

from django.db import connection, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt


def floor_answer(method, authorization, content_length, body, node_id):
    """(status, JSON body, headers) like ``portal.monitoring.heartbeat.answer``."""
    # Imported here: bench/wsgi.py imports this module before portal.wsgi sets Django up.
    from portal.monitoring.models import NodeLiveness, Sample

    values = json.loads(body)
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {NodeLiveness._meta.db_table} SET last_seen_at = %s, last_seq = %s "  # noqa: S608
            "WHERE node_id = %s",
            [at, values["seq"], node_id],
        )
        if cursor.rowcount != 1:
            return 404, {"status": 404}, {}
        cursor.execute(
            f"INSERT INTO {Sample._meta.db_table} "  # noqa: S608
            "(node_id, at, cpu_percent, memory_percent, disk_percent, disk_used_gb) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                node_id,
                at,
                values["cpu_percent"],
                values["memory_percent"],
                values["disk_percent"],
                values["disk_used_gb"],
            ],
        )
    return 200, {"seq": values["seq"]}, {}


@csrf_exempt
def heartbeat_floor_view(request, node_id: int):
    status, body, headers = floor_answer(request.method, "", None, request.body, node_id)
    return JsonResponse(body, status=status, headers=headers)
