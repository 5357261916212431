"""The monitoring figures (#14): a separate group, ``python -m bench --only monitoring``.

- ``heartbeat_ingest_rate``: heartbeats/s stored through ``PUT /api/nodes/{id}/heartbeat``
  on the bench's gunicorn (production config, PostgreSQL), one request per heartbeat, many
  agents in parallel: ``PROCESSES`` client processes x ``CONNECTIONS`` keep-alive connections,
  each connection the agent of its own slice of ``AGENTS`` nodes (pre-created with bulk
  SQL, each with its own token). A round is bounded by a count and a time; rate = beats
  answered 200 (and counted as stored samples) / round wall time; median over rounds.
- ``heartbeat_ratio``: that rate over the floor's (bench/floor.py: one UPDATE and one INSERT,
  no auth, no validation, written as the heartbeat writes them), in the same gunicorn and
  the same WSGI fast path (bench/wsgi.py), rounds alternating product/floor; the median of
  the pairs' ratios.
- ``alert_eval_100k``: ms of one ``evaluate_alerts`` pass (default rules) over 100k nodes
  made with bulk SQL, steady state: the passes after the first; median.
- ``down_detection_lag_p95``: ms from a node's ``next_due_at`` to the moment its ``down``
  state and its open alert are both stored, with the real ``celery beat`` (the settings'
  schedule) and the bench's worker; nodes fall due spread over a few seconds, the bench polls
  the database every ``POLL`` s. The default "Node down" rule holds 300 s before it fires
  (policy, not lag): for this figure the bench sets its ``for_seconds`` to 0, as an admin can.
"""

import concurrent.futures
import json
import multiprocessing
import os
import secrets
import selectors
import socket
import time
from pathlib import Path

from bench import procs, stats
from bench.stack import web_settings

PROCESSES = 2
CONNECTIONS = 16
AGENTS = 2000
EVAL_NODES = 100_000
LAG_NODES = 40
POLL = 0.05

# --- bulk rows ----------------------------------------------------------------------------


def _template_values(instance, skip: set[str]) -> tuple[list[str], list]:
    """Column names and database values of an unsaved instance (every concrete column but
    ``skip``), so bulk SQL rows carry exactly what the ORM would write."""
    from django.db import connection

    columns, values = [], []
    for field in instance._meta.concrete_fields:
        if field.primary_key or field.column in skip:
            continue
        columns.append(field.column)
        values.append(field.get_db_prep_save(field.pre_save(instance, True), connection))
    return columns, values


def bulk_nodes(prefix: str, count: int, liveness: dict[str, str]) -> tuple[int, int]:
    """``count`` SSH nodes without a credential (the probe ignores them) named
    ``{prefix}{n}``, each with a liveness row: the model's defaults with ``liveness``'s
    columns replaced by SQL expressions over ``g`` (1..count) and ``n`` (the node id).
    Two INSERT ... SELECT statements. Returns the (first, last) node id."""
    from django.db import connection, transaction

    from portal.monitoring.models import NodeLiveness
    from portal.nodes.choices import Connection, NodePurpose
    from portal.nodes.models import Node

    node = Node(name="x", address="192.0.2.1", connection=Connection.SSH,
                purpose=NodePurpose.WORKSPACE_HOST)  # fmt: skip
    columns, values = _template_values(node, {"id", "name"})
    table = Node._meta.db_table
    marks = ", ".join(["%s"] * len(values))
    live_columns, live_values = _template_values(NodeLiveness(node_id=0), {"node_id", *liveness})
    live_marks = ", ".join(["%s"] * len(live_values) + list(liveness.values()))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, {', '.join(columns)}) "  # noqa: S608
            f"SELECT %s || g, {marks} FROM generate_series(1, %s) g RETURNING id",
            [prefix, *values, count],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            f"INSERT INTO {NodeLiveness._meta.db_table} "  # noqa: S608
            f"(node_id, {', '.join(live_columns + list(liveness))}) "
            f"SELECT n, {live_marks} FROM (SELECT id AS n, "
            f"row_number() OVER (ORDER BY id) AS g FROM {table} WHERE id BETWEEN %s AND %s) s",
            [*live_values, ids[0], ids[-1]],
        )
        cursor.execute(f"ANALYZE {table}; ANALYZE {NodeLiveness._meta.db_table}")
    return ids[0], ids[-1]


