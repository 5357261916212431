"""The portal inventory: build_inventory, and the script run by real ansible-inventory."""

import atexit
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import pytest
from django.conf import settings

from portal.nodes.choices import Connection, CredentialKind, NodePurpose
from portal.nodes.inventory import InventoryError, build_inventory, to_json, to_yaml
from portal.nodes.models import Node, NodeGroup
from tests.factories import CredentialFactory, NodeFactory

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "inventory" / "portal_inventory.py"
EXAMPLE = ROOT / "inventory" / "example.yml"
BIN = ROOT / ".venv" / "bin"
PAYLOAD = "{{ lookup('pipe', 'id') }}"


def local_node(name="local-1", **fields):
    fields = {"credential": None, "address": "127.0.0.1", **fields}
    return NodeFactory(name=name, connection=Connection.LOCAL, **fields)


def password_credential():
    return CredentialFactory(
        kind=CredentialKind.PASSWORD, secret="pw-secret-do-not-leak", username="ops"
    )


# --- build_inventory ------------------------------------------------------------------------


@pytest.mark.django_db
def test_groups_and_hostvars():
    site = NodeGroup.objects.create(name="site-a")
    NodeFactory(
        name="ws-1",
        address="10.1.0.5",
        ssh_port=2222,
        ssh_user="deploy",
        become=True,
        group=site,
        labels={"env": "prod", "gpu": True, "rack.row": "b-3"},
        credential=CredentialFactory(username="portal"),
    )
    NodeFactory(
        name="lab-1",
        address="lab-1.example.net",
        purpose=NodePurpose.LAB_SERVER,
        labels={"tier": 2},
        ssh_user="root",
    )
    local_node(group=site)

    inventory = build_inventory()

    assert inventory["_meta"]["hostvars"] == {
        "ws-1": {
            "ansible_host": "10.1.0.5",
            "ansible_port": 2222,
            "ansible_user": "portal",
            "ansible_become": True,
        },
        "lab-1": {
            "ansible_host": "lab-1.example.net",
            "ansible_port": 22,
            "ansible_user": "root",
            "ansible_become": False,
        },
        "local-1": {
            "ansible_host": "127.0.0.1",
            "ansible_port": 22,
            "ansible_user": "root",
            "ansible_become": False,
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        },
    }
    groups = {name: g["hosts"] for name, g in inventory.items() if name not in ("_meta", "all")}
    assert groups == {
        "site-a": ["local-1", "ws-1"],
        "purpose_workspace_host": ["local-1", "ws-1"],
        "purpose_lab_server": ["lab-1"],
        "purpose_fleet_host": [],
        "purpose_proxmox_node": [],
        "label_env_prod": ["ws-1"],
        "label_gpu_true": ["ws-1"],
        "label_rack_row_b_3": ["ws-1"],
        "label_tier_2": ["lab-1"],
    }
    assert inventory["all"]["children"] == sorted(groups)


@pytest.mark.django_db
def test_disabled_nodes_are_left_out_unless_given():
    NodeFactory(name="on")
    off = NodeFactory(name="off", enabled=False)
    inventory = build_inventory()
    assert list(inventory["_meta"]["hostvars"]) == ["on"]
    assert "off" not in json.dumps(inventory)
    assert list(build_inventory(Node.objects.filter(pk=off.pk))["_meta"]["hostvars"]) == ["off"]


@pytest.mark.django_db
def test_reserved_group_name_is_prefixed():
    NodeFactory(name="n1", group=NodeGroup.objects.create(name="all"))
    inventory = build_inventory()
    assert inventory["group_all"] == {"hosts": ["n1"]}
    assert inventory["all"] == {"children": sorted(set(inventory) - {"_meta", "all"})}


@pytest.mark.django_db
def test_no_secret_without_key_dir(tmp_path):
    key = CredentialFactory()
    NodeFactory(name="keyed", credential=key)
    NodeFactory(name="passworded", credential=password_credential())
    with mock.patch(
        "portal.core.fields.crypto.decrypt", side_effect=AssertionError("secret decrypted")
    ):
        text = to_json(build_inventory())
    assert "ansible_ssh_private_key_file" not in text and "ansible_password" not in text
    assert "pw-secret-do-not-leak" not in text and "PRIVATE KEY" not in text
    assert json.loads(text)["_meta"]["hostvars"]["passworded"]["ansible_user"] == "ops"


@pytest.mark.django_db
def test_keys_written_0600_with_key_dir(tmp_path):
    key = CredentialFactory()
    NodeFactory(name="a", credential=key)
    NodeFactory(name="b", credential=key)  # one credential, one file
    NodeFactory(name="pw", credential=password_credential())
    local_node(credential=CredentialFactory())  # a local node needs no key
    key_dir = tmp_path / "keys"

    hostvars = build_inventory(key_dir=key_dir)["_meta"]["hostvars"]

    key_file = key_dir / f"credential-{key.pk}"
    assert hostvars["a"]["ansible_ssh_private_key_file"] == str(key_file)
    assert hostvars["b"]["ansible_ssh_private_key_file"] == str(key_file)
    assert "ansible_ssh_private_key_file" not in hostvars["pw"]
    assert "ansible_ssh_private_key_file" not in hostvars["local-1"]
    assert "pw-secret-do-not-leak" not in json.dumps(hostvars)
    assert [p.name for p in key_dir.iterdir()] == [key_file.name]
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == key.secret.strip() + "\n"


