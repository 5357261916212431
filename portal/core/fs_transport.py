"""Celery's filesystem transport (the embedded default), with atomic message files.

kombu's filesystem ``_put`` creates the message file, then writes it; a worker polling the
folder can read it empty and die with "Unrecoverable error: JSONDecodeError" (kombu#1551).
Writing to a temporary name and renaming makes a message appear whole or not at all.
Its folders are made when a channel first opens (settings only name them).
"""

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    """Writes each message aside, then renames it into the queue folder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folders = [self.data_folder_in, self.data_folder_out, self.control_folder]
        if self.store_processed:
            folders.append(self.processed_folder)
        for folder in folders:
            Path(folder).mkdir(parents=True, exist_ok=True)

    # kombu's filesystem Channel overrides the base's signature this way too
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        temporary = final + ".tmp"  # the reader only takes names ending in .<queue>.msg
        with open(temporary, "wb", buffering=0) as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.rename(temporary, final)


class Transport(filesystem.Transport):
    """Registered as ``filesystem://`` by portal.celery."""

    Channel = Channel