# --- heartbeat_ingest_rate, heartbeat_ratio -----------------------------------------------


def heartbeat_body(seq: int, index: int) -> bytes:
    """A typical agent's heartbeat (the built-in values, no extra gauge)."""
    return json.dumps(
        {
            "seq": seq,
            "cpu_percent": float(index % 100),
            "memory_percent": 40.0,
            "disk_percent": 50.0,
            "disk_used_gb": 12.5,
            "load": [0.5, 0.4, 0.3],
            "uptime_seconds": 3600 + seq,
            "agent_version": "1.0.0",
            "interval_seconds": 60,
        }
    ).encode()


def slices(ids: list[int], parts: int) -> list[list[int]]:
    """``ids`` dealt into ``parts`` disjoint slices (one agent connection each)."""
    return [ids[i::parts] for i in range(parts)]


class Agent:
    """One agent connection: keep-alive HTTP/1.1 over a plain non-blocking socket, one
    ``PUT`` per heartbeat for its slice of nodes in turn, each answer parsed (status line,
    ``Content-Length``, JSON body with the beat's ``seq``). Hand-written rather than
    ``http.client`` so the client's CPU on the shared cores stays a small part of a round."""

    def __init__(self, port, secret, path, nodes, seqs):
        self.port, self.secret, self.path, self.nodes, self.seqs = port, secret, path, nodes, seqs
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.next, self.buffer, self.sent, self.seq = 0, b"", 0.0, 0

    def send(self) -> None:
        node = self.nodes[self.next % len(self.nodes)]
        self.next += 1
        self.seq = self.seqs[node] = self.seqs.get(node, 1) + 1
        body = heartbeat_body(self.seq, node)
        head = (
            f"PUT {self.path.format(node)} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.secret}{node}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sent = time.monotonic()
        self.sock.sendall(head.encode() + body)  # small: fits the socket's buffer

    def receive(self) -> tuple[int, bytes] | None:
        """(status, body) once the whole answer is in, else None. Raises on EOF."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        fields = dict(line.split(":", 1) for line in head[1:])
        length = int({k.lower(): v for k, v in fields.items()}["content-length"])
        if len(self.buffer) < end + 4 + length:
            return None
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        return int(head[0].split(" ", 2)[1]), body


def _client_process(port, secret, path, node_slices, seqs, quota, seconds):
    """One client process: an agent connection per slice, all driven by one selector loop;
    returns (done, errors, latencies, seqs)."""
    stop_at = time.monotonic() + seconds
    done, errors, latencies = 0, [], []
    selector = selectors.DefaultSelector()
    agents = [Agent(port, secret, path, nodes, seqs) for nodes in node_slices]
    for agent in agents:
        selector.register(agent.sock, selectors.EVENT_READ, agent)
        agent.send()
    busy = len(agents)
    while busy:
        for key, _ in selector.select(timeout=30) or [(None, None)]:
            if key is None:
                raise TimeoutError("no answer from the web server in 30 s")
            agent = key.data
            try:
                answer = agent.receive()
            except OSError as exc:
                errors.append(repr(exc)[:200])
                selector.unregister(agent.sock)
                busy -= 1
                continue
            if answer is None:
                continue
            status, body = answer
            if status == 200 and json.loads(body)["seq"] == agent.seq:
                done += 1
                latencies.append((time.monotonic() - agent.sent) * 1000)
            else:
                errors.append(f"{status}: {body[:200]!r}")
            if done < quota and time.monotonic() < stop_at and len(errors) < 20:
                agent.send()
            else:
                selector.unregister(agent.sock)
                busy -= 1
    for agent in agents:
        agent.sock.close()
    return done, errors, latencies, seqs


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """User + system CPU seconds of these processes so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL server's own processes (WAL writer, checkpointer, ...) and its
    backends serving ``database``. Other databases' backends (other people's tests on a
    shared machine) count in "other", with the rest of the machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        words = procs.cmdline(int(entry.name)).split()
        if not words or words[0] != "postgres:":
            continue
        # A backend: "postgres: 15/main: <user> <database> <host>(<port>) <state>".
        backend = len(words) >= 5 and ("(" in words[4] or words[4] == "[local]")
        if not backend or words[3] == database:
            pids.append(int(entry.name))
    return pids


