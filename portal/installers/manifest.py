"""What one installer is, once its ``manifest.yml`` passed the schema and the lint.

Frozen values: the catalogue hands the same objects to every request and task, and a
reload replaces them instead of changing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.installers.choices import InputType
from portal.installers.expressions import Expression

INPUT_TYPES = tuple(InputType.values)
# Environment names an input may not take (``ld_preload`` would become LD_PRELOAD).
RESERVED_ENVIRONMENT = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "OLDPWD",
        "IFS",
        "ENV",
        "BASH_ENV",
        "CDPATH",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "GLOBIGNORE",
        "TMPDIR",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TZ",
        "DEBIAN_FRONTEND",
        "PROVISIONING_JOB",
    }
)
RESERVED_ENVIRONMENT_PREFIXES = ("LD_", "LC_", "BASH_FUNC_", "PYTHON", "PERL", "RUBY", "NODE_")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalogue entry: ``installers/nginx/manifest.yml`` and
    ``inputs[2].default`` and what is wrong."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.where}: {self.message}"
            if self.where
            else (f"{self.file}: {self.message}")
        )


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    label: str
    description: str = ""
    required: bool = False
    default: Any = None  # None: no default
    pattern: str | None = None  # matched against the whole value (re.fullmatch)
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | float | None = None
    max_value: int | float | None = None
    allowed_values: tuple[Any, ...] | None = None
    step: int | float | None = None  # number only
    visible_if: Expression | None = None
    sensitive: bool = False  # always true for passwords
    generate: bool = False  # password only: the portal makes one when none is given

    @property
    def environment_name(self) -> str:
        return self.name.upper()

    @property
    def has_default(self) -> bool:
        return self.default is not None


@dataclass(frozen=True)
class Manifest:
    id: str
    name: str
    version: str
    description: str
    category: str
    author: str
    os_family: tuple[str, ...]
    os_min_version: str
    install_script: str
    timeout_seconds: int
    idempotent: bool
    directory: Path
    sha256: str  # over every file of the directory (relative path and content)
    files: tuple[str, ...] = ()  # those files, relative to the directory, sorted
    uninstall_script: str | None = None
    min_ram_mb: int | None = None
    min_disk_mb: int | None = None
    inputs: tuple[Input, ...] = field(default=())

    def input(self, name: str) -> Input | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    @property
    def install_path(self) -> Path:
        return self.directory / self.install_script

    @property
    def uninstall_path(self) -> Path | None:
        return self.directory / self.uninstall_script if self.uninstall_script else None
