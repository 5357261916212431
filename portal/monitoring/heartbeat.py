"""The heartbeat: ``PUT /api/nodes/{id}/heartbeat`` from a node's agent. A hot path.
The source fleet API's ``PUT /api/vms/{id}/heartbeat`` is the same endpoint (a fleet VM's id
is its node's id; portal/fleet/api/vm_urls.py and the WSGI fast path route it here).

A good heartbeat is one UPDATE of the node's liveness row (authenticated, sequence-checked
and applied in the same statement) and one INSERT of the sample: on PostgreSQL both in one
statement (``WITH beat AS (UPDATE … RETURNING) INSERT … SELECT … FROM beat``: one round trip,
one commit), elsewhere two in one transaction. Only a refused heartbeat reads anything (to
say why).

Authentication: ``Authorization: Bearer <token>``; the token's SHA-256 (as invitations and
lab tokens are stored) is compared with the row's in the UPDATE's WHERE clause, so the
clear token never reaches the database and a guess costs one indexed lookup. That
comparison is on digests of a 256-bit random token, where timing reveals nothing usable;
the refusal path compares in Python with ``hmac.compare_digest``. Any token that is not
this node's (another node's, a wrong one, a node that does not exist or has no agent) gets
the same 404, so ids cannot be enumerated.

Sequence numbers: a heartbeat whose ``seq`` is not above the last stored one changes
nothing and gets 409 ``stale_seq`` with ``last_seq``; the agent never retries a 4xx (it
sends the next beat at its next tick with ``seq`` above ``last_seq``). ``seq`` is optional
for the source fleet API's clients, which never sent one: without it the same UPDATE takes
``last_seq + 1`` (so concurrent beats still get distinct numbers), and nothing is refused
as stale.

``version`` (optional) is the product version the node runs, as the agent read it
(``NodeLiveness.product_version``, a fleet VM's ``version``); a beat without it leaves the
stored one, an empty string clears it.
"""

import hmac
import json
import math
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from portal.accounts.actions import hash_token
from portal.core.api.errors import error_body
from portal.core.db import execute_prepared, fetch_prepared
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Sample

MAX_BODY_BYTES = 16 * 1024
MAX_TOKEN_CHARS = 256
SEQ_MAX = 2**63 - 1
NUMBER_MAX = 1e15  # gauges and sizes: anything larger is a broken agent
GAUGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
AGENT_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,32}\Z")
PRODUCT_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,64}\Z")
PERCENTS = ("cpu_percent", "memory_percent", "disk_percent")
FIELDS = frozenset(
    {
        *PERCENTS,
        "disk_used_gb",
        "load",
        "uptime_seconds",
        "agent_version",
        "version",
        "seq",
        "interval_seconds",
        "gauges",
    }
)


class Invalid(Exception):
    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors  # [(field, message, code)]


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(errors, body, name, low, high, *, required=True, integer=False):
    if name not in body:
        if required:
            errors.append((name, "This field is required.", "required"))
        return None
    value = body[name]
    kind = "an integer" if integer else "a number"
    if not _is_number(value) or (integer and not isinstance(value, int)):
        errors.append((name, f"Must be {kind}.", "invalid"))
        return None
    if not math.isfinite(value):
        errors.append((name, "Must be a finite number (not NaN or Infinity).", "invalid"))
        return None
    if not low <= value <= high:
        errors.append((name, f"Must be between {low:g} and {high:g}.", "out_of_range"))
        return None
    return value


def _load(errors, body):
    if "load" not in body:
        return None
    value = body["load"]
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(_is_number(v) and math.isfinite(v) and 0 <= v <= NUMBER_MAX for v in value)
    ):
        errors.append(
            (
                "load",
                "Must be the three load averages [1, 5, 15 min], each a finite number >= 0.",
                "invalid",
            )
        )
        return None
    return value


