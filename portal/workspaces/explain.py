"""A workspace's status reason in words a customer understands, with what to do next.

The raw reason (an Ansible message, a job status) stays on the workspace and in the card's
details; :func:`status_help` is what the card and the API (``status_help``) show first.
One table, read top to bottom: the first rule that matches wins.
"""

import re

from portal.workspaces.choices import WorkspaceStatus as S

CONTACT = "If it happens again, contact support and quote the details below."
FAILED = frozenset({S.FAILED})  # a failure's advice is for a failed workspace only

# (pattern on the raw reason, statuses it applies to or None for any, the sentence)
RULES: list[tuple[re.Pattern, frozenset | None, str]] = [
    (
        re.compile(r"^waiting for node|will be retried at", re.I),
        None,
        "The machine that hosts the workspace does not answer right now; the portal tries "
        "again by itself. Nothing to do yet.",
    ),
    (
        re.compile(r"rollback failed", re.I),
        FAILED,
        "Setting up the workspace failed, and undoing the steps already done did not finish "
        f"either. Delete the workspace to clean up, then create it again. {CONTACT}",
    ),
    (
        re.compile(r"^delete failed: node .* unreachable", re.I),
        FAILED,
        "The workspace could not be deleted because its host did not answer. Delete it again "
        "later; an administrator can also remove it for you.",
    ),
    (
        re.compile(r"^delete (failed|could not start)", re.I),
        FAILED,
        f"Deleting the workspace did not finish. Delete it again to retry. {CONTACT}",
    ),
    (
        re.compile(r"traefik did not show the route|route .* not confirmed", re.I),
        FAILED,
        "The workspace was set up, but its web address could not be confirmed in time, so it "
        f"was undone. Delete it and create it again in a few minutes. {CONTACT}",
    ),
    (
        re.compile(r"\bunreachable\b", re.I),
        FAILED,
        "The machine that hosts the workspace could not be reached, so nothing was set up on "
        "it. Delete the workspace and create it again later; the administrators see "
        "unreachable hosts.",
    ),
    (
        re.compile(r"no workspace node is available|no free port|no_capacity|no_node", re.I),
        FAILED,
        "There is no room for a new workspace right now. The administrators have been told; "
        "please try again later.",
    ),
    (
        re.compile(r"plan allows", re.I),
        FAILED,
        "Your plan's workspace limit is reached. Delete a workspace you no longer need, or ask "
        "your account owner to upgrade the plan.",
    ),
    (
        re.compile(r"quota|qgroup|no space left|disk full", re.I),
        FAILED,
        "The disk space for the workspace could not be set up on its host. Delete the "
        f"workspace and create it again later. {CONTACT}",
    ),
    (
        re.compile(r"\btime(d)? ?out\b|ended timeout|took too long", re.I),
        FAILED,
        "Setting up the workspace took too long and was stopped. Delete it and create it "
        f"again. {CONTACT}",
    ),
    (
        re.compile(r"\blost\b", re.I),
        FAILED,
        "The worker running the job stopped unexpectedly. Delete the workspace and create it "
        f"again. {CONTACT}",
    ),
    (
        re.compile(r"rolling back|rolled back", re.I),
        FAILED,
        "Setting up the workspace failed part way; the steps already done were undone. Delete "
        f"it and create it again. {CONTACT}",
    ),
    (
        re.compile(r"^(start|stop|restart|logs|status) failed", re.I),
        None,
        f"The last operation did not work; the workspace is otherwise unchanged. Try it again. "
        f"{CONTACT}",
    ),
]

GENERIC_FAILED = (
    "Something went wrong with this workspace. Delete it and create it again. " + CONTACT
)


def status_help(status: str, reason: str) -> str:
    """A plain sentence and what to do, or "" when the status needs no explaining."""
    reason = reason or ""
    for pattern, statuses, text in RULES:
        if (statuses is None or status in statuses) and pattern.search(reason):
            return text
    return GENERIC_FAILED if status == S.FAILED else ""
