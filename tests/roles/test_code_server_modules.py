"""roles/code_server's modules, run in this process: code_server_files on temporary
directories, code_server_health against a local HTTP server."""

import http.server
import threading

import pytest

from tests.roles.support import load, run

files_module = load("roles/code_server/library/code_server_files.py")
health_module = load("roles/code_server/library/code_server_health.py")


@pytest.fixture
def dirs(tmp_path):
    return {"config_dir": str(tmp_path / "etc"), "unit_dir": str(tmp_path / "units")}


def test_files_are_written_once_and_removed(dirs, capsys, tmp_path):
    (tmp_path / "units").mkdir()
    item = {"slug": "alice-dev", "owner": "root", "config": "password: x\n", "unit": "[Unit]\n"}
    first = run(files_module, {**dirs, "items": [item]}, capsys)
    assert first["units_changed"]
    assert first["workspaces"]["alice-dev"] == {
        "ok": True,
        "msg": "",
        "step": "",
        "config_changed": True,
        "config_created": True,
        "unit_changed": True,
        "unit_created": True,
    }
    assert (tmp_path / "etc" / "alice-dev.yaml").stat().st_mode & 0o777 == 0o600
    again = run(files_module, {**dirs, "items": [item]}, capsys)
    assert not again["changed"] and not again["units_changed"]
    removed = run(
        files_module, {**dirs, "state": "absent", "items": [{"slug": "alice-dev"}]}, capsys
    )
    assert (
        removed["units_changed"]
        and not (tmp_path / "units").joinpath("code-server-alice-dev.service").exists()
    )


def test_a_failing_item_keeps_its_step_and_the_others_go_on(dirs, capsys, tmp_path):
    (tmp_path / "units").mkdir()
    result = run(
        files_module,
        {
            **dirs,
            "items": [
                {
                    "slug": "nobody",
                    "owner": "ws-no-such-user-c1",
                    "config": "password: pw-1234",
                    "unit": "y",
                },
                {"slug": "no-config", "owner": "root", "unit": "y"},
                {"slug": "ok-one", "owner": "root", "config": "password: pw-1234", "unit": "y"},
            ],
        },
        capsys,
    )
    workspaces = result["workspaces"]
    assert (
        workspaces["nobody"]["ok"],
        workspaces["nobody"]["step"],
        workspaces["nobody"]["msg"],
    ) == (False, "config", "user ws-no-such-user-c1 does not exist")
    assert workspaces["no-config"]["msg"].endswith(
        "no-config.yaml is missing and no config was given"
    )
    assert workspaces["ok-one"]["ok"] and workspaces["ok-one"]["unit_created"]


def test_the_config_never_appears_in_the_result(dirs, capsys, tmp_path):
    (tmp_path / "units").mkdir()
    result = run(
        files_module,
        {
            **dirs,
            "items": [
                {"slug": "a", "owner": "root", "config": "password: s3cret-value", "unit": "u"}
            ],
        },
        capsys,
    )
    assert "s3cret-value" not in str(result)


class Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_health_tells_each_workspace_apart(server, capsys):
    result = run(
        health_module,
        {
            "timeout": 0,
            "items": [
                {"slug": "up", "url": f"{server}/healthz"},
                {"slug": "wrong", "url": f"{server}/other"},
            ],
        },
        capsys,
    )
    up, wrong = result["workspaces"]["up"], result["workspaces"]["wrong"]
    assert up["healthy"] and up["status"] == 200 and up["msg"] == ""
    assert not wrong["healthy"] and wrong["status"] == 404
    assert wrong["msg"].startswith("no 200 from /healthz after 0 s (last: HTTP 404)") or wrong[
        "msg"
    ].startswith("unit is ")


def test_health_refuses_a_url_that_is_not_http(capsys):
    result = run(health_module, {"items": [{"slug": "a", "url": "file:///etc/passwd"}]}, capsys)
    assert result["failed"] and result["msg"] == "refusing a non-http health url for a"
