"""The installers' tests read the test catalogue (tests/installers/catalogue), never the
repo's installers/, and a generation file of their own."""

import copy
from pathlib import Path

import pytest
import yaml

from portal.installers import catalogue

CATALOGUE = Path(__file__).resolve().parent / "catalogue"

# A valid manifest to change one thing in (the tests of each lint rule).
BASE = {
    "id": "app",
    "name": "App",
    "version": "1.0",
    "description": "An app.",
    "category": "tools",
    "author": "Tests",
    "os_requirements": {"family": ["debian"], "min_version": "12"},
    "timeout_seconds": 60,
    "idempotent": True,
    "inputs": [],
}


@pytest.fixture(autouse=True)
def test_catalogue(settings, tmp_path):
    settings.INSTALLERS_DIR = CATALOGUE
    settings.INSTALLERS_GENERATION_FILE = tmp_path / "installers.generation"
    catalogue.reload()
    yield
    catalogue.mark_stale()  # the next test (or module) reads its own settings


@pytest.fixture
def make_installer(tmp_path):
    """make_installer(inputs=[...], **fields) -> the directory of a new installer under
    tmp_path/catalogue; install.sh exists unless ``scripts`` says otherwise."""
    root = tmp_path / "catalogue"

    def make(directory: str = "app", scripts=("install.sh",), raw: str | None = None, **fields):
        data = copy.deepcopy(BASE)
        data.update(fields)
        path = root / directory
        path.mkdir(parents=True, exist_ok=True)
        (path / "manifest.yml").write_text(raw if raw is not None else yaml.safe_dump(data))
        for script in scripts:
            (path / script).write_text("#!/bin/sh\nexit 0\n")
        return path

    return make
