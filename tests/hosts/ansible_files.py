"""The inventory and ansible.cfg of a run, both inside the run directory.

ansible-core 2.19 writes into root's home (~/.ansible/cp, ~/.ssh/known_hosts) unless told
otherwise, even with ANSIBLE_HOME set; the cfg points every such path into the run.
"""

from __future__ import annotations

from pathlib import Path

SSH_COMMON_ARGS = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"


def inventory_text(hosts, key_path: Path) -> str:
    lines = ["[test_hosts]"]
    for host in hosts:
        lines.append(
            f"{host.name} ansible_host={host.address} ansible_user=root"
            f" ansible_ssh_private_key_file={key_path}"
            f" ansible_ssh_common_args='{SSH_COMMON_ARGS}'"
        )
    lines += ["", "[btrfs_volume]"]
    lines += [host.name for host in hosts if host.has_volume]
    lines += ["", "[test_hosts:vars]", "ansible_python_interpreter=/usr/bin/python3", ""]
    return "\n".join(lines)


def ansible_cfg_text(ansible_dir: Path, inventory_path: Path) -> str:
    return f"""[defaults]
inventory = {inventory_path}
home = {ansible_dir / "home"}
local_tmp = {ansible_dir / "tmp"}
host_key_checking = False
retry_files_enabled = False
interpreter_python = /usr/bin/python3
forks = 20

[ssh_connection]
control_path_dir = {ansible_dir / "cp"}
ssh_args = {SSH_COMMON_ARGS} -o ControlMaster=auto -o ControlPersist=60s
pipelining = True
"""


def write_ansible_files(ansible_dir: Path, hosts, key_path: Path):
    """Write inventory.ini and ansible.cfg; return their paths."""
    for sub in ("home", "tmp", "cp"):
        (ansible_dir / sub).mkdir(parents=True, exist_ok=True)
    inventory_path = ansible_dir / "inventory.ini"
    inventory_path.write_text(inventory_text(hosts, key_path))
    cfg_path = ansible_dir / "ansible.cfg"
    cfg_path.write_text(ansible_cfg_text(ansible_dir, inventory_path))
    return inventory_path, cfg_path
