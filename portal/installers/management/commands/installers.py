"""The installer catalogue from the shell.

    manage.py installers validate     every manifest against the schema and the lint, and
                                      the scripts' shared helper copies alike
                                      (portal/installers/shared_helpers.py); one line
                                      per problem, exit 1 if there is any
    manage.py installers list         id, version, sha256 prefix, name (tab-separated)
    manage.py installers reload       tell every web and worker process to reload

Each reads INSTALLERS_DIR (``validate``: or --dir) fresh from disk, so ``make lint`` checks
what is in the repo, not what a process loaded; each names every problem on stderr and exits
1 if there is any (``reload`` still announces the reload: the good installers load).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.installers import catalogue, shared_helpers
from portal.installers.loader import Loaded, display, load_catalogue
from portal.installers.manifest import Problem


class Command(BaseCommand):
    help = "The installer catalogue: validate the manifests, list them, reload them."
    requires_system_checks: list[str] = []  # make lint runs it: only the manifests matter

    def add_arguments(self, parser):
        commands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="{validate,list,reload}"
        )
        validate = commands.add_parser("validate", help="check every manifest (exit 1: problems)")
        validate.add_argument("--dir", type=Path, help="a catalogue other than INSTALLERS_DIR")
        commands.add_parser("list", help="the installers of the catalogue")
        commands.add_parser("reload", help="have web and worker processes reload the catalogue")

    def handle(self, *args, subcommand, **options):
        {"validate": self.validate, "list": self.list, "reload": self.reload}[subcommand](**options)

    def validate(self, dir=None, **options):
        loaded = load_catalogue(Path(dir or settings.INSTALLERS_DIR))
        directories = [manifest.directory for manifest in loaded.manifests.values()]
        drifted = [
            Problem(display(Path(file)), "", message)
            for file, message in shared_helpers.drift(directories)
        ]
        for problem in drifted:
            self.stderr.write(str(problem))
        self._fail_on_problems(loaded)
        if drifted:
            raise CommandError(f"{len(drifted)} shared helper copies differ: make them alike")
        self.stdout.write(f"{len(loaded.manifests)} installers, no problems.")

    def list(self, **options):
        loaded = load_catalogue(Path(settings.INSTALLERS_DIR))
        for manifest in sorted(loaded.manifests.values(), key=lambda m: m.id):
            self.stdout.write(
                f"{manifest.id}\t{manifest.version}\t{manifest.sha256[:12]}\t{manifest.name}"
            )
        self._fail_on_problems(loaded)

    def reload(self, **options):
        loaded = load_catalogue(Path(settings.INSTALLERS_DIR))
        catalogue.announce_reload()
        self.stdout.write(
            f"Reload announced ({catalogue.generation_file()}): {len(loaded.manifests)} "
            "installers; processes reload before their next use."
        )
        self._fail_on_problems(loaded)

    def _fail_on_problems(self, loaded: Loaded) -> None:
        for problem in loaded.problems:
            self.stderr.write(str(problem))
        if loaded.problems:
            count = len(loaded.problems)
            noun = "problem" if count == 1 else "problems"
            raise CommandError(f"{count} {noun}: those installers are left out of the catalogue")