def cpu_split(before: dict, after: dict, elapsed: float) -> dict:
    """Cores used on average during a round, by part: web, clients, postgres, the rest."""
    used = {key: (after[key] - before[key]) / elapsed for key in after}
    used["other"] = used["machine"] - used["web"] - used["clients"] - used["postgres"]
    return {key: round(value, 2) for key, value in used.items()}


def _samples() -> int:
    from django.db import connection

    from portal.monitoring.models import Sample

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Sample._meta.db_table}")  # noqa: S608
        return cursor.fetchone()[0]


class Agents:
    """The client processes, kept between rounds (their per-node seq too)."""

    def __init__(self, port: int, secret: str, ids: list[int], web):
        from django.db import connection

        self.port, self.secret, self.web = port, secret, web
        self.database = connection.settings_dict["NAME"]
        self.cpu: dict[str, list] = {}
        self.parts = slices(ids, PROCESSES)
        self.seqs = [{} for _ in self.parts]
        self.pool = concurrent.futures.ProcessPoolExecutor(
            PROCESSES, mp_context=multiprocessing.get_context("spawn")
        )

    def _cpu(self) -> dict:
        return {
            "web": cpu_seconds([self.web.pid, *procs.descendants(self.web.pid)]),
            "clients": cpu_seconds(list(self.pool._processes or ())),
            "postgres": cpu_seconds(postgres_pids(self.database)),
            "machine": procs.machine_busy(),
        }

    def round(self, path: str, count: int, seconds: float) -> tuple[float, int, list]:
        before = _samples()
        cpu = self._cpu()
        started = time.monotonic()
        futures = [
            self.pool.submit(
                _client_process,
                self.port,
                self.secret,
                path,
                slices(part, CONNECTIONS),
                self.seqs[index],
                count // PROCESSES,
                seconds,
            )
            for index, part in enumerate(self.parts)
        ]
        results = [future.result(timeout=seconds + 60) for future in futures]
        elapsed = time.monotonic() - started
        self.cpu.setdefault(path, []).append(cpu_split(cpu, self._cpu(), elapsed))
        done = sum(r[0] for r in results)
        errors = [e for r in results for e in r[1]]
        for index, result in enumerate(results):
            self.seqs[index] = result[3]
        if errors:
            raise RuntimeError(f"{len(errors)} heartbeats failed on {path}: {errors[:3]}")
        stored = _samples() - before
        if stored != done:
            raise RuntimeError(f"{done} heartbeats answered 200 but {stored} samples stored")
        return done / elapsed, done, [v for r in results for v in r[2]]

    def close(self):
        self.pool.shutdown(cancel_futures=True)


PRODUCT = "/api/nodes/{}/heartbeat"
FLOOR = "/bench/floor/heartbeat/{}"


