"""A small keep-alive HTTP client for the portal API and its SSE stream (127.0.0.1 only)."""

import http.client
import json
import time
from datetime import datetime


class ApiError(RuntimeError):
    pass


class Api:
    """One keep-alive connection, token-authenticated; JSON in, JSON out."""

    def __init__(self, port: int, token: str, timeout: float = 30.0):
        self.port, self.token, self.timeout = port, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        data = json.loads(raw) if raw else {}
        return response.status, data

    def launch(self, playbook: str, nodes: list[str], **extra) -> tuple[dict, float, float]:
        """POST /api/jobs/; returns (job, wall time sent, wall time the response returned)."""
        sent = time.time()
        status, job = self.request(
            "POST", "/api/jobs/", {"playbook": playbook, "nodes": nodes, **extra}
        )
        returned = time.time()
        if status != 201:
            raise ApiError(f"launch {playbook} -> {status}: {job}")
        return job, sent, returned


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def read_stream(port: int, token: str, job_id: int, deadline: float) -> dict:
    """Consume ``GET /api/jobs/{id}/stream/`` to its ``end`` frame (or the deadline).

    Returns {"arrivals": [(counter, created epoch, arrival epoch)], "end": status or None}.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(1.0, deadline - time.time()))
    arrivals: list[tuple[int, float, float]] = []
    end = None
    try:
        conn.request(
            "GET",
            f"/api/jobs/{job_id}/stream/",
            headers={"Authorization": f"Token {token}", "Accept": "text/event-stream"},
        )
        response = conn.getresponse()
        if response.status != 200:
            raise ApiError(f"stream {job_id} -> {response.status}: {response.read()[:300]}")
        kind = None
        while time.time() < deadline:
            line = response.readline()
            if not line:
                break
            now = time.time()
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if kind == "job_event":
                    arrivals.append((data["counter"], parse_time(data["created"]), now))
                elif kind == "end":
                    end = data.get("status")
                    break
            elif not line:
                kind = None
    finally:
        conn.close()
    return {"arrivals": arrivals, "end": end}
