"""Photos and audio recorded at a visit: what their bytes are, and where they
are kept (``config/cases.toml`` ``[attachments]``).

* :func:`sniff`: the media type found from the bytes' magic numbers (the
  ``filetype`` library), never from the Content-Type the client sent; the
  few aliases it knows under another name are mapped to the usual one;
* :class:`Blobs`: the bytes of an attachment, kept in the store (SQLite BLOB,
  Redis key) or, when ``folder`` is set, as a file named by the attachment id
  in that folder (written to a temporary name, then renamed: a reader never
  sees half a file); the store keeps the record either way.

The record of an attachment (:func:`new_record`) names the visit, the case,
the crew of the stop, the media type, size and SHA-256, and who uploaded it
(role and token id: no names) and when. It holds no personal data; the bytes
may (a face, a voice), so only the roles of ``readers`` read them back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filetype

from app.store.base import Store

#: Names ``filetype`` gives some types, mapped to the registered ones.
ALIASES = {"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/x-m4a": "audio/mp4"}
#: Bytes read to find the type (every signature ``filetype`` knows starts within them).
SNIFF_BYTES = 8192


def sniff(content: bytes) -> str | None:
    """The media type of ``content`` found from its first bytes; None when unknown."""
    kind = filetype.guess(content[:SNIFF_BYTES])
    if kind is None:
        return None
    mime = str(kind.mime)
    return ALIASES.get(mime, mime)


def kind_of(media_type: str) -> str:
    """``photo`` for an image, ``audio`` for a sound."""
    return "photo" if media_type.startswith("image/") else "audio"


def new_record(*, date: str, visit_id: str, case_id: str, agent_id: str | None, media_type: str, content: bytes,
               uploaded_by: dict[str, Any], uploaded_at: str, label: str | None) -> dict[str, Any]:
    """The record of a new attachment (its id made here)."""
    return {
        "attachment_id": f"att_{uuid.uuid4().hex}",
        "date": date,
        "visit_id": visit_id,
        "case_id": case_id,
        "agent_id": agent_id,
        "kind": kind_of(media_type),
        "content_type": media_type,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "label": label,
        "uploaded_by": uploaded_by,
        "uploaded_at": uploaded_at,
    }


@dataclass(frozen=True)
class Blobs:
    """Where the bytes of attachments go: ``folder`` (a path) or the store."""

    store: Store
    folder: str = ""

    def _path(self, attachment_id: str) -> Path:
        if not attachment_id.startswith("att_") or not attachment_id[4:].isalnum():
            raise ValueError("not an attachment id")  # never a path made of what a client sent
        return Path(self.folder) / attachment_id[4:6] / attachment_id

    def save(self, record: dict[str, Any], content: bytes) -> None:
        """Keep the bytes and the record."""
        attachment_id = record["attachment_id"]
        if self.folder:
            path = self._path(attachment_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(content)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self.store.save_attachment(attachment_id, json.dumps(record), None)
        else:
            self.store.save_attachment(attachment_id, json.dumps(record), content)

    def record(self, attachment_id: str) -> dict[str, Any] | None:
        """The record of an attachment, None when unknown."""
        found = self.store.get_attachment(attachment_id, content=False)
        return None if found is None else dict(json.loads(found[0]))

    def content(self, attachment_id: str) -> bytes | None:
        """The bytes of an attachment (from the store or the folder); None when missing."""
        found = self.store.get_attachment(attachment_id)
        if found is None:
            return None
        if found[1] is not None:
            return found[1]
        if not self.folder:
            return None
        try:
            return self._path(attachment_id).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, attachment_id: str) -> None:
        """Forget an attachment: its record and its bytes."""
        self.store.delete_attachment(attachment_id)
        if self.folder:
            self._path(attachment_id).unlink(missing_ok=True)