def _gauges(errors, body):
    if "gauges" not in body:
        return None
    value = body["gauges"]
    limit = settings.MONITORING_MAX_GAUGES
    if not isinstance(value, dict):
        errors.append(("gauges", "Must be an object of names to numbers.", "invalid"))
        return None
    if len(value) > limit:
        errors.append(("gauges", f"At most {limit} gauges.", "too_many"))
        return None
    for name, number in value.items():
        if not GAUGE_NAME.match(name):
            errors.append(
                (
                    f"gauges.{name[:64]}",
                    "A gauge name is 1-63 of a-z, 0-9 and '_', starting with a letter.",
                    "invalid",
                )
            )
        elif not _is_number(number) or not math.isfinite(number) or abs(number) > NUMBER_MAX:
            errors.append(
                (f"gauges.{name}", f"Must be a finite number within ±{NUMBER_MAX:g}.", "invalid")
            )
    return value or None


def _product_version(errors, body) -> str | None:
    """The reported product version; None when the beat does not say (keep the stored one)."""
    value = body.get("version")
    if value is None or value == "":
        return value
    if not isinstance(value, str) or not PRODUCT_VERSION.match(value):
        errors.append(("version", "1-64 of letters, digits, '.', '_', '+' or '-'.", "invalid"))
        return None
    return value


def validate(body) -> dict:
    """The heartbeat's values, or Invalid naming every bad field."""
    if not isinstance(body, dict):
        raise Invalid([(None, "The request body must be a JSON object.", "not_an_object")])
    errors = [(name, "Unknown field.", "unknown_field") for name in body if name not in FIELDS]
    values = {name: _number(errors, body, name, 0, 100) for name in PERCENTS}
    values["disk_used_gb"] = _number(errors, body, "disk_used_gb", 0, NUMBER_MAX)
    values["seq"] = _number(errors, body, "seq", 1, SEQ_MAX, required=False, integer=True)
    values["uptime_seconds"] = _number(
        errors, body, "uptime_seconds", 0, SEQ_MAX, required=False, integer=True
    )
    values["interval_seconds"] = _number(
        errors, body, "interval_seconds", 1, 86400, required=False, integer=True
    )
    values["load"] = _load(errors, body)
    values["gauges"] = _gauges(errors, body)
    version = body.get("agent_version", "")
    if not isinstance(version, str) or (version and not AGENT_VERSION.match(version)):
        errors.append(
            ("agent_version", "1-32 of letters, digits, '.', '_', '+' or '-'.", "invalid")
        )
    values["agent_version"] = version if isinstance(version, str) else ""
    values["version"] = _product_version(errors, body)
    if errors:
        raise Invalid(errors)
    return values


# --- storing ------------------------------------------------------------------------------

SAMPLE_COLUMNS = (
    "node_id, at, cpu_percent, memory_percent, disk_percent, disk_used_gb, load1, gauges"
)

# The liveness row's new values that are the sample's (SAMPLE_COLUMNS but the gauges).
RETURNED = "node_id, last_seen_at, cpu_percent, memory_percent, disk_percent, disk_used_gb, load1"


def _update(live: str, *, seq_given: bool) -> str:
    """One UPDATE authenticates (either hash), refuses a stale seq and applies the beat. A
    beat with the pending (rotated) token makes it the only token. Without a seq, the row's
    own next number (``last_seq + 1``, taken under the row's lock) and no stale check."""
    # Without a seq: the next one, kept at the largest a bigint holds once there (an agent
    # sent that seq before): the beat is stored, its seq just does not grow.
    next_seq = f"CASE WHEN last_seq < {SEQ_MAX} THEN last_seq + 1 ELSE last_seq END"
    seq, stale_check = ("%(seq)s", "AND last_seq < %(seq)s ") if seq_given else (next_seq, "")
    return (
        f"UPDATE {live} SET "  # noqa: S608 - the table name is the model's; values are params
        "token_hash = CASE WHEN next_token_hash = %(digest)s "
        "THEN next_token_hash ELSE token_hash END, "
        "next_token_hash = CASE WHEN next_token_hash = %(digest)s "
        "THEN '' ELSE next_token_hash END, "
        "status_changed_at = CASE WHEN status = %(status)s THEN status_changed_at ELSE %(at)s END, "
        f"status = %(status)s, last_seen_at = %(at)s, last_seq = {seq}, "
        "interval_seconds = %(interval)s, late_at = %(late_at)s, next_due_at = %(due_at)s, "
        "agent_version = %(agent_version)s, uptime_seconds = %(uptime_seconds)s, "
        "product_version = COALESCE(%(version)s, product_version), "
        "cpu_percent = %(cpu_percent)s, memory_percent = %(memory_percent)s, "
        "disk_percent = %(disk_percent)s, disk_used_gb = %(disk_used_gb)s, load1 = %(load1)s "
        f"WHERE node_id = %(node)s {stale_check}"
        "AND (token_hash = %(digest)s OR next_token_hash = %(digest)s)"
    )


