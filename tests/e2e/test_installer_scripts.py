"""The catalogue's real installers (installers/<id>/install.sh, uninstall.sh) run by hand on
a test host, the way the portal's run role will run them: the directory copied to the node,
the inputs as UPPERCASE environment variables (from a 0600 file, as the runner's wrapper
exports them), DEBIAN_FRONTEND=noninteractive and PROVISIONING_JOB=true, no stdin.

Each installer's life: install, the service works, a rerun changes nothing (the script says
"result: unchanged" and the files it manages, their mtimes and the service's processes are
the same), bad input is exit 1 with nothing changed, uninstall removes it, twice is fine.
Packages come from the hosts' local apt repository (tests/hosts/apt_repo.py)."""

from __future__ import annotations

import base64
import io
import secrets
import shlex
import tarfile
from pathlib import Path

import pytest

INSTALLERS_DIR = Path(__file__).resolve().parents[2] / "installers"
REMOTE_DIR = "/opt/portal-installers"
CONTRACT_ENV = "DEBIAN_FRONTEND=noninteractive PROVISIONING_JOB=true"


@pytest.fixture(scope="module")
def host(scratch_host):
    """The module's own host with every installer directory copied to REMOTE_DIR."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(INSTALLERS_DIR, arcname=".")
    scratch_host.run(
        f"rm -rf {REMOTE_DIR} && mkdir -p {REMOTE_DIR} && base64 -d | tar -xz -C {REMOTE_DIR}",
        input=base64.b64encode(archive.getvalue()).decode(),
        check=True,
    )
    return scratch_host


def run_script(host, installer, script="install.sh", **inputs):
    """Run an installer's script with inputs (lowercase names) as the runner will."""
    env_file = "".join(
        f"export {name.upper()}={shlex.quote(str(value))}\n" for name, value in inputs.items()
    )
    command = (
        f"umask 077 && cat > /run/installer.env && . /run/installer.env && rm /run/installer.env"
        f" && cd {REMOTE_DIR}/{installer} && env {CONTRACT_ENV} bash {script} </dev/null"
    )
    return host.run(command, input=env_file, timeout=900)


