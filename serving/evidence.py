"""Evidence an officer brings back from a visit: photos (JPEG, PNG, WebP) and PDF documents attached to a lead.

A file is accepted by what its bytes are (the first bytes of each format), not by its name or the type the
browser claims, up to ``EvidenceSettings.max_bytes``; it is stored under the home folder
(``<home>/evidence/<lead id>/<random name><ext>``), never under a name the uploader chose, and is served only
to users who may see the lead (officers: their own district). Every upload is audited.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.errors import Conflict, Forbidden, Invalid, NotFound
from serving.evidence_settings import EvidenceSettings
from serving.schemas import clean_text
from serving.services.leads import load_lead, lock_lead
from serving.store import Evidence, Lead, utcnow

FORMATS = {  # content type: (extension, kind)
    "image/jpeg": (".jpg", "photo"),
    "image/png": (".png", "photo"),
    "image/webp": (".webp", "photo"),
    "application/pdf": (".pdf", "pdf"),
}
FOLDER = "evidence"


def sniff(data: bytes) -> str | None:
    """The content type the bytes are, among the accepted ones; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_name(filename: str | None, extension: str) -> str:
    """A display name: the uploader's base name without path or control characters, with the true extension."""
    base = Path((filename or "").replace("\\", "/")).name
    base = re.sub(r"[\x00-\x1f\x7f<>:\"|?*]", "", base).strip() or "evidence"
    stem = Path(base).stem[:120] or "evidence"
    return stem + extension


def _may_attach(lead: Lead, principal) -> None:
    if principal.is_officer and lead.assigned_officer not in (None, principal.username):
        raise Forbidden(f"线索已分配给 {lead.assigned_officer} (lead is assigned to another officer)")


def _note(note: str | None) -> str | None:
    """The uploader's note as stored; a NUL or text that is not UTF-8 is refused here too (PostgreSQL cannot hold
    it), whoever calls."""
    try:
        note = clean_text(note or "")
    except ValueError as exc:
        raise Invalid(f"说明{exc}") from None
    return note.strip()[:500] or None


def _write(target: Path, data: bytes) -> None:
    """The file, complete or not at all (written aside, fsynced, then renamed into place)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def add_evidence(session: Session, home: Path, lead_id: int, principal, filename: str | None, data: bytes,
                 note: str | None, settings: EvidenceSettings) -> Evidence:
    """Check, store and record one file; raises ``Invalid`` for a wrong type, size or note.

    The row is inserted (and audited) before the file is written and the file is removed when the commit fails,
    so that no file is left without its row and no row points to a file that was never written. The lead is locked
    first (SQLite: the write lock; PostgreSQL: its row), so that uploads arriving together count the lead's files
    one after another and never take it over ``max_per_lead``."""
    lead = lock_lead(session, lead_id, principal)  # the count below and the insert are one step under the lock
    _may_attach(lead, principal)
    note = _note(note)
    if not data:
        raise Invalid("文件为空 (the file is empty)")
    if len(data) > settings.max_bytes:
        raise Invalid(f"文件超过 {settings.max_bytes // (1024 * 1024)} MB (file larger than "
                      f"{settings.max_bytes // (1024 * 1024)} MB)")
    content_type = sniff(data)
    if content_type is None:
        raise Invalid("只接受照片（JPEG、PNG、WebP）或 PDF 文件 (only JPEG, PNG or WebP photos and PDF documents)")
    held = session.scalar(select(func.count()).select_from(Evidence).where(Evidence.lead_id == lead.id)) or 0
    if held >= settings.max_per_lead:
        raise Conflict(f"每条线索最多 {settings.max_per_lead} 个文件 (at most {settings.max_per_lead} files per lead)")
    extension, kind = FORMATS[content_type]
    relative = Path(FOLDER) / str(lead.id) / f"{uuid.uuid4().hex}{extension}"
    row = Evidence(lead_id=lead.id, uscc=lead.uscc, kind=kind, filename=clean_name(filename, extension),
                   content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   stored_as=relative.as_posix(), note=note, uploaded_by=principal.username, uploaded_at=utcnow())
    session.add(row)
    session.flush()  # a row the database refuses fails here, before any file exists
    from serving.audit import audit

    audit(session, principal.username, "evidence_upload", "lead", lead.id,
          {"evidence_id": row.id, "kind": kind, "size": len(data), "sha256": row.sha256, "uscc": lead.uscc})
    target = Path(home) / relative
    _write(target, data)
    try:
        session.commit()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return row


def lead_evidence(session: Session, lead_id: int) -> list[Evidence]:
    return list(session.scalars(select(Evidence).where(Evidence.lead_id == lead_id).order_by(Evidence.id)))


def evidence_file(session: Session, home: Path, lead_id: int, evidence_id: int, principal) -> tuple[Path, Evidence]:
    """The stored file of one piece of evidence, for a caller who may see its lead (else 403/404)."""
    lead = load_lead(session, lead_id, principal)
    row = session.get(Evidence, evidence_id)
    if row is None or row.lead_id != lead.id:
        raise NotFound(f"证据 {evidence_id} 不存在 (no evidence {evidence_id})")
    path = (Path(home) / row.stored_as).resolve()
    root = (Path(home) / FOLDER).resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(f"证据文件缺失 (the file of evidence {evidence_id} is missing)")
    return path, row