@pytest.mark.django_db
def test_key_dir_open_to_others_is_refused(tmp_path):
    NodeFactory()
    tmp_path.chmod(0o755)
    with pytest.raises(InventoryError, match="open to other users"):
        build_inventory(key_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db
def test_database_strings_are_never_templates():
    local_node(address=PAYLOAD)
    hostvars = json.loads(to_json(build_inventory()))["_meta"]["hostvars"]["local-1"]
    assert hostvars["ansible_host"] == {"__ansible_unsafe": PAYLOAD}
    assert hostvars["ansible_user"] == "root"  # plain values stay plain
    assert hostvars["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"


# --- the script and static files with real Ansible ------------------------------------------


def portal_env(**extra) -> dict:
    """The environment for a child process that must see this test's database."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        login = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            login += ":" + quote(db["PASSWORD"], safe="")
        port = f":{db['PORT']}" if db["PORT"] else ""
        url = f"postgres://{login}@{db['HOST']}{port}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_INVENTORY_")}
    ssh_dir = tempfile.mkdtemp(prefix="portal-inventory-ssh-")
    atexit.register(shutil.rmtree, ssh_dir, ignore_errors=True)  # 17 were left in /tmp a run
    env.update(
        {
            "DEBUG": "true",
            "DATABASE_URL": url,
            "PORTAL_VAR_DIR": str(settings.VAR_DIR),
            "PORTAL_INVENTORY_SSH_DIR": ssh_dir,
            "ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS": "ignore",
            **extra,
        }
    )
    return env


def run(command, env, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def ansible_inventory(env, *args) -> dict:
    result = run([BIN / "ansible-inventory", "-i", SCRIPT, *args], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


@pytest.mark.usefixtures("transactional_db")
def test_ansible_inventory_lists_the_nodes():
    site = NodeGroup.objects.create(name="site-a")
    NodeFactory(name="ws-1", address="10.1.0.5", group=site, labels={"env": "prod"})
    NodeFactory(name="lab-1", purpose=NodePurpose.LAB_SERVER, credential=password_credential())
    NodeFactory(name="off", enabled=False)

    listed = ansible_inventory(portal_env(), "--list")

    hostvars = listed["_meta"]["hostvars"]
    assert set(hostvars) == {"ws-1", "lab-1"}
    common_args = hostvars["ws-1"].pop("ansible_ssh_common_args")
    assert hostvars["ws-1"] == {
        "ansible_host": "10.1.0.5",
        "ansible_port": 22,
        "ansible_user": "root",
        "ansible_become": False,
    }
    assert "StrictHostKeyChecking=yes" in common_args  # host keys are checked (pinned)
    assert listed["site-a"]["hosts"] == ["ws-1"]
    assert listed["label_env_prod"]["hosts"] == ["ws-1"]
    assert listed["purpose_lab_server"]["hosts"] == ["lab-1"]
    assert "ansible_password" not in json.dumps(listed)
    assert "pw-secret-do-not-leak" not in json.dumps(listed)


@pytest.mark.usefixtures("transactional_db")
def test_ansible_inventory_with_key_dir(tmp_path):
    key = CredentialFactory()
    NodeFactory(name="ws-1", credential=key)
    key_dir = tmp_path / "keys"

    listed = ansible_inventory(portal_env(PORTAL_INVENTORY_KEY_DIR=str(key_dir)), "--list")

    key_file = key_dir / f"credential-{key.pk}"
    assert listed["_meta"]["hostvars"]["ws-1"]["ansible_ssh_private_key_file"] == str(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == key.secret.strip() + "\n"


@pytest.mark.usefixtures("transactional_db")
def test_ansible_playbook_runs_directly_with_unsafe_values_as_text():
    local_node(address=PAYLOAD)
    NodeFactory(name="ws-1", enabled=False)  # unreachable: must not be in the run

    env = portal_env()
    ping = run([BIN / "ansible-playbook", "-i", SCRIPT, "playbooks/ping.yml"], env)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "local-1" in ping.stdout and "ws-1" not in ping.stdout

    debug = run(
        [
            BIN / "ansible",
            "local-1",
            "-i",
            SCRIPT,
            "-m",
            "ansible.builtin.debug",
            "-a",
            "var=ansible_host",
        ],
        env,
    )
    assert debug.returncode == 0, debug.stdout + debug.stderr
    assert PAYLOAD in debug.stdout and "uid=" not in debug.stdout


@pytest.mark.usefixtures("transactional_db")
def test_host_option():
    NodeFactory(name="ws-1", address="10.1.0.5")
    NodeFactory(name="off", enabled=False)
    env = portal_env()
    shown = run([SCRIPT, "--host", "ws-1"], env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["ansible_host"] == "10.1.0.5"
    for name in ("off", "nope"):
        unknown = run([SCRIPT, "--host", name], env)
        assert (unknown.returncode, json.loads(unknown.stdout)) == (0, {})


def python_without_django() -> str | None:
    venv_bin = str(BIN)
    path = os.pathsep.join(
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and Path(p).resolve() != Path(venv_bin).resolve()
    )
    for candidate in (shutil.which("python3", path=path), "/usr/bin/python3"):
        if candidate and Path(candidate).exists():
            probe = subprocess.run(
                [candidate, "-c", "import django"], capture_output=True, check=False
            )
            if probe.returncode != 0:
                return candidate
    return None


@pytest.mark.usefixtures("transactional_db")
def test_reruns_itself_with_the_venv_python():
    python = python_without_django()
    if python is None:
        pytest.skip("no python3 without Django on this machine")
    NodeFactory(name="ws-1")
    result = run([python, SCRIPT, "--list"], portal_env())
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["_meta"]["hostvars"]) == ["ws-1"]


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("postgres://portal@127.0.0.1:1/portal", "Connection refused"),
        ("sqlite:///{tmp}/empty.sqlite3", "no such table"),
    ],
)
def test_database_problem_is_one_line(tmp_path, database_url, expected):
    env = portal_env(DATABASE_URL=database_url.format(tmp=tmp_path))
    result = run([sys.executable, SCRIPT, "--list"], env)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("portal inventory: cannot read nodes from the database: ")
    assert expected in result.stderr and len(result.stderr.splitlines()) == 1


def test_configuration_problem_is_one_line():
    result = run([sys.executable, SCRIPT, "--list"], portal_env(DEBUG="maybe"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "portal: configuration error: DEBUG: expected true/false (1/0, yes/no, on/off), got 'maybe'"
    ]


def test_example_inventory_is_accepted():
    result = run([BIN / "ansible-inventory", "-i", EXAMPLE, "--list"], dict(os.environ))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["purpose_workspace_host"]["hosts"] == ["ws-1"]
    assert listed["purpose_lab_server"]["hosts"] == ["lab-1"]
    assert listed["_meta"]["hostvars"]["ws-1"]["ansible_become"] is True
    assert listed["_meta"]["hostvars"]["lab-1"]["ansible_port"] == 2222


@pytest.mark.django_db
def test_yaml_form_is_the_same_inventory(tmp_path):
    site = NodeGroup.objects.create(name="site-a")
    NodeFactory(name="ws-1", address=PAYLOAD, group=site, labels={"env": "prod"})
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(to_yaml(build_inventory()))
    result = run([BIN / "ansible-inventory", "-i", hosts, "--list"], dict(os.environ))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["site-a"]["hosts"] == listed["label_env_prod"]["hosts"] == ["ws-1"]
    assert listed["_meta"]["hostvars"]["ws-1"]["ansible_host"] == {"__ansible_unsafe": PAYLOAD}


# --- an operator's fresh shell (the README's command, DEBUG unset) ---------------------------


def operator_shell_env(**extra) -> dict:
    """A fresh shell: none of the portal's settings, the repo's ansible.cfg in effect."""
    dropped = (
        "DEBUG",
        "SECRET_KEY",
        "SECRET_KEY_FILE",
        "FIELD_ENCRYPTION_KEY",
        "FIELD_ENCRYPTION_KEY_FILE",
        "ANSIBLE_CONFIG",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("PORTAL_INVENTORY_", "ANSIBLE_INVENTORY"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def test_script_without_the_portal_environment_is_one_line_saying_what_is_missing():
    result = run([SCRIPT, "--list"], operator_shell_env())
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("portal: configuration error: SECRET_KEY: required when DEBUG is off")
    assert "export DEBUG=true" in line and "inventory/README.md" in line


def test_readme_operator_command_fails_loudly_without_the_portal_environment():
    """`ansible-playbook -i inventory/portal_inventory.py playbooks/ping.yml` in a fresh
    shell: not a warning, "no hosts matched" and exit 0, but an error and a failed run."""
    result = run(
        ["ansible-playbook", "-i", "inventory/portal_inventory.py", "playbooks/ping.yml"],
        operator_shell_env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "portal: configuration error: SECRET_KEY: required when DEBUG is off" in output
    assert "export DEBUG=true" in output
    assert "no hosts matched" not in output


def test_repo_ansible_cfg_finds_the_roles_and_keeps_the_implicit_localhost():
    env = operator_shell_env()
    check = run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", "playbooks/lab_provision.yml"],
        env,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    ping = run(["ansible", "localhost", "-m", "ansible.builtin.ping"], env)
    assert ping.returncode == 0, ping.stdout + ping.stderr
