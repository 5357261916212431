"""The e2e tests' questions to a host tell "no" apart from "could not ask" (no hosts needed)."""

import subprocess

import pytest

from tests.e2e.workspace_support import HostUnreachable, Stack


class FakeHost:
    name = "fake-1"

    def __init__(self, returncode, stdout="", stderr=""):
        self.result = subprocess.CompletedProcess(["ssh"], returncode, stdout, stderr)

    def run(self, command):
        return self.result


def stack(returncode, stdout="", stderr=""):
    return Stack(node=None, host=FakeHost(returncode, stdout, stderr), traefik=None)


def test_a_command_that_ran_answers():
    assert stack(0, "700\n").on_host("stat -c %a /srv") == "700"
    assert stack(0).host_says("test -e /x") is True
    assert stack(1).host_says("test -e /x") is False
    assert stack(2).host_says("getent passwd ws-gone", no=(2,)) is False


def test_ssh_failure_is_never_an_answer():
    failed = stack(255, stderr="ssh: connect to host 10.0.0.9 port 22: No route to host")
    with pytest.raises(HostUnreachable, match="No route to host"):
        failed.on_host("getent passwd ws-x")
    with pytest.raises(HostUnreachable):
        failed.host_says("getent passwd ws-x", no=(2,))


def test_an_unexpected_exit_fails_instead_of_meaning_no():
    with pytest.raises(AssertionError, match="exited 127"):
        stack(127, stderr="btrfs: command not found").host_says("btrfs subvolume list /")
    with pytest.raises(AssertionError, match="exited 1"):
        stack(1).on_host("stat -c %a /missing")
