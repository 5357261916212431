"""ansible-playbook as the job runner starts it: Python's cyclic garbage collector paused while
Ansible imports, then everything imported frozen (portal.jobs.callback_plugin.controller_command).

    python ansible_playbook.py /path/to/ansible-playbook [ansible-playbook's arguments]

Importing Ansible creates a few hundred thousand objects that all live until the process
exits; with the collector running, its collections walk the growing heap again and again,
30-40 ms of a run's start here (bench/README.md, "The controller's heap"). Paused, nothing is
walked; frozen, the collections of the run itself (resumed at once) never walk them either.
A script of its own, alone in its directory (Python puts a script's directory first on
``sys.path``), and it imports nothing of the portal: it is ansible-playbook's process.
"""

import gc
import sys


def main() -> None:
    gc.disable()
    from ansible.cli.playbook import main as ansible_playbook

    gc.freeze()
    gc.enable()
    sys.argv = sys.argv[1:]  # ansible-playbook's own path first, as when it runs directly
    sys.exit(ansible_playbook())


if __name__ == "__main__":
    main()