def measure_heartbeats(ctx, rounds: int = 3, count: int = 8000, max_seconds: float = 5.0):
    from django.conf import settings

    secret = secrets.token_urlsafe(24)
    first, last = bulk_nodes(
        "bench-hb-",
        AGENTS,
        {
            "token_hash": f"encode(sha256(convert_to('{secret}' || n, 'UTF8')), 'hex')",
            "status": "'up'",
            "last_seq": "1",
        },
    )
    from django.db import connection

    connection.close()
    agents = Agents(ctx.port, secret, list(range(first, last + 1)), ctx.services["web"])
    try:
        agents.round(PRODUCT, 400, 10)  # warm-up: connections, imports in each web process
        agents.round(FLOOR, 400, 10)
        product, floor, ratios, latencies, floor_latencies = [], [], [], [], []
        for _ in range(rounds):
            if not ctx.another(len(ratios), 2, 2 * max_seconds + 10, "heartbeat rounds"):
                break
            rate, _, lat = agents.round(PRODUCT, count, max_seconds)
            floor_rate, _, floor_lat = agents.round(FLOOR, count, max_seconds)
            product.append(rate)
            floor.append(floor_rate)
            ratios.append(rate / floor_rate)
            latencies += lat
            floor_latencies += floor_lat
    finally:
        agents.close()
    return {
        "figures": {
            "heartbeat_ingest_rate": (round(stats.median(product), 1), "/s"),
            "heartbeat_ratio": (round(stats.median(ratios), 3), "x"),
        },
        "details": {
            "heartbeat_ingest_rate": {
                "method": f"{PROCESSES} client processes x {CONNECTIONS} keep-alive agents "
                "(raw sockets, one selector loop per process, every answer parsed) over "
                f"{AGENTS} nodes (bulk SQL, a token each), one PUT per heartbeat, rounds of "
                f"<= {count} beats / {max_seconds} s, median over rounds; every 200 checked "
                "against the samples stored. gunicorn serves portal.wsgi's application "
                "(the heartbeat's WSGI fast path in front of Django) wrapped by bench/wsgi.py "
                "for the floor",
                "sync_commit": settings.MONITORING_HEARTBEAT_SYNC_COMMIT,
                "round_rates": [round(r, 1) for r in product],
                "request_ms": stats.summary(latencies),
                "web": web_settings(),
                "cores_used_per_round": agents.cpu.get(PRODUCT, [])[1:],
            },
            "heartbeat_ratio": {
                "method": "product / floor (bench/floor.py: one UPDATE + one INSERT, no auth "
                "or validation, written as the heartbeat writes: one prepared statement, the "
                "same commit mode) in the same gunicorn and served by the same WSGI fast "
                "path, rounds alternating; median of the pairs' ratios",
                "pair_ratios": [round(r, 3) for r in ratios],
                "floor_round_rates": [round(r, 1) for r in floor],
                "floor_request_ms": stats.summary(floor_latencies),
                "floor_cores_used_per_round": agents.cpu.get(FLOOR, [])[1:],
            },
        },
    }


# --- alert_eval_100k ----------------------------------------------------------------------

# Rows like a fleet's: 5 % over the disk rule, 2 % over the memory rule, 1 % down.
EVAL_LIVENESS = {
    "token_hash": "md5(n::text) || md5(n::text)",
    "status": "CASE WHEN mod(g, 100) = 7 THEN 'down' ELSE 'up' END",
    "status_changed_at": "now() - interval '1 hour'",
    "last_seen_at": "now()",
    "last_seq": "100",
    "late_at": "now() + interval '1 hour'",
    "next_due_at": "CASE WHEN mod(g, 100) = 7 THEN NULL ELSE now() + interval '1 hour' END",
    "cpu_percent": "(mod(g, 97))::float",
    "memory_percent": "CASE WHEN mod(g, 50) = 3 THEN 95.0 ELSE 40.0 + mod(g, 40) END",
    "disk_percent": "CASE WHEN mod(g, 20) = 1 THEN 85.0 ELSE 30.0 + mod(g, 45) END",
    "disk_used_gb": "(mod(g, 500))::float",
    "load1": "(mod(g, 8))::float / 4",
}


def measure_alert_eval(ctx, passes: int = 4):
    from django.db import connection

    from portal.monitoring import alerts
    from portal.monitoring.models import Alert, AlertRule, NodeLiveness

    made = time.monotonic()
    bulk_nodes("bench-ev-", EVAL_NODES, EVAL_LIVENESS)
    made = time.monotonic() - made
    rules = list(AlertRule.objects.filter(enabled=True).values_list("name", flat=True))
    first = time.monotonic()
    first_counts = alerts.evaluate_alerts()
    first = (time.monotonic() - first) * 1000
    times, counts = [], []
    for _ in range(passes):
        if not ctx.another(len(times), 2, first / 1000 + 5, "alert evaluation passes"):
            break
        started = time.monotonic()
        counts.append(alerts.evaluate_alerts())
        times.append((time.monotonic() - started) * 1000)
    connection.close()
    return {
        "figures": {"alert_eval_100k": (round(stats.median(times), 1), "ms")},
        "details": {
            "alert_eval_100k": {
                "method": f"{EVAL_NODES} nodes + liveness rows by bulk SQL (5 % over the disk "
                "rule, 2 % over memory, 1 % down), evaluate_alerts() in the bench process "
                "against PostgreSQL; median of the passes after the first",
                "rules": rules,
                "nodes_total": NodeLiveness.objects.count(),
                "open_alerts": Alert.objects.filter(resolved=False).count(),
                "first_pass_ms": round(first, 1),
                "first_pass": first_counts,
                "pass_ms": [round(t, 1) for t in times],
                "last_pass": counts[-1] if counts else None,
                "bulk_rows_seconds": round(made, 1),
            }
        },
    }


