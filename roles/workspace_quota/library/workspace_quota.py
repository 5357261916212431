#!/usr/bin/python3
"""Ansible module: the homes of many workspaces with their disk quota, in one call."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import struct

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.portal.roles.plugins.module_utils.batch import (
    ItemError,
    items_spec,
    run_items,
    step_message,
)

DOCUMENTATION = r"""
module: workspace_quota
short_description: Give many workspace homes their disk quota in one call
description:
  - Each item's home is C(root/slug). Backend C(btrfs) makes it a btrfs subvolume and limits its
    qgroup (C(btrfs qgroup limit)); backend C(project) makes it a directory with an XFS or ext4
    project quota (the project id and inherit flag are set on the directory, the limit with
    C(xfs_quota) on XFS and C(setquota -P) on ext4); backend C(none) makes a plain directory.
  - One call handles a whole batch. An item that fails is reported in C(workspaces) and does not
    stop the others; only a problem of the whole node (root missing, quotas off) fails the task.
  - The home is owned by the item's C(owner) with mode 0700. A home that already exists is only
    corrected (owner, mode, limit), never replaced; C(created) says whether this call made it.
  - Paths are built from the validated slug, and nothing in a home is followed as a symlink.
options:
  root:
    description: Directory that holds the homes (the workspace root).
    type: path
    required: true
  backend:
    description: How the quota is enforced.
    type: str
    choices: [btrfs, project, none]
    default: btrfs
  state:
    description:
      - C(present) creates or corrects the homes and their limits, C(absent) removes them with
        everything in them, C(usage) only reads the usage.
    type: str
    choices: [present, absent, usage]
    default: present
  create:
    description: With C(state=present), create missing homes (false reports them as failed).
    type: bool
    default: true
  root_mode:
    description: Mode of the root directory (0711 lets users reach their home, not list others).
    type: str
    default: "0711"
  items:
    description: The workspaces.
    type: list
    elements: dict
    required: true
    suboptions:
      slug:
        description: The workspace's slug, the name of its home under C(root).
        type: str
        required: true
      owner:
        description: The workspace user (C(state=present)).
        type: str
      limit_bytes:
        description: The quota in bytes (C(state=present)).
        type: int
      project_id:
        description: The project id (backend C(project)).
        type: int
"""

EXAMPLES = r"""
- name: Ensure the homes exist with their quota
  workspace_quota:
    root: /srv/workspaces
    backend: btrfs
    items:
      - {slug: alice-dev, owner: ws-alice-dev, limit_bytes: 10737418240}
"""

RETURN = r"""
workspaces:
  description: Per slug, C(ok), C(created), C(changed), C(used_bytes) (null when unknown),
    C(limit_bytes), C(backend) and C(msg).
  returned: always
  type: dict
