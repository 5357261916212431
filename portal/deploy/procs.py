"""`make run`: web, worker and beat in one foreground command (honcho), Ctrl-C stops all.

honcho gives processes 5 s before SIGKILL; a Celery worker's warm shutdown on the
filesystem transport takes longer (it finishes its poll and closes its pool), so wait more.
"""

import sys

import honcho.manager
from honcho.command import main

honcho.manager.KILL_WAIT = 20

if __name__ == "__main__":
    sys.exit(main())
