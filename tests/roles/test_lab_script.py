"""roles/lab_session's module lab_script, run in this process on a temporary script."""

from tests.roles.support import load, run

module = load("roles/lab_session/library/lab_script.py")


def script(tmp_path, body):
    path = tmp_path / "provision.sh"
    path.write_text(body)
    return str(path)


def test_the_script_gets_username_and_namespace_and_its_output_tail(tmp_path, capsys):
    path = script(tmp_path, 'echo "user=$1 ns=$2"; echo oops >&2; exit 3\n')
    result = run(
        module,
        {"script": path, "username": "alice; id", "namespace": "user-1-ab", "output_limit": 6},
        capsys,
    )
    assert result["rc"] == 3
    assert result["output"] == "user=alice; id ns=user-1-ab\noops\n"
    assert result["output_tail"] == "\noops\n"
    everything = run(module, {"script": path, "username": "a", "namespace": "n"}, capsys)
    assert everything["output_tail"] == everything["output"]  # output_limit 0 keeps all


def test_a_missing_script_fails_without_running(tmp_path, capsys):
    result = run(
        module, {"script": str(tmp_path / "nope.sh"), "username": "a", "namespace": "n"}, capsys
    )
    assert result["failed"] and result["missing"] and result["output_tail"] == ""
