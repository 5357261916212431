"""The per-process catalogue: lookups only by loaded id, reload by generation file, a bad
manifest left out and logged."""

import logging
import shutil

import pytest

from portal.core.errors import Conflict, NotFound
from portal.installers import catalogue, loader
from tests.installers.conftest import CATALOGUE


def test_get_and_all():
    assert catalogue.get("web-server").name == "Web server"
    assert [m.id for m in catalogue.all_manifests()] == ["minimal", "web-server"]


@pytest.mark.parametrize(
    "installer_id",
    [
        "../x",
        "nginx/../../etc",
        "web-server/../minimal",
        "/etc/passwd",
        "",
        ".",
        "..",
        "WEB-SERVER",
        "web-server ",
        None,
        42,
        ["web-server"],
        "x" * 10_000,
    ],
)
def test_anything_not_in_the_catalogue_is_not_found(monkeypatch, installer_id):
    catalogue.catalogue()

    def no_disk(*args, **kwargs):
        raise AssertionError("a lookup read the disk")

    monkeypatch.setattr(loader, "load_installer", no_disk)
    monkeypatch.setattr(loader, "load_catalogue", no_disk)
    with pytest.raises(NotFound) as refused:
        catalogue.get(installer_id)
    assert refused.value.status_code == 404
    assert refused.value.field == "installer"
    assert len(refused.value.message) < 120


def _copy_catalogue(settings, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(CATALOGUE, root)
    settings.INSTALLERS_DIR = root
    return root


def test_a_reload_announced_reaches_the_next_use(settings, tmp_path):
    root = _copy_catalogue(settings, tmp_path)
    assert catalogue.get("minimal").version == "0.1"
    manifest = root / "minimal" / "manifest.yml"
    manifest.write_text(manifest.read_text().replace('version: "0.1"', 'version: "0.2"'))
    assert catalogue.get("minimal").version == "0.1"  # not announced: the loaded one
    catalogue.announce_reload()
    assert catalogue.get("minimal").version == "0.2"
    catalogue.announce_reload()  # a second announcement is another generation
    first = catalogue.catalogue()
    assert catalogue.catalogue() is first  # and it is read once


def test_mark_stale_reloads_before_the_next_use(settings, tmp_path):
    root = _copy_catalogue(settings, tmp_path)
    catalogue.catalogue()
    shutil.rmtree(root / "minimal")
    catalogue.mark_stale()
    with pytest.raises(NotFound):
        catalogue.get("minimal")


def test_a_bad_manifest_is_left_out_and_logged(settings, tmp_path, caplog):
    root = _copy_catalogue(settings, tmp_path)
    (root / "web-server" / "manifest.yml").write_text("id: web-server\n")
    with caplog.at_level(logging.ERROR, logger="portal.installers.catalogue"):
        loaded = catalogue.reload()
    assert list(loaded.manifests) == ["minimal"]
    assert "web-server/manifest.yml" in caplog.text
    assert any("web-server" in str(problem) for problem in catalogue.problems())


def test_a_missing_catalogue_directory_is_an_empty_catalogue(settings, tmp_path):
    settings.INSTALLERS_DIR = tmp_path / "none"
    assert catalogue.all_manifests() == []
    assert "is not a directory" in str(catalogue.problems()[0])


def test_get_exact_runs_only_the_checked_version(settings, tmp_path):
    root = _copy_catalogue(settings, tmp_path)
    checked = catalogue.get("minimal")
    assert catalogue.get_exact("minimal", checked.sha256) == checked
    (root / "minimal" / "install.sh").write_text("#!/bin/sh\nexit 3\n")
    with pytest.raises(Conflict) as changed:  # the files on disk are not the ones checked
        catalogue.get_exact("minimal", checked.sha256)
    assert changed.value.status_code == 409
    assert "changed since the request" in changed.value.message
    (root / "minimal" / "manifest.yml").write_text("id: minimal\n")
    with pytest.raises(Conflict, match="is invalid now"):
        catalogue.get_exact("minimal", checked.sha256)
    with pytest.raises(NotFound):
        catalogue.get_exact("../minimal", checked.sha256)
