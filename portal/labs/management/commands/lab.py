"""Operate lab sessions from the shell, through the same actions as the admin and the API.

    manage.py lab assign intro-k8s alice bob --minutes 120
    manage.py lab retry 42
    manage.py lab expire-now 42
    manage.py lab list --status failed

``assign`` prints one tab-separated line per user: username, session id, namespace, status,
token (shown only here; only its hash is stored).
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.core.errors import PortalError
from portal.labs import actions
from portal.labs.choices import SessionStatus
from portal.labs.models import Lab, LabSession

MAX_MINUTES = 60 * 24 * 366


def _minutes(value: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        raise CommandError(f"--minutes {value!r}: not a whole number") from None
    if not 1 <= minutes <= MAX_MINUTES:
        raise CommandError(f"--minutes {minutes}: must be between 1 and {MAX_MINUTES}")
    return minutes


def _time_left(session: LabSession) -> str:
    minutes = int(session.time_left.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes > 0 else "-"


def _error(exc: PortalError) -> str:
    return f"{exc.field or 'error'}: {exc.message}"


class Command(BaseCommand):
    help = "Lab sessions: assign a lab to users, retry a failed session, expire one, list them."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="{assign,retry,expire-now,list}"
        )
        assign = commands.add_parser("assign", help="give users a session of a lab, now")
        assign.add_argument("lab_name")
        assign.add_argument("usernames", nargs="+", metavar="USERNAME")
        assign.add_argument(
            "--minutes",
            type=str,
            default=None,
            help="length of access (default: the lab's default duration)",
        )
        retry = commands.add_parser("retry", help="provision a failed session again")
        retry.add_argument("session_id", type=int)
        expire = commands.add_parser("expire-now", help="end a session and clean it up")
        expire.add_argument("session_id", type=int)
        listing = commands.add_parser("list", help="list sessions, newest first")
        listing.add_argument("--status", choices=SessionStatus.values)
        listing.add_argument("--lab", dest="lab_name", help="only this lab's sessions")

    def handle(self, *args, subcommand, **options):
        handler = {
            "assign": self.assign,
            "retry": self.retry,
            "expire-now": self.expire_now,
            "list": self.list_sessions,
        }[subcommand]
        try:
            handler(**options)
        except PortalError as exc:
            raise CommandError(_error(exc)) from None

    # --- subcommands ----------------------------------------------------------------------

    def assign(self, *, lab_name, usernames, minutes, **_):
        lab = self._lab(lab_name)
        actions.check_lab_usable(lab)
        duration = timedelta(minutes=_minutes(minutes)) if minutes is not None else None
        users = self._users(usernames)
        failed = 0
        for user, session, token, error in actions.do_assign_many(lab, users, duration=duration):
            if error is not None:
                failed += 1
                self.stderr.write(f"{user.username}\t{_error(error)}")
            else:
                self.stdout.write(
                    "\t".join(
                        [user.username, str(session.pk), session.namespace, session.status, token]
                    )
                )
        if failed:
            raise CommandError(f"{failed} of {len(users)} user(s) not assigned")

    def retry(self, *, session_id, **_):
        session = actions.do_retry(self._session(session_id))
        self.stdout.write(f"session {session.pk}: {session.status}")

    def expire_now(self, *, session_id, **_):
        session = actions.do_end(self._session(session_id))
        self.stdout.write(f"session {session.pk}: {session.status}")

    def list_sessions(self, *, status=None, lab_name=None, **_):
        sessions = LabSession.objects.select_related("lab", "user").order_by("-created_at")
        if status:
            sessions = sessions.filter(status=status)
        if lab_name:
            sessions = sessions.filter(lab=self._lab(lab_name))
        self.stdout.write(
            "\t".join(["id", "lab", "user", "namespace", "status", "time_left", "expiry"])
        )
        for session in sessions:
            shown = session.status + (" (waiting for server)" if session.waiting_for_server else "")
            self.stdout.write(
                "\t".join(
                    [
                        str(session.pk),
                        session.lab.name,
                        session.user.username,
                        session.namespace,
                        shown,
                        _time_left(session),
                        session.access_expiry.isoformat(timespec="seconds"),
                    ]
                )
            )

    # --- lookups --------------------------------------------------------------------------

    def _lab(self, name: str) -> Lab:
        lab = Lab.objects.select_related("server").filter(name=name).first()
        if lab is None:
            raise CommandError(f"unknown lab {name!r}")
        return lab

    def _users(self, usernames: list[str]) -> list:
        usernames = list(dict.fromkeys(usernames))
        found = {
            u.username: u
            for u in get_user_model().objects.filter(username__in=usernames, is_active=True)
        }
        unknown = [name for name in usernames if name not in found]
        if unknown:
            raise CommandError("unknown or inactive user(s): " + ", ".join(map(repr, unknown)))
        return [found[name] for name in usernames]

    def _session(self, session_id: int) -> LabSession:
        session = (
            LabSession.objects.select_related("lab", "lab__server", "user")
            .filter(pk=session_id)
            .first()
        )
        if session is None:
            raise CommandError(f"unknown session {session_id}")
        return session
