"""A local Debian package repository for the test hosts: built once on the machine, cached.

The hosts have no route out, yet an installer's install.sh runs `apt-get install nginx` as
written. So the machine (which reaches its Debian mirror) resolves, once, what the hosts'
base image lacks for the installers' packages (REPO_PACKAGES) and caches it as a flat,
indexed repository:

    $PORTAL_TEST_HOSTS_CACHE/apt-repos/repo-<key>/    *.deb, Packages, Packages.gz, Release

The key covers the package list, the base image (its own key), the machine's Debian sources
and the recipe below. The build runs in a throwaway overlay on the base (a private mount
namespace, chrooted): `apt-get install --download-only` there downloads exactly what the base
lacks (new packages and any newer versions they need), `apt-ftparchive` indexes it, and a
second overlay on the bare base, without a network, must resolve every package (and all of
them together) from the repository alone before it is published (atomically, by a rename).

Every host gets the whole `apt-repos` directory bound read-only at /srv/portal-apt-repos,
the symlink /srv/portal-apt -> portal-apt-repos/repo-<key>, the source
`deb [trusted=yes] file:/srv/portal-apt ./` in /etc/apt/sources.list.d/portal-local.list and
an empty /etc/apt/sources.list (the base's points at the mirror the hosts cannot reach).
The bind is of the directory, not of the repository, so a host booted before the first build
finished sees the repository the moment it is published: boots never wait for a build, which
runs in a detached `python -m tests.hosts apt-repo` (AptRepo.start_build) while tests that
need it wait for it (AptRepo.wait; the `apt_repo` fixture).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .base import base_packages, cache_dir, cache_key, provide_base
from .machine import HarnessError, HostsUnavailable, mounts_under, run, unavailable_reason

log = logging.getLogger("tests.hosts")

# What the installers in installers/ apt-get install (their dependencies come with them).
REPO_PACKAGES = ("nginx", "redis-server", "postgresql", "openssl", "curl", "ca-certificates")

HOST_REPOS_MOUNT = "/srv/portal-apt-repos"
HOST_REPO_PATH = "/srv/portal-apt"
HOST_SOURCE_FILE = "etc/apt/sources.list.d/portal-local.list"
HOST_SOURCE_LINE = f"deb [trusted=yes] file:{HOST_REPO_PATH} ./\n"
# The machine's Debian sources, copied into the build root (deb822 first, then legacy).
MACHINE_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
BUILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ARCHIVES = "/var/cache/portal-apt"  # inside the build root

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

# In the build root: the machine's sources instead of the base's, then download only.
DOWNLOAD_SH = r"""
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
cp /mnt/sources/* /etc/apt/sources.list.d/
apt-get -q update
mkdir -p "$ARCHIVES/partial"
apt-get -q install -y --download-only -o Dir::Cache::archives="$ARCHIVES" $REPO_PACKAGES
"""

# In a second root on the bare base with the repository on /mnt and no network: apt must
# resolve each package, and all together, from the repository alone.
VERIFY_SH = r"""
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/mnt ./' > /etc/apt/sources.list.d/portal-local.list
apt-get -q update
for package in $REPO_PACKAGES; do
    apt-get -q install -y --simulate "$package" >/dev/null
done
installs=$(apt-get -q install -y --simulate $REPO_PACKAGES | grep -c '^Inst ')
echo "all together: $installs packages to install"
"""


class AptRepoUnavailable(HarnessError):
    """The repository is not cached and its build failed (e.g. the mirror is unreachable)."""


def repos_dir() -> Path:
    return cache_dir() / "apt-repos"


def repo_key(extra_packages=()):
    recipe = {
        "packages": sorted(REPO_PACKAGES),
        "base": cache_key(base_packages(extra_packages)),
        "sources": [machine_sources_text()],
        "download": DOWNLOAD_SH,
        "verify": VERIFY_SH,
    }
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


def machine_sources_text():
    for path in MACHINE_SOURCES:
        if path.exists():
            return path.read_text()
    return ""


class AptRepo:
    """The repository for one base image: where it is, whether it is built, waiting for it."""

    def __init__(self, extra_packages=()):
        self.extra_packages = tuple(extra_packages)
        self.key = repo_key(self.extra_packages)
        self.path = repos_dir() / f"repo-{self.key}"
        self.log_path = cache_dir() / f"apt-repo-{self.key}.log"
        self._builder: subprocess.Popen | None = None

    def ready(self) -> bool:
        return (self.path / "Release").exists()

    def start_build(self):
        """Build it in a detached process unless it is cached (returns at once).

        The process outlives its starter (a finished pytest session, a detached `up`): it
        holds the build lock, so two starters never build twice.
        """
        if self.ready() or self._builder is not None:
            return
        repos_dir().mkdir(parents=True, exist_ok=True)
        extra = ["--extra-packages", *self.extra_packages] if self.extra_packages else []
        with open(self.log_path, "ab") as log_file:
            self._builder = subprocess.Popen(
                [sys.executable, "-m", "tests.hosts", "apt-repo", *extra],
                cwd=Path(__file__).resolve().parents[2],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        log.info("building the hosts' apt repository in the background (log %s)", self.log_path)

    def wait(self, timeout=1200.0) -> Path:
        """The repository's path once it is published; AptRepoUnavailable if its build fails."""
        if self.ready():
            return self.path
        self.start_build()
        assert self._builder is not None
        try:
            self._builder.wait(timeout)
        except subprocess.TimeoutExpired as error:
            raise AptRepoUnavailable(
                f"the apt repository was not built within {timeout:.0f} s (log {self.log_path})"
            ) from error
        if not self.ready():
            exit_code, self._builder = self._builder.returncode, None  # a later wait() retries
            raise AptRepoUnavailable(
                f"building the apt repository failed (exit {exit_code}, log {self.log_path}): "
                f"{log_tail(self.log_path)}"
            )
        return self.path

    def prepare_host(self, root: Path):
        """The host's apt source, written into its overlay before boot (see module doc)."""
        (root / HOST_SOURCE_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / HOST_SOURCE_FILE).write_text(HOST_SOURCE_LINE)
        (root / "etc/apt/sources.list").write_text(
            f"# Test host without a route out: packages come from /{HOST_SOURCE_FILE}\n"
        )
        link = root / HOST_REPO_PATH.lstrip("/")
        link.unlink(missing_ok=True)
        link.symlink_to(f"{Path(HOST_REPOS_MOUNT).name}/{self.path.name}")

    def bind(self):
        """(machine directory, host path) for systemd-nspawn --bind-ro."""
        repos_dir().mkdir(parents=True, exist_ok=True)
        return (repos_dir(), HOST_REPOS_MOUNT)


def log_tail(path: Path, lines=25):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build_apt_repo(extra_packages=(), rebuild=False) -> Path:
    """Build the repository unless cached (a minute or two, once); returns its path."""
    repo = AptRepo(extra_packages)
    if repo.ready() and not rebuild:
        return repo.path
    reason = unavailable_reason()  # also installs the machine packages (apt-ftparchive)
    if reason:
        raise HostsUnavailable(reason)
    repos_dir().mkdir(parents=True, exist_ok=True)
    with open(repos_dir() / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is building the apt repository; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
            rebuild = False
        if repo.ready() and not rebuild:
            return repo.path
        remove_stale_builds()
        build(repo)
    return repo.path


def remove_stale_builds():
    """Work directories of builds that died (we hold the lock: none is running)."""
    for stale in cache_dir().glob(".apt-repo-build-*"):
        if not mounts_under(stale):
            shutil.rmtree(stale, ignore_errors=True)


def build(repo: AptRepo):
    started = time.monotonic()
    log.info("building apt repository %s for %s", repo.path, " ".join(REPO_PACKAGES))
    work = Path(tempfile.mkdtemp(prefix=".apt-repo-build-", dir=cache_dir()))
    try:
        stage = work / "stage"
        (stage / "sources").mkdir(parents=True)
        stage_sources(stage / "sources")
        source = provide_base(work / "base", repo.extra_packages)
        log.info("base (%s) ready after %.0f s", source, time.monotonic() - started)
        download_root = in_layer(work, "download", stage, DOWNLOAD_SH, network=True)
        staged = work / "stage-repo"
        staged.mkdir()
        for deb in (download_root / ARCHIVES.lstrip("/")).glob("*.deb"):
            deb.rename(staged / deb.name)
        index(staged)
        log.info("downloaded and indexed after %.0f s", time.monotonic() - started)
        in_layer(work, "verify", staged, VERIFY_SH, network=False)
        staged.chmod(0o755)
        if repo.path.exists():  # --rebuild: swap, so hosts never see a half-removed one
            repo.path.rename(work / "replaced")
        staged.rename(repo.path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    debs = list(repo.path.glob("*.deb"))
    size = sum(d.stat().st_size for d in debs)
    log.info(
        "built %s: %d packages, %.0f MB, in %.0f s",
        repo.path,
        len(debs),
        size / 1e6,
        time.monotonic() - started,
    )


def stage_sources(target: Path):
    for path in MACHINE_SOURCES:
        if path.exists():
            shutil.copyfile(path, target / path.name)
            return
    names = ", ".join(map(str, MACHINE_SOURCES))
    raise HarnessError(f"no Debian sources on this machine ({names})")


def in_layer(work: Path, name: str, stage: Path, script: str, network: bool) -> Path:
    """Run script chrooted in an overlay on work/base (stage read-only on /mnt); returns the
    overlay's upper directory, which holds what the script wrote."""
    upper, overlay_work, root = (work / f"{name}-{part}" for part in ("upper", "work", "root"))
    for directory in (upper, overlay_work, root):
        directory.mkdir()
    namespaces = ["--mount", "--pid", "--fork", "--kill-child"]
    if not network:
        namespaces.insert(0, "--net")
    env = {
        "PATH": BUILD_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "REPO_PACKAGES": " ".join(REPO_PACKAGES),
        "ARCHIVES": ARCHIVES,
    }
    command = ["unshare", *namespaces, "sh", "-c", LAYER_DRIVER_SH, "sh"]
    command += [work / "base", upper, overlay_work, root, stage, script]
    result = run(command, check=False, timeout=1200, env=env)
    output = (result.stdout + result.stderr).strip()
    log.info("%s step exited %d:\n%s", name, result.returncode, output[-3000:])
    if result.returncode != 0:
        raise HarnessError(
            f"apt repository {name} step exited {result.returncode}: {output[-2000:]}"
        )
    return upper


def index(directory: Path):
    """Packages, Packages.gz and Release for a flat repository (`deb file:DIR ./`)."""
    packages = ftparchive(directory, "packages").stdout
    (directory / "Packages").write_text(packages)
    with gzip.open(directory / "Packages.gz", "wt") as compressed:
        compressed.write(packages)
    (directory / "Release").write_text(ftparchive(directory, "release").stdout)


def ftparchive(directory: Path, command: str):
    # Indexed from inside the directory: Filename fields must be relative to the repo root.
    return run(["sh", "-c", f'cd "$1" && apt-ftparchive {command} .', "sh", directory], timeout=300)
