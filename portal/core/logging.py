"""Log formatters: readable lines by default, JSON lines with ``LOG_FORMAT=json``.

Context ids (``job_id``, ``object_type``, ``object_id``, ``customer_id``) are passed with
``logger.info(..., extra={"job_id": job.pk})`` and appear in both formats.
"""

import logging

from pythonjsonlogger.json import JsonFormatter

CONTEXT_KEYS = ("job_id", "object_type", "object_id", "customer_id", "node")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [f"{key}={getattr(record, key)}" for key in CONTEXT_KEYS if hasattr(record, key)]
        return f"{line} [{' '.join(context)}]" if context else line


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "timestamp", "levelname": "level", "message": "event"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