outcome:
  description: Per slug, what the playbooks report (the role's C(workspace_quota_outcome)):
    C(ok), C(created), C(used_bytes), C(backend) and C(message) (C(quota: <msg>) when not ok;
    with C(state=usage) the module's message as it is, e.g. why the usage is unknown).
  returned: always
  type: dict
"""

BTRFS_SUBVOLUME_INODE = 256
# struct fsxattr (linux/fs.h): xflags, extsize, nextents, projid, cowextsize, pad[8]
FSXATTR = struct.Struct("=IIIII8s")
FS_IOC_FSGETXATTR = 0x801C581F
FS_IOC_FSSETXATTR = 0x401C5820
FS_XFLAG_PROJINHERIT = 0x00000200


class Node:
    """Commands and facts of the node, shared by every item of the call."""

    def __init__(self, module: AnsibleModule, root: str, backend: str):
        self.module = module
        self.root = root
        self.backend = backend
        self.fstype, self.mountpoint, self.mount_options = "", "", set()
        self.project_usage = None  # {project_id: (used_bytes, hard_bytes)}, read once

    def run(self, argv, item=True):
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            message = f"{' '.join(argv[:3])}: {(err or out).strip()[:300]}"
            if item:
                raise ItemError(message)
            self.module.fail_json(msg=message)
        return out

    def inspect_mount(self):
        out = self.run(
            ["findmnt", "-n", "-o", "FSTYPE,TARGET,OPTIONS", "--target", self.root], item=False
        )
        fstype, target, options = [*out.split(), "", "", ""][:3]
        self.fstype, self.mountpoint, self.mount_options = fstype, target, set(options.split(","))


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "backend": {"type": "str", "choices": ["btrfs", "project", "none"], "default": "btrfs"},
            "state": {
                "type": "str",
                "choices": ["present", "absent", "usage"],
                "default": "present",
            },
            "create": {"type": "bool", "default": True},
            "root_mode": {"type": "str", "default": "0711"},
            "items": items_spec(
                owner={"type": "str"},
                limit_bytes={"type": "int"},
                project_id={"type": "int"},
            ),
        },
        supports_check_mode=True,
    )
    params = module.params
    root = params["root"]
    if not os.path.isabs(root) or ".." in root.split("/"):
        module.fail_json(msg=f"root must be an absolute path without '..': {root!r}")
    node = Node(module, root, params["backend"])
    changed = prepare_root(node, params)
    results = run_items(
        params["items"],
        lambda item, result: handle_item(node, item, params, result),
        lambda item: fresh_result(node, item),
    )
    changed = changed or any(r["changed"] for r in results.values())
    module.exit_json(
        changed=changed,
        workspaces=results,
        outcome={slug: outcome(result, params["state"]) for slug, result in results.items()},
    )


def prepare_root(node: Node, params) -> bool:
    """Check (and for backend none create) the root; switch btrfs quotas on. True if changed."""
    module, root, changed = node.module, node.root, False
    if not os.path.isdir(root):
        if params["backend"] != "none" or params["state"] != "present":
            if params["state"] == "present":
                module.fail_json(msg=f"{root} is missing: mount the workspace volume first")
            return False
        changed = True
        if not module.check_mode:
            os.makedirs(root, mode=0o755, exist_ok=True)
    if params["state"] == "present" and os.path.isdir(root):
        mode = int(params["root_mode"], 8)
        if stat.S_IMODE(os.stat(root).st_mode) != mode:
            changed = True
            if not module.check_mode:
                os.chmod(root, mode)
    if not os.path.isdir(root):
        return changed
    node.inspect_mount()
    if params["backend"] == "btrfs":
        if node.fstype != "btrfs":
            module.fail_json(msg=f"backend btrfs needs {root} on btrfs, it is on {node.fstype}")
        rc, _out, err = module.run_command(
            ["btrfs", "qgroup", "show", root], environ_update={"LC_ALL": "C"}
        )
        if rc != 0 and params["state"] == "present":
            if "not enabled" not in err:
                module.fail_json(msg=f"btrfs qgroup show {root}: {err.strip()}")
            changed = True
            if not module.check_mode:
                node.run(["btrfs", "quota", "enable", root], item=False)
    elif params["backend"] == "project":
        if node.fstype not in ("xfs", "ext4"):
            module.fail_json(msg=f"backend project needs XFS or ext4 at {root}, not {node.fstype}")
        if node.fstype == "xfs" and not node.mount_options & {"prjquota", "pquota", "pqnoenforce"}:
            module.fail_json(msg=f"{node.mountpoint} is not mounted with prjquota")
    return changed


def fresh_result(node: Node, item):
    return {
        "ok": True,
        "created": False,
        "changed": False,
        "used_bytes": None,
        "limit_bytes": item.get("limit_bytes"),
        "backend": node.backend,
        "msg": "",
    }


def handle_item(node: Node, item, params, result):
    path = os.path.join(node.root, item["slug"])
    if params["state"] == "present":
        ensure_present(node, item, path, params["create"], result)
    elif params["state"] == "absent":
        ensure_absent(node, item, path, result)
    if params["state"] != "absent" and not node.module.check_mode and os.path.isdir(path):
        try:
            result["used_bytes"] = used_bytes(node, item, path)
        except ItemError as error:  # usage is information: the item stays ok
            result["msg"] = f"usage unknown: {error}"


def outcome(result, state):
    """The item's outcome for the playbooks."""
    message = result["msg"] if state == "usage" else step_message(result, "quota")
    return {
        "ok": result["ok"],
        "created": result["created"],
        "used_bytes": result["used_bytes"],
        "backend": result["backend"],
        "message": message,
    }


# --- present -----------------------------------------------------------------------------


def ensure_present(node: Node, item, path, create, result):
    if not item.get("owner") or item.get("limit_bytes") is None:
        raise ItemError("owner and limit_bytes are required")
    try:
        owner = pwd.getpwnam(item["owner"])
    except KeyError:
        raise ItemError(f"user {item['owner']} does not exist") from None
    check = node.module.check_mode
    existing = lstat_or_none(path)
    if existing is None:
        if not create:
            raise ItemError(f"{path} is missing")
        result.update(created=True, changed=True)
        if check:
            return
        make_home(node, item, path)
    elif not stat.S_ISDIR(existing.st_mode):
        raise ItemError(f"{path} exists and is not a directory")
    elif node.backend == "btrfs" and existing.st_ino != BTRFS_SUBVOLUME_INODE:
        raise ItemError(f"{path} exists and is not a btrfs subvolume")
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) != (owner.pw_uid, owner.pw_gid):
        result["changed"] = True
        if not check:
            os.lchown(path, owner.pw_uid, owner.pw_gid)
    if stat.S_IMODE(st.st_mode) != 0o700:
        result["changed"] = True
        if not check:
            os.chmod(path, 0o700, follow_symlinks=False)
    if node.backend == "btrfs" and btrfs_limit(node, path) != item["limit_bytes"]:
        result["changed"] = True
        if not check:
            node.run(["btrfs", "qgroup", "limit", str(item["limit_bytes"]), path])
    elif node.backend == "project":
        ensure_project_quota(node, item, path, result)


def make_home(node: Node, item, path):
    if node.backend == "btrfs":
        node.run(["btrfs", "subvolume", "create", path])
    else:
        os.mkdir(path, 0o700)
    if node.backend == "project":
        set_project(path, project_id(item))


def lstat_or_none(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def btrfs_qgroup(node: Node, path):
    """(referenced bytes, limit bytes or None) of the subvolume's own qgroup."""
    out = node.run(["btrfs", "qgroup", "show", "-rf", "--raw", path])
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("0/"):
            limit = fields[3] if len(fields) > 3 else "none"
            return int(fields[1]), (None if limit == "none" else int(limit))
    raise ItemError(f"no qgroup for {path}")


def btrfs_limit(node: Node, path):
    return btrfs_qgroup(node, path)[1]


def project_id(item):
    if not item.get("project_id") or item["project_id"] <= 0:
        raise ItemError("backend project needs a positive project_id")
    return item["project_id"]


def get_project(path):
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        raw = fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(FSXATTR.size))
        return FSXATTR.unpack(raw)
    finally:
        os.close(fd)


def set_project(path, projid):
    """Tag the (new, empty) home with the project id and let new files inherit it."""
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        xflags, extsize, nextents, _old, cowextsize, pad = FSXATTR.unpack(
            fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(FSXATTR.size))
        )
        fcntl.ioctl(
            fd,
            FS_IOC_FSSETXATTR,
            FSXATTR.pack(xflags | FS_XFLAG_PROJINHERIT, extsize, nextents, projid, cowextsize, pad),
        )
    finally:
        os.close(fd)