def _both(update: str, sample: str, *, sync: bool, returning_seq: bool) -> str:
    """PostgreSQL: the UPDATE and the sample's INSERT in one statement, so one round trip
    and one commit (autocommit); the INSERT takes the row the UPDATE wrote (RETURNING its
    new values), so it happens only if that matched, and each value is sent once (named
    parameters: one each). Not ``sync`` (MONITORING_HEARTBEAT_SYNC_COMMIT off): committed
    without waiting for its WAL flush; set_config(..., true) is local to this statement's
    own transaction, read at its commit; the CTE is joined so that it is evaluated.
    ``returning_seq``: the row's new seq comes back (a beat that sent none learns it)."""
    returned = f"{RETURNED}, last_seq" if returning_seq else RETURNED
    with_ = f"WITH beat AS ({update} RETURNING {returned})"
    sources = "beat"
    if not sync:
        with_ += ", no_flush_wait AS (SELECT set_config('synchronous_commit', 'off', true))"
        sources = "beat, no_flush_wait"
    returning = " RETURNING (SELECT last_seq FROM beat)" if returning_seq else ""
    return (
        f"{with_} INSERT INTO {sample} ({SAMPLE_COLUMNS}) "  # noqa: S608
        f"SELECT {RETURNED}, %(gauges)s FROM {sources}{returning}"
    )


def _sql() -> dict[str, str]:
    live = NodeLiveness._meta.db_table
    sample = Sample._meta.db_table
    statements = {
        "update": _update(live, seq_given=True),
        "update_next": _update(live, seq_given=False),
        "insert": f"INSERT INTO {sample} ({SAMPLE_COLUMNS}) "  # noqa: S608
        "VALUES (%(node)s, %(at)s, %(cpu_percent)s, %(memory_percent)s, %(disk_percent)s, "
        "%(disk_used_gb)s, %(load1)s, %(gauges)s)",
        "last_seq": f"SELECT last_seq FROM {live} WHERE node_id = %(node)s",  # noqa: S608
    }
    for sync, name in ((True, "both"), (False, "both_async")):
        statements[name] = _both(statements["update"], sample, sync=sync, returning_seq=False)
        statements[f"{name}_next"] = _both(
            statements["update_next"], sample, sync=sync, returning_seq=True
        )
    return statements


_STATEMENTS: dict[str, str] = {}


def statements() -> dict[str, str]:
    if not _STATEMENTS:  # built once; table names do not change at runtime
        _STATEMENTS.update(_sql())
    return _STATEMENTS


def store(node_id: int, token: str, values: dict, now=None):
    """Apply a validated heartbeat. Returns (True, row info) or (False, refusal)."""
    db = connections[DEFAULT_DB_ALIAS]  # `connection` costs a lookup per attribute
    now = now or timezone.now()
    interval = values["interval_seconds"] or settings.MONITORING_HEARTBEAT_INTERVAL
    late_at = now + timedelta(seconds=interval + settings.MONITORING_LATE_SECONDS)
    due_at = now + timedelta(seconds=interval + settings.MONITORING_GRACE_SECONDS)
    digest = hash_token(token)
    adapt = db.ops.adapt_datetimefield_value
    params = {
        "node": node_id,
        "digest": digest,
        "status": Liveness.UP,
        "at": adapt(now),
        "seq": values["seq"],
        "interval": interval,
        "late_at": adapt(late_at),
        "due_at": adapt(due_at),
        "agent_version": values["agent_version"],
        "version": values["version"],
        "uptime_seconds": values["uptime_seconds"],
        "cpu_percent": values["cpu_percent"],
        "memory_percent": values["memory_percent"],
        "disk_percent": values["disk_percent"],
        "disk_used_gb": values["disk_used_gb"],
        "load1": values["load"][0] if values["load"] else None,
        "gauges": Sample._meta.get_field("gauges").get_db_prep_save(values["gauges"], db),
    }
    seq = _apply(db, params)
    if seq is None:
        with db.cursor() as cursor:
            return False, refusal(cursor, node_id, digest)
    return True, {"seq": seq, "status": Liveness.UP, "next_due_at": due_at.isoformat()}


