#!/usr/bin/env python
"""Django's command-line utility for the portal."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from portal.entrypoint import load_settings_or_exit

    load_settings_or_exit()
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:  # database down or missing: one line, not a traceback
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        sys.stderr.write(f"portal: database unavailable: {first_line}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