def ensure_project_quota(node: Node, item, path, result):
    projid = project_id(item)
    xflags, _e, _n, current, _c, _p = get_project(path)
    if current != projid or not xflags & FS_XFLAG_PROJINHERIT:
        if current not in (0, projid):
            raise ItemError(f"{path} belongs to project {current}, not {projid}")
        result["changed"] = True
        if not node.module.check_mode:
            set_project(path, projid)
    hard_kib = -(-item["limit_bytes"] // 1024)
    if project_usage(node).get(projid, (0, 0))[1] != hard_kib * 1024:
        result["changed"] = True
        if not node.module.check_mode:
            set_project_limit(node, projid, hard_kib)
            node.project_usage = None


def set_project_limit(node: Node, projid, hard_kib):
    if node.fstype == "xfs":
        command = f"limit -p bsoft=0 bhard={hard_kib}k {projid}"
        node.run(["xfs_quota", "-x", "-c", command, node.mountpoint])
    else:  # ext4: block limits in 1 KiB units
        node.run(["setquota", "-P", str(projid), "0", str(hard_kib), "0", "0", node.mountpoint])


def project_usage(node: Node):
    """{project id: (used bytes, hard limit bytes)} of the filesystem, read once per call."""
    if node.project_usage is None:
        if node.fstype == "xfs":
            out = node.run(["xfs_quota", "-x", "-c", "report -p -b -N -n", node.mountpoint])
            columns = (1, 3)  # "#id used soft hard warn grace"
        else:
            out = node.run(["repquota", "-P", "-n", node.mountpoint])
            columns = (2, 4)  # "#id -- used soft hard [grace] files ..." (soft is 0: no grace)
        usage = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > columns[1] and fields[0].lstrip("#").isdigit():
                try:
                    used, hard = int(fields[columns[0]]), int(fields[columns[1]])
                except ValueError:
                    continue
                usage[int(fields[0].lstrip("#"))] = (used * 1024, hard * 1024)
        node.project_usage = usage
    return node.project_usage


def used_bytes(node: Node, item, path):
    if node.backend == "btrfs":
        return btrfs_qgroup(node, path)[0]
    if node.backend == "project" and item.get("project_id"):
        return project_usage(node).get(item["project_id"], (None, None))[0]
    return None


# --- absent ------------------------------------------------------------------------------


def ensure_absent(node: Node, item, path, result):
    existing = lstat_or_none(path)
    if existing is None:
        return
    result["changed"] = True
    if node.module.check_mode:
        return
    if stat.S_ISLNK(existing.st_mode) or not stat.S_ISDIR(existing.st_mode):
        os.unlink(path)
        return
    if node.backend == "btrfs" and existing.st_ino == BTRFS_SUBVOLUME_INODE:
        delete_subvolume(node, path)
        return
    if node.backend == "project" and item.get("project_id"):
        set_project_limit(node, item["project_id"], 0)
    shutil.rmtree(path)  # fd-based on Linux: does not follow symlinks in the tree


def delete_subvolume(node: Node, path):
    """Delete the subvolume, subvolumes the user made inside it first, then its qgroup."""
    subvolume_id = node.run(["btrfs", "inspect-internal", "rootid", path]).strip()
    nested = node.run(["btrfs", "subvolume", "list", "-o", path])
    inner = [line.split(" path ", 1)[1] for line in nested.splitlines() if " path " in line]
    top = node.run(["findmnt", "-n", "-o", "TARGET", "--target", path]).strip()
    for relative in sorted(inner, key=lambda p: p.count("/"), reverse=True):
        # `list -o` paths are relative to the filesystem's top; only ours, below the home.
        candidate = os.path.join(top, relative)
        if candidate.startswith(path + "/") and ".." not in relative.split("/"):
            node.run(["btrfs", "subvolume", "delete", candidate])
    node.run(["btrfs", "subvolume", "delete", "--commit-after", path])
    # Wait until the cleaner has dropped it; newer kernels then remove its qgroup themselves,
    # older ones leave it stale: destroy it (an error only means it is gone already).
    node.run(["btrfs", "subvolume", "sync", node.root, subvolume_id])
    node.module.run_command(["btrfs", "qgroup", "destroy", f"0/{subvolume_id}", node.root])


if __name__ == "__main__":
    main()
