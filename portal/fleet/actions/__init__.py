"""The fleet's actions: every change of a VM, an update or a rollout.

vms.py        create a VM (node + profile), status changes, seed data
operate.py    restart and rebuild (jobs; one action at a time per VM)
rollouts.py   updates rolled out in waves (start, advance, pause, resume, abort)
"""


def register_job_actions() -> None:
    """The fleet's job actions (restart, rebuild, update), registered with the job engine."""
    from portal.fleet.actions import operate, rollouts

    operate.register_job_actions()
    rollouts.register_job_actions()
