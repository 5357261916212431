"""Launch specs are signed (HMAC with SECRET_KEY); the worker runs only what verifies.

The signature covers everything that decides what runs where: a job altered in the database
(spec no longer matches) is refused; a message that does not carry the job's signature
(forged, or left in the broker by another database) is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core import signing
from django.utils.crypto import constant_time_compare

if TYPE_CHECKING:
    from portal.jobs.models import Job

SALT = "portal.jobs.launch.v1"


def launch_spec(job: Job, node_ids: Iterable[int] | None = None) -> dict[str, Any]:
    if node_ids is None:
        node_ids = job.nodes.values_list("pk", flat=True)
    return {
        "id": job.pk,
        "playbook": job.playbook,
        "limit": job.limit,
        "nodes": sorted(node_ids),
        "extra_vars": job.extra_vars,
        "secret_vars": hashlib.sha256(job.secret_vars.encode()).hexdigest(),
        "check_mode": job.check_mode,
        "action": job.action,
        "target": [job.target_type_id, job.target_id],
        "timeout": [job.timeout, job.idle_timeout],
    }


def _digest(job: Job, node_ids: Iterable[int] | None = None) -> str:
    canonical = json.dumps(launch_spec(job, node_ids), sort_keys=True, separators=(",", ":"))
    return signing.Signer(salt=SALT, algorithm="sha256").signature(canonical)


def sign(job: Job, node_ids: Iterable[int] | None = None) -> str:
    """``node_ids``: the job's nodes when the caller knows them (saves a query)."""
    return _digest(job, node_ids)


def carries(job: Job, signature: str) -> bool:
    """The message's signature is the one stored when the job was launched."""
    return bool(signature) and constant_time_compare(job.signature, signature)


def verify(job: Job, signature: str) -> bool:
    return bool(signature) and constant_time_compare(_digest(job), signature)