def succeeded(result, outcome=None):
    """Exit 0, and for install.sh the outcome it reports last: changed or unchanged."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    if outcome:
        assert f"result: {outcome}" in result.stdout, output[-3000:]


def failed_with(result, code):
    assert result.returncode == code, (result.stdout + result.stderr)[-3000:]
    assert "error:" in result.stderr


def snapshot(host, paths, processes=""):
    """Contents, modes, owners and mtimes of every file under paths (and the pids of
    `processes`, a pgrep pattern): a rerun that changes nothing leaves this the same."""
    listing = host.run(
        f"find {' '.join(paths)} -printf '%p %m %u:%g %T@\\n' 2>/dev/null | sort; "
        f"find {' '.join(paths)} -type f -exec sha256sum {{}} + 2>/dev/null | sort; "
        + (f"pgrep -d, {shlex.quote(processes)}" if processes else "true")
    )
    return listing.stdout


def installed(host, package):
    status = host.run(f"dpkg-query -W -f='${{Status}}' {package}")
    return status.returncode == 0 and "ok installed" in status.stdout


def fetch(host, url, *options):
    return host.run(["curl", "-sS", *options, url])


# --- nginx -----------------------------------------------------------------------------------

NGINX_PATHS = ("/etc/nginx", "/var/www/portal-nginx")


def test_nginx_serves_its_name_reruns_unchanged_and_uninstalls(host):
    name = "shop.example.test"
    succeeded(run_script(host, "nginx", server_name=name), "changed")
    page = fetch(host, "http://127.0.0.1/", "-H", f"Host: {name}")
    assert f"<h1>{name}</h1>" in page.stdout
    assert "Welcome to nginx" in fetch(host, "http://127.0.0.1/", "-H", "Host: other").stdout

    before = snapshot(host, NGINX_PATHS, processes="nginx")
    succeeded(run_script(host, "nginx", server_name=name), "unchanged")
    assert snapshot(host, NGINX_PATHS, processes="nginx") == before

    failed_with(run_script(host, "nginx", server_name="Bad Name;"), 1)
    failed_with(run_script(host, "nginx", server_name=name, listen_port="70000"), 1)
    assert snapshot(host, NGINX_PATHS, processes="nginx") == before

    succeeded(run_script(host, "nginx", "uninstall.sh", server_name=name))
    assert not installed(host, "nginx")
    assert fetch(host, "http://127.0.0.1/").returncode != 0
    assert host.run(f"ls {NGINX_PATHS[1]}/{name}").returncode != 0
    assert run_script(host, "nginx", "uninstall.sh", server_name=name).returncode == 0


def test_nginx_rejected_configuration_is_exit_3_and_rolled_back(host):
    working, broken = "ok.example.test", "broken.example.test"
    succeeded(run_script(host, "nginx", server_name=working), "changed")
    host.run("echo 'not_a_directive;' > /etc/nginx/conf.d/x.conf", check=True)
    try:
        result = run_script(host, "nginx", server_name=broken)
        failed_with(result, 3)
        assert "nginx -t" in result.stderr
        leftovers = host.run(
            f"ls /etc/nginx/sites-enabled/portal-nginx-{broken}.conf "
            f"/etc/nginx/sites-available/portal-nginx-{broken}.conf /var/www/portal-nginx/{broken}"
        )
        assert leftovers.stdout == "", leftovers.stdout
    finally:
        host.run("rm -f /etc/nginx/conf.d/x.conf")
    succeeded(run_script(host, "nginx", server_name=broken), "changed")  # fixed: it installs
    for name in (working, broken):
        page = fetch(host, "http://127.0.0.1/", "-H", f"Host: {name}")
        assert f"<h1>{name}</h1>" in page.stdout
    succeeded(run_script(host, "nginx", "uninstall.sh", server_name=working))
    assert installed(host, "nginx")  # the other site still needs it
    succeeded(run_script(host, "nginx", "uninstall.sh", server_name=broken))
    assert not installed(host, "nginx")


def test_nginx_whose_reload_is_lost_is_restarted_and_serves(host):
    """A reload that does not take effect (one was lost on an nginx the package had only just
    started) leaves the old configuration served: the script restarts nginx once."""
    first, second = "first.example.test", "second.example.test"
    succeeded(run_script(host, "nginx", server_name=first), "changed")
    dropin = "/etc/systemd/system/nginx.service.d/lose-reload.conf"
    lose_reloads = "[Service]\\nExecReload=\\nExecReload=/bin/true\\n"
    host.run(
        f"mkdir -p {Path(dropin).parent} && printf '{lose_reloads}' > {dropin}"
        " && systemctl daemon-reload",
        check=True,
    )
    try:
        result = run_script(host, "nginx", server_name=second)
        succeeded(result, "changed")
        assert f"does not serve {second} after 10 s" in result.stdout
    finally:
        host.run(f"rm -f {dropin} && systemctl daemon-reload")
    for name in (first, second):
        assert f"<h1>{name}</h1>" in fetch(host, "http://127.0.0.1/", "-H", f"Host: {name}").stdout
    for name in (first, second):
        succeeded(run_script(host, "nginx", "uninstall.sh", server_name=name))
    assert not installed(host, "nginx")


def test_apt_failure_is_exit_2_the_retryable_installation_error(host):
    # Without its package source apt-get cannot install: exit 2, and nothing is recorded
    # as installed by the portal (no marker), so a retry starts from the same state.
    host.run("mv /etc/apt/sources.list.d/portal-local.list /root/ && rm -rf /var/lib/apt/lists/*")
    try:
        result = run_script(host, "redis", password=secrets.token_urlsafe(18))
        failed_with(result, 2)
        assert "apt-get install redis-server failed" in result.stderr
        assert host.run("ls /var/lib/portal-installers/packages/redis-server").returncode != 0
    finally:
        host.run("mv /root/portal-local.list /etc/apt/sources.list.d/")
    assert not installed(host, "redis-server")


# --- redis -----------------------------------------------------------------------------------

REDIS_PATHS = ("/etc/redis",)


def redis_cli(host, password, *args, port=6379):
    # The password travels in REDISCLI_AUTH (stdin of ssh here), never on argv.
    return host.run(
        f"read -r REDISCLI_AUTH && export REDISCLI_AUTH && redis-cli -p {port} {shlex.join(args)}",
        input=password + "\n",
    ).stdout.strip()


def test_redis_answers_with_its_password_reruns_unchanged_and_uninstalls(host):
    password = secrets.token_urlsafe(18)
    inputs = {"password": password, "maxmemory_mb": 64, "maxmemory_policy": "allkeys-lru"}
    # No password and no installed one to keep: exit 1 before anything is installed.
    no_password = run_script(host, "redis", maxmemory_mb=64)
    failed_with(no_password, 1)
    assert "password is required" in no_password.stderr
    assert not installed(host, "redis-server")
    succeeded(run_script(host, "redis", **inputs), "changed")
    assert redis_cli(host, password, "ping") == "PONG"
    unauthenticated = host.run("redis-cli -p 6379 ping")
    assert "NOAUTH" in unauthenticated.stdout + unauthenticated.stderr
    assert redis_cli(host, "wrong-password-123", "ping") != "PONG"
    assert redis_cli(host, password, "config", "get", "maxmemory").split() == [
        "maxmemory",
        str(64 * 1024 * 1024),
    ]
    assert host.run("stat -c '%a %U:%G' /etc/redis/portal.conf").stdout.strip() == "640 redis:redis"

    before = snapshot(host, REDIS_PATHS, processes="redis-server")
    succeeded(run_script(host, "redis", **inputs), "unchanged")
    assert snapshot(host, REDIS_PATHS, processes="redis-server") == before

    failed_with(run_script(host, "redis", **{**inputs, "password": "has a space 1234567"}), 1)
    failed_with(run_script(host, "redis", **{**inputs, "maxmemory_policy": "random"}), 1)
    assert snapshot(host, REDIS_PATHS, processes="redis-server") == before

    succeeded(run_script(host, "redis", **{**inputs, "port": 6380}), "changed")
    assert redis_cli(host, password, "ping", port=6380) == "PONG"

    # A later run without the (generated) password keeps the installed one.
    before = snapshot(host, REDIS_PATHS, processes="redis-server")
    kept = {**inputs, "port": 6380}
    del kept["password"]
    succeeded(run_script(host, "redis", **kept), "unchanged")
    assert snapshot(host, REDIS_PATHS, processes="redis-server") == before
    assert redis_cli(host, password, "ping", port=6380) == "PONG"

    succeeded(run_script(host, "redis", "uninstall.sh"))
    assert not installed(host, "redis-server")
    assert run_script(host, "redis", "uninstall.sh").returncode == 0


# --- postgresql ------------------------------------------------------------------------------


def owner_query(host, owner, password, database, sql):
    """psql as the owner over TCP with a 0600 password file (stdin to the host)."""
    result = host.run(
        "f=$(mktemp) && cat > $f && PGPASSFILE=$f psql -X -w -t -A -h 127.0.0.1 "
        f"-U {owner} -d {database} -c {shlex.quote(sql)}; rc=$?; rm -f $f; exit $rc",
        input=f"*:*:*:{owner}:{pgpass_escape(password)}\n",
    )
    return result.returncode, result.stdout.strip()


def pgpass_escape(text):
    return text.replace("\\", "\\\\").replace(":", "\\:")


def admin_query(host, sql):
    return host.run(f"runuser -u postgres -- psql -X -t -A -c {shlex.quote(sql)}").stdout.strip()


def test_postgresql_creates_owner_and_database_idempotently_and_uninstalls(host):
    password = secrets.token_urlsafe(18) + ":\\'"  # passfile and SQL quoting both matter
    inputs = {"database_name": "shop", "owner_name": "shop_owner", "owner_password": password}
    names = {"database_name": "shop", "owner_name": "shop_owner"}
    # No password and no role to keep it: exit 1 before PostgreSQL is installed.
    no_password = run_script(host, "postgresql", **names)
    failed_with(no_password, 1)
    assert "owner_password is required to create the role" in no_password.stderr
    assert not installed(host, "postgresql")
    succeeded(run_script(host, "postgresql", **inputs), "changed")
    assert owner_query(host, "shop_owner", password, "shop", "SELECT current_user") == (
        0,
        "shop_owner",
    )
    assert (
        admin_query(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='shop'")
        == "shop_owner"
    )

    state_sql = (
        "SELECT rolpassword, (SELECT oid FROM pg_database WHERE datname='shop')"
        " FROM pg_authid WHERE rolname='shop_owner'"
    )
    before = admin_query(host, state_sql)
    succeeded(run_script(host, "postgresql", **inputs), "unchanged")
    assert admin_query(host, state_sql) == before  # same password hash (salt), same database

    new_password = secrets.token_urlsafe(18)
    succeeded(
        run_script(host, "postgresql", **{**inputs, "owner_password": new_password}), "changed"
    )
    assert owner_query(host, "shop_owner", new_password, "shop", "SELECT 1") == (0, "1")
    assert owner_query(host, "shop_owner", password, "shop", "SELECT 1")[0] != 0

    # A later run without the (generated) password keeps the role's: its clients still connect.
    before = admin_query(host, state_sql)
    succeeded(run_script(host, "postgresql", **names), "unchanged")
    assert admin_query(host, state_sql) == before
    assert owner_query(host, "shop_owner", new_password, "shop", "SELECT 1") == (0, "1")
    # ... and a role to create needs one: exit 1, no role, no database.
    newcomer = run_script(host, "postgresql", database_name="other", owner_name="newcomer")
    failed_with(newcomer, 1)
    assert "owner_password is required to create the role" in newcomer.stderr
    assert admin_query(host, "SELECT count(*) FROM pg_roles WHERE rolname='newcomer'") == "0"
    assert admin_query(host, "SELECT count(*) FROM pg_database WHERE datname='other'") == "0"

    # Someone else's database is never taken over: exit 3 before any change (no new role).
    result = run_script(host, "postgresql", **{**inputs, "owner_name": "intruder"})
    failed_with(result, 3)
    assert admin_query(host, "SELECT count(*) FROM pg_roles WHERE rolname='intruder'") == "0"
    failed_with(run_script(host, "postgresql", **{**inputs, "owner_name": "pg_owner"}), 1)
    failed_with(run_script(host, "postgresql", **{**inputs, "database_name": "Shop-DB"}), 1)

    # The passwords reached neither the server's log nor a file the script left behind.
    for secret in (password, new_password):
        leaks = host.run(
            "grep -rlF -D skip -f /dev/stdin /var/log /tmp /run /root /var/lib/portal-installers",
            input=secret + "\n",
        )
        assert leaks.stdout == "", leaks.stdout

    succeeded(run_script(host, "postgresql", "uninstall.sh", **inputs))
    assert not installed(host, "postgresql")
    assert run_script(host, "postgresql", "uninstall.sh", **inputs).returncode == 0


# --- static-site (conditional inputs) --------------------------------------------------------

SITE = "site.example.test"
SITE_PATHS = ("/etc/nginx", "/etc/ssl/portal-static-site", "/var/www/portal-static-site")


def https(host, *options):
    return fetch(host, f"https://{SITE}/", "--resolve", f"{SITE}:443:127.0.0.1", *options)


def served_certificate(host):
    return host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {SITE} </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256 -subject"
    ).stdout


def test_static_site_http_then_self_signed_then_provided_certificate(host):
    succeeded(run_script(host, "static-site", server_name=SITE), "changed")
    assert f"<h1>{SITE}</h1>" in fetch(host, "http://127.0.0.1/", "-H", f"Host: {SITE}").stdout

    tls = {"server_name": SITE, "tls": "true", "certificate_mode": "self-signed"}
    succeeded(run_script(host, "static-site", **tls), "changed")
    assert f"<h1>{SITE}</h1>" in https(host, "-k").stdout
    assert https(host).returncode != 0  # self-signed: not trusted without -k
    assert f"CN = {SITE}" in served_certificate(host) or f"CN={SITE}" in served_certificate(host)
    redirect = fetch(
        host, "http://127.0.0.1/", "-H", f"Host: {SITE}", "-o", "/dev/null", "-w", "%{http_code}"
    )
    assert redirect.stdout == "301"

    before = snapshot(host, SITE_PATHS, processes="nginx")
    succeeded(run_script(host, "static-site", **tls), "unchanged")  # the certificate is kept
    assert snapshot(host, SITE_PATHS, processes="nginx") == before

    host.run(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=site.example.test "
        "-keyout /root/provided.key -out /root/provided.crt 2>/dev/null && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=other "
        "-keyout /root/other.key -out /root/other.crt 2>/dev/null",
        check=True,
    )
    certificate = host.run("cat /root/provided.crt", check=True).stdout
    key = host.run("cat /root/provided.key", check=True).stdout
    other_key = host.run(
        "cat /root/other.key && rm /root/other.* /root/provided.key", check=True
    ).stdout
    provided = {
        **tls,
        "certificate_mode": "provided",
        "certificate": certificate,
        "private_key": key,
    }
    succeeded(run_script(host, "static-site", **provided), "changed")
    expected = host.run("openssl x509 -noout -fingerprint -sha256 -in /root/provided.crt").stdout
    assert expected.strip() in served_certificate(host)
    key_file = f"/etc/ssl/portal-static-site/{SITE}.key"
    assert host.run(f"stat -c '%a %U' {key_file}").stdout.strip() == "600 root"
    succeeded(run_script(host, "static-site", **provided), "unchanged")

    failed_with(run_script(host, "static-site", **{**provided, "private_key": other_key}), 1)
    failed_with(run_script(host, "static-site", **{**provided, "certificate": "not a cert"}), 1)
    failed_with(run_script(host, "static-site", **{**tls, "certificate_mode": "provided"}), 1)
    assert expected.strip() in served_certificate(host)  # still the provided one

    succeeded(run_script(host, "static-site", server_name=SITE, tls="false"), "changed")
    assert host.run(f"ls /etc/ssl/portal-static-site/{SITE}.crt {key_file}").stdout == ""
    assert f"<h1>{SITE}</h1>" in fetch(host, "http://127.0.0.1/", "-H", f"Host: {SITE}").stdout

    succeeded(run_script(host, "static-site", "uninstall.sh", server_name=SITE))
    assert not installed(host, "nginx")
    assert run_script(host, "static-site", "uninstall.sh", server_name=SITE).returncode == 0
