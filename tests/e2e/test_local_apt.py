"""The test hosts' local Debian repository (tests/hosts/apt_repo.py): hosts without a route
out install packages with plain `apt-get`, as an installer's install.sh does."""

from tests.hosts.apt_repo import HOST_SOURCE_LINE

INSTALL_NGINX = "apt-get update && apt-get install -y nginx"


def test_the_local_repository_is_the_hosts_only_apt_source(scratch_host):
    sources = scratch_host.run(
        "grep -rhsE '^[[:space:]]*(deb|URIs:)' /etc/apt/sources.list /etc/apt/sources.list.d/",
        check=True,
    )
    assert sources.stdout.splitlines() == [HOST_SOURCE_LINE.strip()]
    assert scratch_host.run("ip route show default", check=True).stdout.strip() == ""


def test_apt_get_installs_nginx_offline_and_it_serves(scratch_host):
    result = scratch_host.run(
        f"export DEBIAN_FRONTEND=noninteractive; {INSTALL_NGINX}", timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "E:" not in result.stderr
    page = scratch_host.run("curl -fsS http://localhost/")
    assert page.returncode == 0, page.stderr
    assert "Welcome to nginx" in page.stdout
    assert scratch_host.run("systemctl is-active nginx").stdout.strip() == "active"