def _apply(db, params: dict) -> int | None:
    """Run the beat's statements; the stored seq, or None when the UPDATE matched nothing."""
    sql = statements()
    given = params["seq"] is not None
    if db.vendor == "postgresql":
        name = "both" if settings.MONITORING_HEARTBEAT_SYNC_COMMIT else "both_async"
        if given:
            return params["seq"] if execute_prepared(db, sql[name], params) == 1 else None
        row = fetch_prepared(db, sql[f"{name}_next"], params)
        return row[0] if row else None
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute(sql["update" if given else "update_next"], params)
        if cursor.rowcount != 1:
            return None
        cursor.execute(sql["insert"], params)
        if given:
            return params["seq"]
        cursor.execute(sql["last_seq"], params)
        return cursor.fetchone()[0]


def refusal(cursor, node_id: int, digest: str):
    """Why the UPDATE matched nothing: ("not_found", None) or ("stale_seq", last_seq)."""
    cursor.execute(
        f"SELECT token_hash, next_token_hash, last_seq FROM {NodeLiveness._meta.db_table} "  # noqa: S608
        "WHERE node_id = %s",
        [node_id],
    )
    row = cursor.fetchone()
    known = row is not None and any(
        stored and hmac.compare_digest(stored, digest) for stored in row[:2]
    )
    return ("stale_seq", row[2]) if known else ("not_found", None)


# --- the answer ---------------------------------------------------------------------------

# (status, JSON body, extra headers): what the view and the WSGI fast path
# (monitoring/heartbeat_wsgi.py) both send, so the two cannot answer differently.
Answer = tuple[int, dict[str, Any], dict[str, str]]


def _error(status, errors, code=None, headers=None, **extra) -> Answer:
    return status, {**error_body(status, errors, code), **extra}, headers or {}


def bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return token


def answer(
    method: str, authorization: str, content_length: str | None, body: bytes, node_id: str
) -> Answer:
    """The answer to ``PUT /api/nodes/{id}/heartbeat`` from the request's method, headers
    and body, whoever received it (the view below, or the WSGI fast path)."""
    if method != "PUT":
        return _error(405, [(None, "Use PUT.", "method_not_allowed")], headers={"Allow": "PUT"})
    token = bearer_token(authorization)
    if token is None:
        return _error(
            401,
            [
                (
                    None,
                    "Send the node's agent token as 'Authorization: Bearer <token>'.",
                    "not_authenticated",
                )
            ],
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    try:
        length = int(content_length or 0)
    except ValueError:
        length = MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
        return _error(
            413, [(None, f"The body is larger than {MAX_BODY_BYTES} bytes.", "request_too_large")]
        )
    try:
        values = validate(json.loads(body))
    except (ValueError, RecursionError):  # JSONDecodeError, an int literal too long
        return _error(400, [(None, "The body is not valid JSON.", "parse_error")])
    except Invalid as invalid:
        return _error(400, invalid.errors)
    node = int(node_id)
    if node > SEQ_MAX:
        return _not_found(node)
    stored, info = store(node, token, values)
    if stored:
        return 200, info, {}
    reason, last_seq = info
    if reason == "stale_seq":
        return _error(
            409,
            [
                (
                    "seq",
                    f"seq must be above {last_seq}; this heartbeat changed nothing.",
                    "stale_seq",
                )
            ],
            last_seq=last_seq,
        )
    return _not_found(node)


def _not_found(node_id: int) -> Answer:
    return _error(404, [(None, f"No node {node_id} for this token.", "not_found")])


@csrf_exempt
def heartbeat_view(request, node_id: str):
    """``PUT /api/nodes/{id}/heartbeat`` (documented in README, "Monitoring"). In production
    the WSGI fast path (portal/wsgi.py) answers the usual requests before Django's
    middleware; this view answers the rest, and every request in Django's test client."""
    status, body, headers = answer(
        request.method,
        request.headers.get("Authorization", ""),
        request.headers.get("Content-Length"),
        request.body,
        node_id,
    )
    return JsonResponse(body, status=status, headers=headers)