# --- down_detection_lag_p95 ---------------------------------------------------------------


def lags_ms(due: dict[int, float], seen: dict[int, float]) -> list[float]:
    """ms from each node's due time to when it was seen down with its alert (seen nodes)."""
    return [(seen[node] - due[node]) * 1000 for node in due if node in seen]


def measure_down_lag(ctx, nodes: int = LAG_NODES, spread: float = 10.0, lead: float = 4.0):
    from django.db import connection
    from django.utils import timezone

    from bench import stack
    from portal.monitoring.choices import DOWN, Liveness
    from portal.monitoring.models import Alert, AlertRule, NodeLiveness

    rule = AlertRule.objects.filter(metric=DOWN, enabled=True).order_by("pk").first()
    if rule is None:
        raise RuntimeError("no enabled 'down' rule")
    held = rule.for_seconds
    AlertRule.objects.filter(pk=rule.pk).update(for_seconds=0)
    # Not one of ctx.services: a dead beat is not a worker to replace; it fails the figure.
    beat = stack.start_beat(ctx.env, ctx.work / "logs", ctx.work / "beat-schedule")
    try:
        stack.wait_beat(beat)
        first, last = bulk_nodes(
            "bench-down-",
            nodes,
            {
                "token_hash": "md5(n::text) || md5(n::text)",
                "status": "'up'",
                "status_changed_at": "now()",
                "last_seen_at": "now()",
                "last_seq": "5",
                # due one by one over `spread` s, from `lead` s from now
                "late_at": f"now() + make_interval(secs => {lead} + g * {spread / nodes})",
                "next_due_at": f"now() + make_interval(secs => {lead} + g * {spread / nodes})",
            },
        )
        ids = list(range(first, last + 1))
        due = {
            node: at.timestamp()
            for node, at in NodeLiveness.objects.filter(node_id__in=ids).values_list(
                "node_id", "next_due_at"
            )
        }
        down_seen: dict[int, float] = {}
        seen: dict[int, float] = {}
        give_up = max(due.values()) + 30
        while len(seen) < len(ids) and time.time() < give_up:
            ctx.require(2, "down detection")
            ctx.check_workers()
            if not beat.alive():
                raise RuntimeError(f"celery beat exited: {beat.log_tail(1000)}")
            down = set(
                NodeLiveness.objects.filter(node_id__in=ids, status=Liveness.DOWN).values_list(
                    "node_id", flat=True
                )
            )
            alerted = set(
                Alert.objects.filter(rule=rule, node_id__in=ids, resolved=False).values_list(
                    "node_id", flat=True
                )
            )
            now = time.time()
            for node in down:
                down_seen.setdefault(node, now)
            for node in down & alerted:
                seen.setdefault(node, now)
            time.sleep(POLL)
    finally:
        beat.stop(grace=5)
        AlertRule.objects.filter(pk=rule.pk).update(for_seconds=held)
    if len(seen) < len(ids):
        raise RuntimeError(
            f"{len(ids) - len(seen)} of {len(ids)} nodes not down with an alert 30 s after "
            f"their due time (down: {len(down_seen)})"
        )
    lags = lags_ms(due, seen)
    down_lags = lags_ms(due, down_seen)
    connection.close()
    return {
        "figures": {"down_detection_lag_p95": (round(stats.percentile(lags, 95), 1), "ms")},
        "details": {
            "down_detection_lag_p95": {
                "method": f"{nodes} nodes due one by one over {spread:g} s; real celery beat "
                f"(settings' schedule) + the bench's worker; polled every {POLL} s; lag = "
                "first poll seeing the node down with its open alert - next_due_at. The "
                f"'{rule.name}' rule's for_seconds ({held}) set to 0 for the run",
                "lag_ms": stats.summary(lags),
                "to_down_state_ms": stats.summary(down_lags),
                "measured_at": timezone.now().isoformat(timespec="seconds"),
            }
        },
    }
